"""tunebench: freeze or fine-tune? Run the ladder of adaptation strategies on your data."""

from ._version import __version__

__all__ = ["Predictor", "__version__", "compare", "predict"]


def __getattr__(name: str):
    # Lazy (PEP 562): `import tunebench` and `tunebench --help` stay fast; torch, transformers and peft
    # load when the API is first used.
    if name in ("compare", "predict", "Predictor"):
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'tunebench' has no attribute {name!r}")
