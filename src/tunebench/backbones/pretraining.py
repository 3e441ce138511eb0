"""What continued pre-training (`tunebench adapt`) needs beside an objective: the corpus as token
chunks with their word ids, batches the one training loop (training/loop.py `fit`) draws from, a
held-out loss it scores each round by, and the token-prediction loss.

An objective (backbones/mlm.py, backbones/tsdae.py) turns a list of chunks into one batch: the model's
inputs plus `labels` (B, T), -100 where nothing is predicted, and `target_mask` (B, T) = labels != -100,
so the model computes vocabulary logits only where they are scored (a 30k-word softmax at every
position of a 256-token batch would cost more than the encoder).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from transformers.utils import logging as hf_logging

from ..training.loop import autocast

Batch = dict[str, torch.Tensor]
MakeBatch = Callable[[list["Chunk"], np.random.Generator], Batch]


@dataclass
class Chunk:
    """One training sequence: token ids with the special tokens, and each token's word (-1: special)."""

    ids: list[int]
    words: list[int]


def chunk_corpus(tokenizer, texts: list[str], max_length: int, split_long: bool = True) -> list[Chunk]:
    """Tokenize once (fast tokenizer: word ids come with it); a document longer than `max_length` becomes
    several consecutive chunks when `split_long` (continued MLM reads every token, as Gururangan et al.
    do), else is cut (a sentence objective: one text, one embedding)."""
    lead, trail = special_frame(tokenizer)
    inner = max_length - len(lead) - len(trail)
    chunks = []
    for start in range(0, len(texts), 1000):
        with quiet_transformers():  # documents longer than the model's limit are expected: they are cut below
            enc = tokenizer(texts[start : start + 1000], add_special_tokens=False, truncation=False)
        for i, ids in enumerate(enc["input_ids"]):
            words = [-1 if w is None else w for w in enc.word_ids(i)]
            spans = range(0, max(len(ids), 1), inner) if split_long else [0]
            for s in spans:
                piece = ids[s : s + inner]
                if piece:
                    marks = [-1] * len(lead) + words[s : s + inner] + [-1] * len(trail)
                    chunks.append(Chunk(lead + piece + trail, marks))
    return chunks


@contextmanager
def quiet_transformers():
    """transformers' warnings silenced for a block: what we expect (a document over the model's limit, a
    new head's missing weights) we report ourselves, in one line."""
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)


def special_frame(tokenizer) -> tuple[list[int], list[int]]:
    """The special tokens a single text gets before and after it ([CLS] / [SEP], <s> / </s>, ...)."""
    bare = tokenizer("a", add_special_tokens=False)["input_ids"]
    full = tokenizer("a", add_special_tokens=True)["input_ids"]
    at = next(j for j in range(len(full) - len(bare) + 1) if full[j : j + len(bare)] == bare)
    return full[:at], full[at + len(bare) :]


def pad(rows: list[list[int]], value: int) -> torch.Tensor:
    """Right-pad to the longest row: dynamic padding, never to the model's maximum."""
    width = max(len(r) for r in rows)
    return torch.tensor([r + [value] * (width - len(r)) for r in rows], dtype=torch.long)


