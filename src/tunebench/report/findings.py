"""A diagnostic finding (`RunWarning`) and the noise measure the diagnostics and the analysis share."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

SEVERITIES = ("error", "warning", "info")  # most severe first


@dataclass(frozen=True)
class RunWarning:
    """One finding: a stable `code`, a severity, a one-sentence message with numbers, and a fix."""

    code: str
    severity: str  # error | warning | info
    message: str
    fix: str
    strategy: str | None = None
    seed: int | None = None
    key: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        who = (
            f"{self.strategy} (seed {self.seed})" if self.seed is not None else (self.strategy or "all runs")
        )
        return f"[{self.severity}] {who}: {self.message} Fix: {self.fix}"


Warning = RunWarning  # the name the API promises; `RunWarning` avoids shadowing the builtin here


def standard_error(p: float, n: int) -> float:
    """Binomial standard error of an accuracy `p` measured on `n` examples."""
    return math.sqrt(max(p * (1 - p), 0.0) / n) if n else 0.0
