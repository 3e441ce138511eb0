"""Tasks: one module each (head, collate, loss, metrics, post-processing), registered by name."""

from . import classification, images, ner, qa, regression  # noqa: F401  (each module registers itself)
from .base import TASKS, Task

__all__ = ["TASKS", "Task", "get_task"]


def get_task(name: str) -> Task:
    return TASKS.get(name)()
