"""Multi-task: one shared body, one head per task (`compare --tasks a,b,c`; multitask_run.py trains it).

The body is trained the way a single-task strategy trains it (`body`: full, lora, adapters, bitfit,
...; its `prepare`, learning rate, schedule and export), on batches of every task: each batch one
task's rows, the task drawn by `sampling` (training/mixing.py). The loss of a batch is its task's own,
weighted equally or by learned uncertainty (Kendall et al. 2018: L_t · exp(-s_t) + s_t, s_t a learned
log-variance per task). With a LoRA or adapter body the adapter is shared by the tasks; a separate
adapter per task (with its own head) is exactly the single-task run of that strategy on each task,
which `compare --tasks` runs beside it.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import TunebenchError
from ..training.mixing import SAMPLING
from .base import STRATEGIES, Strategy

WEIGHTING = ("equal", "uncertainty")


@STRATEGIES.register("multitask")
@dataclass
class MultiTask(Strategy):
    kind = "multitask"
    summary = "one shared body (trained as `body` trains it) + a head per task, on batches of every task"
    requires = {"several-tasks": "it trains one body on several tasks: compare --tasks a,b,c"}
    body: str = "full"  # the single-task strategy whose way of training the shared body is used
    sampling: str = "proportional"  # proportional | temperature
    temperature: float = 2.0  # temperature sampling: task t drawn with probability ~ n_t^(1/T)
    weighting: str = "equal"  # equal | uncertainty

    def __post_init__(self):
        if self.sampling not in SAMPLING:
            raise TunebenchError(f"--opt multitask.sampling={self.sampling}: choose {' or '.join(SAMPLING)}")
        if self.weighting not in WEIGHTING:
            raise TunebenchError(
                f"--opt multitask.weighting={self.weighting}: choose {' or '.join(WEIGHTING)}"
            )
        if self.temperature <= 0:
            raise TunebenchError(f"--opt multitask.temperature={self.temperature}: must be > 0")
        cls = STRATEGIES.get(self.body) if self.body in STRATEGIES.names() else None
        if cls is None or cls.kind != "gradient" or cls.from_scratch:
            bodies = [n for n, c in STRATEGIES.items() if c.kind == "gradient" and not c.from_scratch]
            raise TunebenchError(
                f"--opt multitask.body={self.body}: the body trains as a gradient strategy does; choose one "
                f"of {', '.join(bodies)}"
            )

    def body_strategy(self, options: dict[str, str] | None = None) -> Strategy:
        return STRATEGIES.get(self.body).from_options(options or {})
