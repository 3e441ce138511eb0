from dataclasses import dataclass

from ..backbones import encoder_layers
from ..errors import TunebenchError
from .base import STRATEGIES, Hints, Strategy, freeze, n_params, unfreeze


@STRATEGIES.register("last-k")
@dataclass
class LastK(Strategy):
    ladder = 3
    summary = "top k transformer layers + head train; the rest stays frozen"
    train_defaults = {"lr": 1e-4, "epochs": 3}
    hints = Hints(
        train_rate=190.0,
        advice={
            "labels<10k": 1,
            "labels>=10k": 1,
            "task=text-pair": 1,
            "gap=medium": 1,
            "gap=large": 1,
            "memory-tight": 1,
            "device=cpu:cached": 0.5,
        },
    )
    tiny_options = {"k": "1"}
    k: int = 2

    def search_space(self, cfg, num_layers):
        """Also k: from the top layer alone to the top half (more is close to full fine-tuning)."""
        high = min(num_layers, max(self.k, num_layers // 2 + 1))
        return {**super().search_space(cfg, num_layers), "k": ("int", 1, high)}

    def prepare(self, model):
        layers = encoder_layers(model.backbone)
        if not 1 <= self.k <= len(layers):
            raise TunebenchError(
                f"--opt last-k.k={self.k}: the model has {len(layers)} layers; pick 1..{len(layers)}"
            )
        freeze(model.backbone)
        for layer in layers[-self.k :]:
            unfreeze(layer)
        return model

    def frozen_blocks(self, model) -> int:
        return len(encoder_layers(model.backbone)) - self.k

    def trainable_formula(self, model) -> int:
        return n_params(*encoder_layers(model.backbone)[-self.k :], model.head)
