from dataclasses import dataclass

from .base import STRATEGIES, Hints, Strategy, freeze, n_params


@STRATEGIES.register("bitfit")
@dataclass
class BitFit(Strategy):
    """Ben Zaken et al. 2022: only the bias terms of the backbone (plus the head) train."""

    ladder = 6
    summary = "bias terms of the backbone + head (~0.1% of parameters)"
    train_defaults = {"lr": 1e-3, "epochs": 3}
    hints = Hints(
        train_rate=86.0,
        advice={
            "labels<1k:peft": 1,
            "gap=large:frozen-miss": -1,
            "memory-tight": 2,
            "device=cpu:backward-anyway": -0.5,
        },
    )

    def prepare(self, model):
        freeze(model.backbone)
        for name, p in model.backbone.named_parameters():
            if name.endswith(".bias"):
                p.requires_grad_(True)
        return model

    def trainable_formula(self, model) -> int:
        biases = sum(p.numel() for name, p in model.backbone.named_parameters() if name.endswith(".bias"))
        return biases + n_params(model.head)
