from dataclasses import dataclass

from ..backbones import embeddings_module, encoder_layers
from ..errors import TunebenchError
from ..training.optim import decay_groups
from .base import STRATEGIES, Hints, Strategy, n_params, unfreeze
from .export import WholeModelExport


@STRATEGIES.register("llrd")
@dataclass
class LLRD(WholeModelExport, Strategy):
    """Layer-wise learning-rate decay (discriminative fine-tuning): the head gets `lr`, the top layer
    lr*factor, the next lr*factor^2, ..., the embeddings the smallest. ULMFiT's 1/2.6 is factor=0.385;
    0.8 is the usual choice for 6-12-layer encoders (Clark et al. 2020)."""

    summary = "all layers train, learning rate decays by `factor` per layer going down"
    train_defaults = {"lr": 1e-4, "epochs": 3}
    hints = Hints(
        train_rate=84.0,
        advice={
            "labels<100:unstable": -1,
            "labels<10k:discriminative": 0.5,
            "labels>=10k": 1,
            "task=text-pair": 1,
            "gap=large": 1,
            "memory-tight:no-fit": -2,
            "device=cuda": 0.5,
        },
    )
    factor: float = 0.8

    def search_space(self, cfg, num_layers):
        """Also the decay factor: ULMFiT's 1/2.6 is aggressive for 12 layers, 0.8-0.95 is common for BERT."""
        return {**super().search_space(cfg, num_layers), "factor": ("float", min(0.6, self.factor), 0.95)}

    def prepare(self, model):
        if not 0 < self.factor <= 1:
            raise TunebenchError(
                f"--opt llrd.factor={self.factor}: must be in (0, 1]; ULMFiT uses 0.385 (1/2.6)"
            )
        unfreeze(model)
        return model

    def trainable_formula(self, model) -> int:
        return n_params(model)

    def param_groups(self, model, cfg):
        layers = list(encoder_layers(model.backbone))
        groups = decay_groups(model.head.named_parameters(), cfg.lr, cfg.weight_decay)
        assigned = {id(p) for p in model.head.parameters()}
        stack = [*reversed(layers), embeddings_module(model.backbone)]  # top layer first
        for depth, module in enumerate(stack, start=1):
            lr = cfg.lr * self.factor**depth
            groups += decay_groups(module.named_parameters(), lr, cfg.weight_decay)
            assigned |= {id(p) for p in module.parameters()}
        # anything else in the backbone (e.g. a pooler on top) trains at the top layer's rate
        rest = [(n, p) for n, p in model.backbone.named_parameters() if id(p) not in assigned]
        groups += decay_groups(rest, cfg.lr * self.factor, cfg.weight_decay)
        return groups
