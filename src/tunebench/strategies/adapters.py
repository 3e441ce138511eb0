"""Bottleneck adapters (Houlsby et al. 2019), implemented here.

AdapterHub's `adapters` library pins transformers ~=4.57 and cannot be installed beside
transformers 5, so we insert the adapters ourselves: each block's attention-output and FFN-output
projection is wrapped so that h -> h + up(gelu(down(h))) before the residual + LayerNorm, exactly
where Houlsby places them. `up` starts at zero, so training starts from the pre-trained function.
"""

from dataclasses import dataclass

import torch
from torch import nn

from ..backbones import encoder_layers
from ..errors import TunebenchError
from .base import STRATEGIES, Hints, Strategy, freeze, n_params


class Adapted(nn.Module):
    """A frozen projection followed by a residual bottleneck adapter."""

    def __init__(self, proj: nn.Linear, bottleneck: int):
        super().__init__()
        self.proj = proj
        width = proj.out_features
        self.down = nn.Linear(width, bottleneck)
        self.up = nn.Linear(bottleneck, width)
        nn.init.normal_(self.down.weight, std=1e-3)
        nn.init.zeros_(self.down.bias)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.proj(x)
        return h + self.up(nn.functional.gelu(self.down(h)))


def _projections(layer: nn.Module) -> list[tuple[nn.Module, str]]:
    """(parent, attribute) of the two output projections of a BERT-style block."""
    found = []
    for path in ("attention.output", "output"):
        parent = layer
        for part in path.split("."):
            parent = getattr(parent, part, None)
        if parent is not None and isinstance(getattr(parent, "dense", None), nn.Linear):
            found.append((parent, "dense"))
    return found


@STRATEGIES.register("adapters")
@dataclass
class Adapters(Strategy):
    summary = "bottleneck adapters after attention and FFN in every block (Houlsby) + LayerNorms + head"
    train_defaults = {"lr": 1e-3, "epochs": 3}
    hints = Hints(train_rate=80.0, advice={})
    requires = {
        "transformer-blocks": "Houlsby adapters sit after the attention and feed-forward projections of a "
        "transformer block; this backbone has none (use lora or bitfit)"
    }
    tiny_options = {"bottleneck": "4"}
    bottleneck: int = 64

    def search_space(self, cfg, num_layers):
        """Also the bottleneck width (Houlsby et al. search 8-256; 16-128 covers the useful part)."""
        sizes = sorted({16, 32, 64, 128, self.bottleneck})
        return {**super().search_space(cfg, num_layers), "bottleneck": ("choice", sizes)}

    def prepare(self, model):
        freeze(model.backbone)
        for i, layer in enumerate(encoder_layers(model.backbone)):
            spots = _projections(layer)
            if len(spots) != 2:
                raise TunebenchError(
                    f"adapters: layer {i} of {type(layer).__name__} has no BERT-style output projections; "
                    "use lora instead"
                )
            for parent, attr in spots:
                setattr(parent, attr, Adapted(getattr(parent, attr), self.bottleneck))
            for name, p in layer.named_parameters():  # adapters + this block's LayerNorms (as Houlsby)
                if ".down." in name or ".up." in name or "LayerNorm" in name:
                    p.requires_grad_(True)
        return model

    def trainable_formula(self, model) -> int:
        """Per block: two adapters (width H -> b -> H, with biases) and the block's LayerNorms; + head."""
        total = n_params(model.head)
        for layer in encoder_layers(model.backbone):
            for parent, attr in _projections(layer):
                h, b = getattr(parent, attr).out_features, self.bottleneck
                total += (h * b + b) + (b * h + h)
            total += sum(p.numel() for name, p in layer.named_parameters() if "LayerNorm" in name)
        return total
