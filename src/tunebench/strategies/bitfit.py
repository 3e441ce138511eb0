from dataclasses import dataclass

from .base import STRATEGIES, Strategy, freeze


@STRATEGIES.register("bitfit")
@dataclass
class BitFit(Strategy):
    """Ben Zaken et al. 2022: only the bias terms of the backbone (plus the head) train."""

    summary = "bias terms of the backbone + head (~0.1% of parameters)"
    train_defaults = {"lr": 1e-3, "epochs": 3}

    def prepare(self, model):
        freeze(model.backbone)
        for name, p in model.backbone.named_parameters():
            if name.endswith(".bias"):
                p.requires_grad_(True)
        return model
