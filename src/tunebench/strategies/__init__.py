"""Adaptation strategies, one module each, registered by name (`tunebench strategies` lists them).
Every module of this package is imported here, so a new strategy file is found with no other edit."""

import importlib
import pkgutil

from .base import STRATEGIES, Strategy

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["STRATEGIES", "Strategy", "default_ladder"]


def default_ladder(pairs: bool = False, columns: bool = False) -> list[str]:
    """What `compare` runs without --strategies: the strategies with a ladder position, in its order
    (those that need text pairs or feature columns only when the data has them)."""
    ranked = [
        (cls.ladder, name)
        for name, cls in STRATEGIES.items()
        if cls.ladder is not None
        and (pairs or "text-pairs" not in cls.requires)
        and (columns or "feature-columns" not in cls.requires)
    ]
    return [name for _, name in sorted(ranked)]
