"""The Python API: `compare` (the main job, with the analysis hooks the CLI offers) and `predict`."""

from __future__ import annotations

from .analysis.drift import DriftHook
from .comparison import compare as _compare
from .prediction import Predictor, predict

__all__ = ["Predictor", "compare", "predict"]


def compare(data, *args, drift: bool = False, **kwargs) -> list[dict]:
    """Run strategies x seeds on `data`; returns the leaderboard rows (best first). Arguments as
    `tunebench.comparison.compare`; `drift=True` adds each fine-tuning run's per-layer representation
    drift (linear CKA, analysis/drift.py) to its record."""
    hooks = (*kwargs.pop("hooks", ()), *((DriftHook(),) if drift else ()))
    return _compare(data, *args, hooks=hooks, **kwargs)
