"""Split a text encoder at a block boundary: the frozen bottom (embeddings + the first `depth` blocks)
runs once per compare and its output is cached; the top blocks train on the cached hidden states.

last-k trains the top k of L blocks, so 1 - k/L of every forward pass and none of the backward was
work repeated for nothing each epoch. `EncoderTop` runs the top blocks with the attention mask the
model itself would have built (transformers' `create_bidirectional_mask`, or the older
`get_extended_attention_mask`); `split_encoder` checks on a padded probe batch that bottom + top
reproduces the model's own output and returns None when it does not (an architecture that passes
more than the mask between blocks, e.g. relative positions), so the caller falls back to the plain
path instead of training on wrong inputs.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from .layers import encoder_layers


class _Stop(Exception):
    """Raised by a forward hook to end the pass once the bottom blocks have run."""

    def __init__(self, hidden: torch.Tensor):
        super().__init__()
        self.hidden = hidden


def _first(out) -> torch.Tensor:
    return out[0] if isinstance(out, (tuple, list)) else out


@torch.no_grad()
def bottom_states(model: nn.Module, batch: dict[str, torch.Tensor], depth: int) -> torch.Tensor:
    """(B, T, H): the hidden states after the embeddings and the first `depth` blocks (depth 0: the
    embeddings' output), without running the blocks above."""
    base = getattr(model, "base_model", model)
    if depth == 0:
        hs = base(**batch, output_hidden_states=True).hidden_states
        return hs[0]
    last = encoder_layers(model)[depth - 1]

    def stop(_module, _inputs, output):
        raise _Stop(_first(output))

    handle = last.register_forward_hook(stop)
    try:
        base(**batch)
    except _Stop as done:
        return done.hidden
    finally:
        handle.remove()
    raise RuntimeError("the encoder returned before its block ran")  # pragma: no cover


def _mask_builder(base: nn.Module) -> list[Callable]:
    """Ways the model builds the blocks' attention mask from (hidden, 2-D mask), newest first."""
    builders = []
    try:
        from transformers.masking_utils import create_bidirectional_mask  # optional: transformers >= 4.56

        builders.append(
            lambda hidden, mask: create_bidirectional_mask(
                config=base.config, inputs_embeds=hidden, attention_mask=mask
            )
        )
    except ImportError:
        pass
    if hasattr(base, "get_extended_attention_mask"):
        builders.append(lambda hidden, mask: base.get_extended_attention_mask(mask, mask.shape))
    return builders


class EncoderTop(nn.Module):
    """The blocks above `depth` of an encoder (shared with it, not copied): (B, T, H) hidden states
    after the bottom blocks + the 2-D attention mask -> the last hidden state."""

    def __init__(self, blocks: list[nn.Module], build_mask: Callable):
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self._build_mask = build_mask

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        mask = self._build_mask(hidden, attention_mask) if len(self.blocks) else None
        for block in self.blocks:
            hidden = _first(block(hidden, mask))
        return hidden


def split_encoder(model: nn.Module, depth: int, probe: dict[str, torch.Tensor]) -> EncoderTop | None:
    """The top of `model` above `depth` blocks, or None when bottom + top does not reproduce the
    model's last hidden state on `probe` (a padded batch of two rows) for any known mask builder."""
    try:
        blocks = list(encoder_layers(model))
    except Exception:  # noqa: BLE001 - not a block-structured text encoder: no split
        return None
    if not 0 <= depth <= len(blocks):
        return None
    base = getattr(model, "base_model", model)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            want = base(**probe).last_hidden_state
            hidden = bottom_states(model, probe, depth)
            mask = probe["attention_mask"]
            keep = mask.bool()
            for build in _mask_builder(base):
                top = EncoderTop(blocks[depth:], build)
                try:
                    got = top(hidden, mask)
                except Exception:  # noqa: BLE001 - this builder's mask does not fit the blocks
                    continue
                if got.shape == want.shape and torch.allclose(got[keep], want[keep], atol=1e-4, rtol=1e-4):
                    return top
    except Exception:  # noqa: BLE001 - a model whose forward we cannot cut: the plain path
        return None
    finally:
        model.train(was_training)
    return None