class CorpusBatches:
    """Training batches for `fit`: `rounds` rounds of `per_round` steps (a round is the loop's "epoch":
    it ends with the held-out loss), walking seeded permutations of the corpus, batches grouped by
    length. Each step's masking or noise is drawn from (seed, step): the same seed, the same run."""

    def __init__(self, chunks: list[Chunk], make_batch: MakeBatch, per_round: int, seed: int):
        self.chunks, self.make_batch, self.per_round, self.seed = chunks, make_batch, per_round, seed

    def __len__(self) -> int:
        return len(self.chunks)

    def batches_per_epoch(self, batch_size: int) -> int:
        return self.per_round

    def train_batches(self, batch_size: int, epoch_seed: int) -> Iterator[Batch]:
        round_ = epoch_seed % 1000  # fit passes seed * 1000 + epoch
        per_pass = max(1, len(self.chunks) // batch_size)
        for step in range(round_ * self.per_round, (round_ + 1) * self.per_round):
            order = self._order(step // per_pass, batch_size)
            rows = order[step % per_pass]
            rng = np.random.default_rng([self.seed, step])
            yield self.make_batch([self.chunks[i] for i in rows], rng)

    def _order(self, pass_: int, batch_size: int) -> list[np.ndarray]:
        """Pass `pass_` over the corpus: shuffled, sorted by length within windows of 50 batches (little
        padding), then the batches shuffled again. Cached for the pass in progress."""
        if getattr(self, "_pass", None) != (pass_, batch_size):
            rng = np.random.default_rng([self.seed, 7919, pass_])
            perm = rng.permutation(len(self.chunks))
            window = 50 * batch_size
            lengths = np.array([len(c.ids) for c in self.chunks])
            parts = [
                p[np.argsort(lengths[p], kind="stable")]
                for p in np.split(perm, range(window, len(perm), window))
            ]
            flat = np.concatenate(parts)
            batches = [flat[i : i + batch_size] for i in range(0, len(flat) - batch_size + 1, batch_size)]
            batches = batches or [flat]
            self._batches = [batches[i] for i in rng.permutation(len(batches))]
            self._pass = (pass_, batch_size)
        return self._batches


class HeldOut:
    """The held-out corpus chunks, scored by mean token loss (fixed masking/noise: seed 0), so rounds and
    runs compare. `fit` calls `predict(model, cfg, device)` on dev data that predicts itself."""

    def __init__(self, chunks: list[Chunk], make_batch: MakeBatch, batch_size: int = 32):
        rng = np.random.default_rng(0)
        order = sorted(range(len(chunks)), key=lambda i: len(chunks[i].ids))
        self.batches = [
            make_batch([chunks[i] for i in order[s : s + batch_size]], rng)
            for s in range(0, len(order), batch_size)
        ]

    def __len__(self) -> int:
        return sum(len(b["labels"]) for b in self.batches)

    @torch.no_grad()
    def predict(self, model: nn.Module, cfg, device: torch.device) -> dict:
        model.eval()
        total, count = 0.0, 0
        for batch in self.batches:
            batch = {k: v.to(device) for k, v in batch.items()}
            labels = batch.pop("labels")
            with autocast(device, cfg.precision):
                logits = model(**batch)
            target = labels[labels != -100]
            total += float(nn.functional.cross_entropy(logits.float(), target, reduction="sum"))
            count += len(target)
        return {"loss": total / max(count, 1), "tokens": count}


def held_out_metrics(outputs: dict) -> dict:
    """`fit`'s evaluate for a held-out corpus: the mean token loss, its perplexity, and -loss to maximise."""
    loss = outputs["loss"]
    return {"loss": loss, "perplexity": math.exp(min(loss, 50)), "neg_loss": -loss}


class TokenPrediction:
    """The loss `fit` asks a task for: cross-entropy of the logits at `target_mask` (row-major, as the
    model gathered them) against the labels there."""

    primary_metric = "neg_loss"
    token_level = False

    def loss(self, logits: torch.Tensor, labels: torch.Tensor, **_options) -> torch.Tensor:
        return nn.functional.cross_entropy(logits.float(), labels[labels != -100])


def vocabulary_head(model: nn.Module) -> nn.Module | None:
    """The module that maps hidden states to vocabulary logits in a *ForMaskedLM / *ForCausalLM model:
    its one child besides the base model (BERT's `cls`, RoBERTa's `lm_head`); None when there are
    several (DistilBERT, ELECTRA): the caller then takes the full logits and gathers."""
    base = model.base_model
    others = [m for m in model.children() if m is not base and any(True for _ in m.parameters())]
    return others[0] if len(others) == 1 else None
