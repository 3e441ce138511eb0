"""Name -> class registries: adding a strategy or task is one decorated class in one file."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from .errors import TunebenchError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} '{name}' registered twice")
            obj.name = name  # type: ignore[attr-defined]
            self._items[name] = obj
            return obj

        return deco

    def get(self, name: str) -> T:
        if name not in self._items:
            raise TunebenchError(f"unknown {self.kind} '{name}'; choose from: {', '.join(self.names())}")
        return self._items[name]

    def names(self) -> list[str]:
        return list(self._items)

    def __contains__(self, name: str) -> bool:
        return name in self._items

    def items(self):
        return self._items.items()
