"""Tasks: one package each (data glue, encoding, head, loss, metrics, decoding, frozen-feature model),
registered by name. Every sub-package is imported here, so a new task folder is found with no other edit."""

import importlib
import pkgutil

from .base import TASKS, Task

for _module in pkgutil.iter_modules(__path__):
    if _module.ispkg:
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["TASKS", "Task", "get_task"]


def get_task(name: str) -> Task:
    return TASKS.get(name)()
