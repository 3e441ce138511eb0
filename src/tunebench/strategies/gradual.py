from dataclasses import dataclass

from ..backbones import embeddings_module, encoder_layers
from .base import STRATEGIES, Hints, Strategy, freeze, n_params, unfreeze
from .export import WholeModelExport


@STRATEGIES.register("gradual")
@dataclass
class Gradual(WholeModelExport, Strategy):
    """ULMFiT gradual unfreezing: epoch 1 trains the head, each later epoch unfreezes the next
    `layers_per_epoch` layers from the top (embeddings last)."""

    summary = "gradual unfreezing (ULMFiT): head first, then one more layer from the top each epoch"
    train_defaults = {"lr": 1e-4, "epochs": 4, "patience": 4}
    hints = Hints(
        train_rate=120.0,
        advice={"labels<100:unstable": -1, "labels<10k:discriminative": 0.5, "memory-tight:no-fit": -1},
    )
    layers_per_epoch: int = 1

    def prepare(self, model):
        freeze(model.backbone)
        return model

    def trainable_formula(self, model) -> int:
        return n_params(model.head)  # before the first epoch

    def on_epoch_start(self, model, epoch, cfg):
        if epoch == 0:
            return None
        layers = encoder_layers(model.backbone)
        n = min(len(layers), epoch * self.layers_per_epoch)
        for layer in layers[len(layers) - n :]:
            unfreeze(layer)
        if n == len(layers) and epoch * self.layers_per_epoch > len(layers):
            unfreeze(embeddings_module(model.backbone))
        return self.param_groups(model, cfg)
