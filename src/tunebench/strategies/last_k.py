from dataclasses import dataclass

from ..backbones import encoder_layers
from ..errors import TunebenchError
from .base import STRATEGIES, Strategy, freeze, unfreeze


@STRATEGIES.register("last-k")
@dataclass
class LastK(Strategy):
    summary = "top k transformer layers + head train; the rest stays frozen"
    train_defaults = {"lr": 1e-4, "epochs": 3}
    k: int = 2

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
