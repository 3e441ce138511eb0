"""The per-layer view of a backbone that last-k, llrd and gradual act on: the stack of blocks and the
embeddings (for an image backbone: its stages above the stem, and the stem)."""

from __future__ import annotations

from torch import nn

from ..errors import TunebenchError


def encoder_layers(model: nn.Module) -> nn.ModuleList:
    """The stack of transformer blocks, for strategies that act per layer (last-k, llrd, gradual)."""
    blocks = _image_blocks(model)
    if blocks is not None:  # image backbone: its stages above the stem, input to output
        return nn.ModuleList(blocks[1:])
    base = getattr(model, "base_model", model)
    for attr in ("encoder.layer", "encoder.layers", "transformer.layer", "layers", "h", "block"):
        obj = base
        for part in attr.split("."):
            obj = getattr(obj, part, None)
            if obj is None:
                break
        if isinstance(obj, nn.ModuleList):
            return obj
    raise TunebenchError(
        f"cannot find the transformer layers of {type(model).__name__}; per-layer strategies need a BERT-like encoder"
    )


def embeddings_module(model: nn.Module) -> nn.Module:
    blocks = _image_blocks(model)
    if blocks is not None:  # image backbone: the stem plays the embeddings' part
        return blocks[0]
    base = getattr(model, "base_model", model)
    emb = getattr(base, "embeddings", None)
    return emb if emb is not None else base.get_input_embeddings()


def _image_blocks(model: nn.Module) -> list[nn.Module] | None:
    """Parameter groups (stem, stages..., head conv) of an image backbone (backbones/image.ImageEncoder);
    None for text encoders."""
    blocks = getattr(model, "image_blocks", None)
    return blocks() if callable(blocks) else None
