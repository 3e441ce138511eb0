from dataclasses import dataclass

from .base import STRATEGIES, Strategy, n_params, unfreeze
from .export import WholeModelExport


@STRATEGIES.register("scratch")
@dataclass
class Scratch(WholeModelExport, Strategy):
    """The 'why transfer at all' baseline: the runner builds the backbone from its config with random
    weights (`from_scratch`), then everything trains."""

    summary = "same architecture, random weights, fully trained: what transfer buys you"
    train_defaults = {"lr": 1e-4, "epochs": 5, "patience": 3}
    from_scratch = True

    def prepare(self, model):
        unfreeze(model)
        return model

    def trainable_formula(self, model) -> int:
        return n_params(model)
