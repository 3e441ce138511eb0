"""tunebench: freeze or fine-tune? Run the ladder of adaptation strategies on your data."""

import os

from ._version import __version__

# torch's CPU bf16 matrix products (oneDNN, through ideep) keep a compiled kernel and its buffers for
# every matrix shape met, in two caches of up to 1,024 entries each. Length-bucketed batches give a new
# shape almost every batch, so a LoRA run on SST-2 2k kept ~650 MB that it never used again (peak
# 1,922 MB on this project's Xeon; with 64 entries in each, 1,275 MB and no slower). Both are read
# when first used; values the user has set win.
os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "64")
os.environ.setdefault("LRU_CACHE_CAPACITY", "64")

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
