"""Adaptation strategies, one module each, registered by name (`tunebench strategies` lists them)."""

from .base import STRATEGIES, Strategy
from . import (  # noqa: F401  (each module registers itself)
    features,
    head,
    last_k,
    full,
    gradual,
    llrd,
    lora,
    adapters,
    bitfit,
    prefix,
    scratch,
)

DEFAULT_LADDER = ["features", "head", "last-k", "full", "lora", "bitfit"]

__all__ = ["STRATEGIES", "Strategy", "DEFAULT_LADDER"]
