"""Several tasks trained as one (the `multitask` strategy): the loss of a batch is its task's own,
weighted equally or by learned uncertainty, and dev selects by the mean of the tasks' primary metrics,
each on a 0-1 scale."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class Mixture:
    """Task-like for the training loop: `loss(logits, labels, task=i)` and `primary_metric`."""

    primary_metric = "mean"

    def __init__(self, tasks: list, log_vars: nn.Parameter | None = None):
        self.tasks, self.log_vars = tasks, log_vars

    def loss(self, logits: torch.Tensor, labels: torch.Tensor, task: torch.Tensor, **options) -> torch.Tensor:
        i = int(task)
        loss = self.tasks[i].loss(logits, labels, **options)
        if self.log_vars is None:
            return loss
        # Kendall et al. 2018: a task whose loss stays high learns a larger variance s_i and weighs less;
        # + s_i keeps it from growing without bound
        return loss * torch.exp(-self.log_vars[i]) + self.log_vars[i]

    def metrics(self, per_task: dict[str, dict[str, Any]]) -> dict[str, Any]:
        """Each task's metrics under its name, and `mean`: the mean primary metric on a 0-1 scale."""
        scaled = [m[t.primary_metric] / t.metric_scale for t, m in zip(self.tasks, per_task.values())]
        return {"mean": sum(scaled) / len(scaled), **per_task}
