"""TSDAE (Wang, Reimers & Gurevych 2021): the domain-adaptation objective sentence-transformers
recommends for embedding models. Delete 60% of a text's words, encode what is left into one pooled
vector, and make a decoder rebuild the whole text from that vector alone (its only cross-attention
memory). The decoder is the encoder's own architecture as a causal LM with cross-attention, its weights
tied to the encoder's (sentence-transformers' `tie_encoder_decoder=True`), so only the cross-attention
and the vocabulary head are new. Adaptation keeps the encoder; the decoder is dropped.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from transformers import AutoModelForCausalLM

from ..errors import TunebenchError
from .pretraining import Chunk, pad, quiet_transformers, vocabulary_head
from .text import pool

DELETE = 0.6


def load_decoder(path: str, encoder: nn.Module, trust_remote_code: bool = False) -> nn.Module:
    """The checkpoint as a causal LM with cross-attention (fp32), tied to `encoder` wherever a weight of
    the same name and shape exists (embeddings, self-attention, feed-forward)."""
    try:
        with quiet_transformers():  # the new cross-attention weights are expected
            decoder = AutoModelForCausalLM.from_pretrained(
                path,
                dtype=torch.float32,
                is_decoder=True,
                add_cross_attention=True,
                trust_remote_code=trust_remote_code,
            )
    except ValueError as err:
        raise TunebenchError(
            f"model '{path}': no decoder form for TSDAE ({str(err).splitlines()[0]}); use --objective mlm"
        ) from None
    tie(decoder.base_model, encoder)
    return decoder


def tie(decoder: nn.Module, encoder: nn.Module) -> int:
    """Make `decoder`'s parameters *be* `encoder`'s where names and shapes agree; returns how many."""
    mine = dict(encoder.named_parameters())
    tied = 0
    for name, param in list(decoder.named_parameters()):
        other = mine.get(name)
        if other is None or other.shape != param.shape or "crossattention" in name:
            continue
        owner, _, leaf = name.rpartition(".")
        setattr(decoder.get_submodule(owner) if owner else decoder, leaf, other)
        tied += 1
    return tied


class Tsdae(nn.Module):
    """Encoder -> pooled vector -> decoder; logits only where the next token is scored."""

    def __init__(self, encoder: nn.Module, decoder: nn.Module, pooling: str):
        super().__init__()
        self.encoder, self.decoder, self.pooling = encoder, decoder, pooling
        self.head = vocabulary_head(decoder)

    def forward(
        self, input_ids, attention_mask, decoder_input_ids, decoder_attention_mask, target_mask
    ) -> torch.Tensor:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        memory = pool(hidden, attention_mask, self.pooling)[:, None]  # (B, 1, H)
        ones = torch.ones(memory.shape[:2], dtype=attention_mask.dtype, device=memory.device)
        kwargs = {
            "input_ids": decoder_input_ids,
            "attention_mask": decoder_attention_mask,
            "encoder_hidden_states": memory,
            "encoder_attention_mask": ones,
        }
        if self.head is None:
            return self.decoder(**kwargs).logits[target_mask]
        out = self.decoder.base_model(**kwargs).last_hidden_state
        return self.head(out[target_mask])


class DeleteWords:
    """Makes a TSDAE batch from chunks: the noisy input keeps each word with probability 0.4 (at least
    one) and the special tokens; the decoder reads the whole text and predicts each next token."""

    def __init__(self, tokenizer, delete: float = DELETE):
        self.pad_id = tokenizer.pad_token_id or 0
        self.delete = delete

    def __call__(self, chunks: list[Chunk], rng: np.random.Generator) -> dict[str, torch.Tensor]:
        noisy, full, labels = [], [], []
        for c in chunks:
            ids, words = np.array(c.ids), np.array(c.words)
            present = np.unique(words[words >= 0])
            keep_words = present[rng.random(len(present)) >= self.delete]
            if len(present) and not len(keep_words):
                keep_words = present[rng.integers(len(present), size=1)]
            keep = (words < 0) | np.isin(words, keep_words)
            noisy.append(ids[keep].tolist())
            full.append(c.ids)
            labels.append(c.ids[1:] + [-100])  # position t predicts token t + 1
        label_ids = pad(labels, -100)
        return {
            "input_ids": pad(noisy, self.pad_id),
            "attention_mask": pad([[1] * len(r) for r in noisy], 0),
            "decoder_input_ids": pad(full, self.pad_id),
            "decoder_attention_mask": pad([[1] * len(r) for r in full], 0),
            "target_mask": label_ids != -100,
            "labels": label_ids,
        }
