from dataclasses import dataclass

from .base import STRATEGIES, Strategy


@STRATEGIES.register("head")
@dataclass
class Head(Strategy):
    """A new head trained through the frozen backbone. The backbone is frozen and deterministic in
    eval mode, so its pooled output is computed once (feature cache) and the head trains on that."""

    summary = "new classification head on the frozen backbone's pooled output (trains in seconds)"
    # Epochs are cheap on cached features: train until dev stops improving.
    train_defaults = {"lr": 1e-3, "epochs": 20, "patience": 4}
    uses_cached_features = True
