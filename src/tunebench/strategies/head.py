from dataclasses import dataclass

from ..backbones import encoder_layers
from ..errors import TunebenchError
from .base import STRATEGIES, Hints, Strategy


@STRATEGIES.register("head")
@dataclass
class Head(Strategy):
    """A new head trained through the frozen backbone. The backbone is frozen and deterministic in
    eval mode, so its pooled output is computed once (feature cache) and the head trains on that."""

    ladder = 2
    curve = True
    summary = "new classification head on the frozen backbone's pooled output (trains in seconds)"
    # Epochs are cheap on cached features: train until dev stops improving.
    train_defaults = {"lr": 1e-3, "epochs": 20, "patience": 4}
    hints = Hints(
        advice={
            "labels<100": 2,
            "labels<1k": 1,
            "labels>=10k:frozen-behind": -1,
            "task=text-classification": 1,
            "task=text-pair:frozen-behind": -2,
            "gap=small": 1,
            "gap=large:frozen-miss": -2,
            "device=cpu:cached": 0.5,
        }
    )

    def search_space(self, cfg, num_layers):
        """The learning rate only: the head trains until dev stops improving (patience), not for set epochs."""
        return {"lr": ("log", cfg.lr / 4, cfg.lr * 4)}

    uses_cached_features = True

    def frozen_blocks(self, model) -> int:
        """Token tasks train the head on every token's cached last hidden state."""
        try:
            return len(encoder_layers(model.backbone))
        except TunebenchError:  # a backbone without a block stack: the plain path
            return 0
