"""A rough cost model: how many minutes one run of a strategy takes, before anything runs.

Measured by this project on 2 CPU cores with all-MiniLM-L6-v2 (22.7M parameters) on SST-2 sentences
(~25 tokens). Each strategy declares its training rate (examples per second of one epoch) in its
`hints.train_rate`, None when it fits on cached frozen features; its epochs are its `train_defaults`.
Forward-only passes (feature extraction, evaluation) run at FORWARD_RATE. Scaled linearly with model
size; CUDA is taken as CUDA_SPEEDUP times faster. Good to a factor of ~2: enough to see what fits a budget.
"""

from __future__ import annotations

from ..strategies import STRATEGIES
from .inputs import REFERENCE_PARAMS_M

FORWARD_RATE = 260.0
CUDA_SPEEDUP = 30.0
DEFAULT_TRAIN_RATE = 84.0  # full fine-tuning's rate: for a strategy that declares none
DEFAULT_EPOCHS = 3  # TrainConfig's default, for a strategy whose train_defaults give none


def train_rate(strategy: str) -> float | None:
    """Training examples per second of one epoch on the reference setup; None: a cached-feature fit."""
    cls = STRATEGIES.get(strategy)
    if cls.hints is not None:
        return cls.hints.train_rate
    cached = cls.kind != "gradient" or cls.uses_cached_features
    return None if cached else DEFAULT_TRAIN_RATE


def estimate_minutes(
    strategy: str, train_size: int, device: str = "cpu", params_m: float = REFERENCE_PARAMS_M
) -> float:
    """Rough wall time of one run: training epochs + a dev evaluation per epoch (+ extraction for frozen)."""
    dev = min(max(train_size / 9, 200), 2000)  # a 10% dev split, within usual bounds
    scale = params_m / REFERENCE_PARAMS_M / (CUDA_SPEEDUP if device == "cuda" else 1.0)
    rate = train_rate(strategy)
    if rate is None:  # one cached forward pass over every split; the fit is seconds
        seconds = (train_size + 2 * dev) / FORWARD_RATE * scale + 2
    else:
        epochs = STRATEGIES.get(strategy).train_defaults.get("epochs", DEFAULT_EPOCHS)
        seconds = (epochs * train_size / rate + (epochs + 2) * dev / FORWARD_RATE) * scale
    return seconds / 60
