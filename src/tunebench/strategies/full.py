from dataclasses import dataclass

from .base import STRATEGIES, Hints, Strategy, n_params, unfreeze
from .export import WholeModelExport


@STRATEGIES.register("full")
@dataclass
class Full(WholeModelExport, Strategy):
    ladder = 4
    curve = True
    summary = "every parameter trains (AdamW 5e-5, 10% warmup, weight decay 0.01, 3 epochs)"
    train_defaults = {"lr": 5e-5, "epochs": 3}
    hints = Hints(
        train_rate=84.0,
        advice={
            "labels<100:unstable": -2,
            "labels<1k:unstable": -1,
            "labels<10k": 1,
            "labels>=10k": 2,
            "task=text-pair": 2,
            "gap=large": 2,
            "memory-tight:no-fit": -2,
            "device=cuda": 0.5,
        },
    )

    def prepare(self, model):
        unfreeze(model)
        return model

    def trainable_formula(self, model) -> int:
        return n_params(model)
