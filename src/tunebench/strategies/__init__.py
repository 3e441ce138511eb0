"""Adaptation strategies, one module each, registered by name (`tunebench strategies` lists them)."""

from . import (  # noqa: F401  (each module registers itself)
    adapters,
    bi_encoder,
    bitfit,
    features,
    full,
    gradual,
    head,
    last_k,
    llrd,
    lora,
    prefix,
    scratch,
)
from .base import STRATEGIES, Strategy

DEFAULT_LADDER = ["features", "head", "last-k", "full", "lora", "bitfit"]

__all__ = ["STRATEGIES", "Strategy", "DEFAULT_LADDER"]
