"""tunebench: freeze or fine-tune? Run the ladder of adaptation strategies on your data."""

from ._version import __version__

__all__ = [
    "Comparison",
    "Predictor",
    "__version__",
    "adapt",
    "compare",
    "compare_dapt",
    "compare_tasks",
    "predict",
]


def __getattr__(name: str):
    if name in ("adapt", "compare", "compare_dapt", "compare_tasks", "predict", "Predictor", "Comparison"):
        # lazy (PEP 562): `import tunebench` stays fast; torch, transformers and peft load on first use
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'tunebench' has no attribute {name!r}")
