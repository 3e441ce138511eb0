from dataclasses import dataclass

from .base import STRATEGIES, Strategy, unfreeze


@STRATEGIES.register("full")
@dataclass
class Full(Strategy):
    summary = "every parameter trains (AdamW 5e-5, 10% warmup, weight decay 0.01, 3 epochs)"
    train_defaults = {"lr": 5e-5, "epochs": 3}
    save_mode = "full"

    def prepare(self, model):
        unfreeze(model)
        return model
