"""Masked language modelling with whole-word masking (Devlin et al. 2019, the whole-word variant): the
objective of BERT-style pre-training, continued on in-domain text by `tunebench adapt` (DAPT,
Gururangan et al. 2020).

15% of the words of a chunk are chosen (at least one); every token of a chosen word is predicted, and
of those tokens 80% become [MASK], 10% a random token, 10% stay. The head is the checkpoint's own when
it has one; otherwise (a sentence-embedding checkpoint such as all-MiniLM-L6-v2 ships the encoder only)
a new one, initialised as the architecture initialises it, tied to the input embeddings, and reported.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn
from transformers import AutoModelForMaskedLM

from ..errors import TunebenchError
from ..training.forgetting import Replay
from .pretraining import Chunk, pad, quiet_transformers, vocabulary_head

MASK_WORDS = 0.15
MASK, RANDOM = 0.8, 0.1  # of the chosen tokens; the rest (0.1) keep their token


def load_masked_lm(path: str, trust_remote_code: bool = False) -> tuple[nn.Module, list[str]]:
    """The checkpoint as a *ForMaskedLM model in fp32 and the names of its newly initialised head
    weights (empty when the checkpoint has its own MLM head)."""
    try:
        with quiet_transformers():  # missing head weights are reported by the caller, in one line
            model, info = AutoModelForMaskedLM.from_pretrained(
                path, dtype=torch.float32, trust_remote_code=trust_remote_code, output_loading_info=True
            )
    except ValueError as err:  # an architecture without a masked-LM class (GPT-style, vision)
        raise TunebenchError(
            f"model '{path}': no masked-language-model form ({str(err).splitlines()[0]}); "
            "use --objective tsdae or an encoder such as BERT/RoBERTa"
        ) from None
    prefix = model.base_model_prefix + "."
    new = sorted(k for k in info["missing_keys"] if not k.startswith(prefix))
    return model, new


class MaskedLM(nn.Module):
    """The encoder plus its vocabulary head, computing logits only at the predicted positions."""

    def __init__(self, mlm: nn.Module):
        super().__init__()
        self.mlm = mlm
        self.head = vocabulary_head(mlm)

    @property
    def encoder(self) -> nn.Module:
        return self.mlm.base_model

    def forward(self, input_ids, attention_mask, target_mask) -> torch.Tensor:
        if self.head is None:  # a head of several modules: full logits, then gather
            return self.mlm(input_ids=input_ids, attention_mask=attention_mask).logits[target_mask]
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return self.head(hidden[target_mask])


class WholeWordMasking:
    """Makes an MLM batch from chunks (backbones/pretraining.py `MakeBatch`)."""

    def __init__(self, tokenizer, probability: float = MASK_WORDS):
        if tokenizer.mask_token_id is None:
            raise TunebenchError("the tokenizer has no [MASK] token: use --objective tsdae")
        self.mask_id, self.pad_id = tokenizer.mask_token_id, tokenizer.pad_token_id or 0
        self.vocab = len(tokenizer)
        self.special = set(tokenizer.all_special_ids)
        self.probability = probability

    def __call__(self, chunks: list[Chunk], rng: np.random.Generator) -> dict[str, torch.Tensor]:
        inputs, labels = [], []
        for c in chunks:
            ids, words = np.array(c.ids), np.array(c.words)
            present = np.unique(words[words >= 0])
            chosen = np.zeros(len(ids), bool)
            if len(present):
                k = max(1, int(round(self.probability * len(present))))
                chosen = np.isin(words, rng.choice(present, size=k, replace=False))
            target = np.where(chosen, ids, -100)
            draw = rng.random(len(ids))
            masked = ids.copy()
            masked[chosen & (draw < MASK)] = self.mask_id
            swap = chosen & (draw >= MASK) & (draw < MASK + RANDOM)
            masked[swap] = rng.integers(0, self.vocab, int(swap.sum()))
            inputs.append(masked.tolist())
            labels.append(target.tolist())
        input_ids = pad(inputs, self.pad_id)
        label_ids = pad(labels, -100)
        attention = pad([[1] * len(r) for r in inputs], 0)
        return {
            "input_ids": input_ids,
            "attention_mask": attention,
            "target_mask": label_ids != -100,
            "labels": label_ids,
        }


class MaskedLMReplay(Replay):
    """Replay through the backbone's own pre-training objective, for checkpoints with an MLM head: each
    step's replay texts (the next m = ceil(r * batch size) of a seeded permutation, cycling) are masked
    as above and `weight * cross-entropy` of the masked tokens is added to the task loss. The body is
    the model the task trains (its LoRA, adapter, BitFit and prefix deltas count); the head is the
    checkpoint's, frozen, so the body is held to representations the original head still decodes."""

    def __init__(
        self, chunks: list[Chunk], head: nn.Module, tokenizer, per_step: int, weight: float, seed: int
    ):
        self.chunks, self.head, self.per_step, self.weight, self.seed = chunks, head, per_step, weight, seed
        self.mask = WholeWordMasking(tokenizer)
        self.order = np.random.default_rng(seed).permutation(len(chunks))
        for p in head.parameters():
            p.requires_grad_(False)

    def __call__(self, model: nn.Module, step: int) -> torch.Tensor:
        idx = self.order[(step * self.per_step + np.arange(self.per_step)) % len(self.order)]
        batch = self.mask([self.chunks[i] for i in idx], np.random.default_rng([self.seed, step]))
        device = next(model.parameters()).device
        self.head.to(device)
        labels = batch.pop("labels").to(device)
        mask = batch.pop("target_mask").to(device)
        hidden = model.backbone(**{k: v.to(device) for k, v in batch.items()}).last_hidden_state
        logits = self.head(hidden[mask]).float()
        return self.weight * nn.functional.cross_entropy(logits, labels[mask])


def frozen_mlm_head(path: str, trust_remote_code: bool = False) -> nn.Module | None:
    """The checkpoint's own MLM head as one module (a copy, tied to nothing the task trains), or None when
    the checkpoint has none (or its head is several modules)."""
    mlm, new = load_masked_lm(path, trust_remote_code)
    head = vocabulary_head(mlm)
    if new or head is None:
        return None
    return copy.deepcopy(head)
