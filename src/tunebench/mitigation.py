"""--ewc and --replay for one run (README, "Forgetting, mitigated"): the terms of training/forgetting.py
built from the run's inputs for the model its strategy prepared; `fit` adds them to the task loss
(`extra_loss`).

EWC's Fisher is the pre-trained body's, on the --reference corpus (default: a sample of the training
inputs), cached under `<out>/cache/fisher/` beside the feature cache (`<out>/cache/features/`), so the
strategies and seeds of a compare compute it once. Replay's targets, the original body's embeddings of
the --replay texts, come from the pre-trained copy the runner holds anyway (no second model), once per
text set: cached under `<out>/cache/replay/`. A checkpoint with its own MLM head (not a sentence-embedding
model) replays its pre-training objective instead: masked-LM loss through that head, frozen
(backbones/mlm.py `MaskedLMReplay`).
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from transformers import PreTrainedTokenizerBase

from .backbones.mlm import MaskedLMReplay, frozen_mlm_head
from .backbones.pretraining import chunk_corpus
from .data.text import read_corpus
from .errors import TunebenchError
from .model import pooled_embedding
from .run_inputs import RunInputs
from .training.batching import TokenBatches
from .training.config import TrainConfig, content_digest
from .training.forgetting import (
    EWC,
    EmbeddingReplay,
    Replay,
    Term,
    diagonal_fisher,
    embeddings,
    pretrained_name,
    summed,
)
from .training.loop import resolve_device, resolve_precision

log = logging.getLogger("tunebench")

REFERENCE_TEXTS = 1000  # EWC: the Fisher is estimated on a seeded sample of at most this many inputs
FISHER_DRAWS = 4  # random projections per batch
FISHER_BATCH = 16  # fixed: a cached Fisher does not depend on which run computed it
REPLAY_TEXTS = 10_000  # replay: a seeded sample of at most this many texts of the file
SAMPLE_SEED = 0  # the samples and the Fisher's projections: the same for every run (one cache entry)


def flags(cfg: TrainConfig) -> str:
    return " and ".join(f for f, on in (("--ewc", cfg.ewc), ("--replay", cfg.replay)) if on)


def check_strategy(strategy, cfg: TrainConfig) -> None:
    """A strategy that starts from random weights has no pre-trained weights to keep: one line."""
    if strategy.from_scratch and (cfg.ewc or cfg.replay):
        raise TunebenchError(
            f"{flags(cfg)} ({strategy.name}): {strategy.name} starts from random weights, so there are no "
            f"pre-trained weights to keep; drop {flags(cfg)} or leave {strategy.name} out of --strategies"
        )


def trains_body(strategy) -> bool:
    """Whether any backbone weight trains: not for frozen features, nor a head on cached features."""
    return strategy.kind == "gradient" and not strategy.uses_cached_features


def forgetting_terms(
    inputs: RunInputs, strategy, model, cfg: TrainConfig, seed: int
) -> tuple[Term | None, dict]:
    """`fit`'s `extra_loss` for --ewc / --replay on `model` (the prepared TaskModel), and what the run
    record keeps of them; (None, {}) when neither is set or no backbone weight trains (one log line)."""
    if not (cfg.ewc or cfg.replay):
        return None, {}
    check_strategy(strategy, cfg)
    if not trains_body(strategy):
        log.info(
            "  %s: %s ignored: no backbone weight trains, so nothing can drift", strategy.name, flags(cfg)
        )
        return None, {}
    terms, record = [], {}
    if cfg.ewc:
        term, record["ewc"] = _ewc(inputs, strategy, model, cfg)
        terms.append(term)
    if cfg.replay:
        term, record["replay"] = _replay(inputs, cfg, seed)
        terms.append(term)
    return summed(terms), record


# -- EWC --------------------------------------------------------------------------------------------


def _ewc(inputs: RunInputs, strategy, model, cfg: TrainConfig) -> tuple[EWC, dict]:
    """The penalty with F normalised to mean 1 over the pre-trained weights the strategy trains (all the
    body's with gradual unfreezing), so that lambda means what --l2sp's does on average."""
    fisher, about = reference_fisher(inputs, cfg)
    widens = strategy.epoch_hook(cfg) is not None  # gradual unfreezing: more of the body trains later
    trains = {n: p for n, p in model.backbone.named_parameters() if p.requires_grad or widens}
    known = {}
    for n, p in trains.items():
        f = fisher.get(pretrained_name(n))
        if f is not None and f.shape == p.shape:
            known[pretrained_name(n)] = f
    n_known = sum(f.numel() for f in known.values())
    n_new = sum(p.numel() for n, p in trains.items() if pretrained_name(n) not in known)
    mean = float(sum(f.double().sum() for f in known.values())) / n_known if n_known else 0.0
    scaled = {n: f / mean if mean > 0 else f for n, f in known.items()}
    new = f"{n_new:,} new weights held at their initialisation (F = 1), as --l2sp holds them"
    if n_known:
        log.info(
            "  EWC λ=%g: %s pre-trained weights of the body anchored by their Fisher on %d inputs of %s "
            "(normalised to mean 1 over them)%s%s",
            cfg.ewc,
            f"{n_known:,}",
            about["texts"],
            about["reference"],
            " as they unfreeze" if widens else "",
            f"; {new}" if n_new else "",
        )
    else:
        log.info(
            "  EWC λ=%g (%s): no pre-trained weight of the body trains, so the Fisher has nothing to anchor; %s",
            cfg.ewc,
            strategy.name,
            new,
        )
    record = {"lambda": cfg.ewc, **about, "anchored_by_fisher": n_known, "held_at_initialisation": n_new}
    return EWC(cfg.ewc, scaled), record


def reference_fisher(inputs: RunInputs, cfg: TrainConfig) -> tuple[dict[str, torch.Tensor], dict]:
    """The pre-trained body's diagonal Fisher (training/forgetting.py) on a seeded sample of at most
    REFERENCE_TEXTS inputs of --reference (default: the training inputs), unnormalised, keyed by its
    parameter names; cached per model, reference content, pooling and max length."""
    bb = inputs.backbone
    if cfg.reference:
        rows = corpus_rows(inputs, cfg.reference, "--reference", REFERENCE_TEXTS)
        batches = TokenBatches(rows, None, bb.tokenizer.pad_token_id or 0)
        digest, name = content_digest(cfg.reference), Path(cfg.reference).name
    else:
        enc = inputs.enc["train"]
        rows = [enc.rows[i] for i in _sample(len(enc.rows), REFERENCE_TEXTS)]
        batches = inputs.task.batches(replace(enc, rows=rows, targets=None, groups=None, extra=None), bb)
        digest, name = inputs.bundle.fingerprint(), "the training data"
    key = _key("fisher", bb, inputs.max_length, digest, REFERENCE_TEXTS, FISHER_DRAWS, FISHER_BATCH)

    def compute() -> dict[str, torch.Tensor]:
        bb.model.to(resolve_device(cfg.device))
        feed = (batch for _, batch in batches.eval_batches(FISHER_BATCH))
        return diagonal_fisher(bb.model, feed, _embed(bb.pooling), FISHER_DRAWS, SAMPLE_SEED)

    t0 = time.perf_counter()
    fisher = _cached(inputs, "fisher", key, compute)
    return fisher, {"reference": name, "texts": len(rows), "seconds": round(time.perf_counter() - t0, 2)}


# -- replay -----------------------------------------------------------------------------------------


def _replay(inputs: RunInputs, cfg: TrainConfig, seed: int) -> tuple[Replay, dict]:
    """The replay objective for this backbone: the checkpoint's own masked-LM objective when it has an
    MLM head (and is not a sentence-embedding model); otherwise distillation toward the original's pooled
    embeddings."""
    bb = inputs.backbone
    tok = getattr(bb, "tokenizer", None)
    head = None
    if (
        isinstance(tok, PreTrainedTokenizerBase)
        and tok.mask_token_id is not None
        and not _sentence_embedder(bb.path)
    ):
        head = frozen_mlm_head(bb.path, bb.trust_remote_code)
    if head is not None:
        return _mlm_replay(inputs, cfg, seed, head)
    rows = corpus_rows(inputs, cfg.replay, "--replay", REPLAY_TEXTS)
    device = resolve_device(cfg.device)
    precision = resolve_precision(device, cfg.precision)
    key = _key("replay", bb, inputs.max_length, content_digest(cfg.replay), REPLAY_TEXTS, precision)
    pad = bb.tokenizer.pad_token_id or 0

    def compute() -> dict[str, torch.Tensor]:
        bb.model.to(device)
        return {"e0": embeddings(bb.model, rows, _embed(bb.pooling), pad, cfg.eval_batch_size, precision)}

    t0 = time.perf_counter()
    targets = _cached(inputs, "replay", key, compute)["e0"]  # (N, H): the original body's
    per_step = math.ceil(cfg.replay_ratio * cfg.batch_size)
    term = EmbeddingReplay(
        rows, targets, per_step, cfg.replay_ratio, _embed(bb.pooling), pad, precision, seed
    )
    why = "a sentence-embedding model" if _sentence_embedder(bb.path) else "no MLM head in the checkpoint"
    log.info(
        "  replay: %d texts of %s, %d a step with weight %g, distilled toward the original's %s-pooled "
        "embeddings (%s)",
        len(rows),
        Path(cfg.replay).name,
        per_step,
        cfg.replay_ratio,
        bb.pooling,
        why,
    )
    record = {
        "file": Path(cfg.replay).name,
        "texts": len(rows),
        "per_step": per_step,
        "weight": cfg.replay_ratio,
        "objective": "embedding-distillation",
        "seconds": round(time.perf_counter() - t0, 2),
    }
    return term, record


def _mlm_replay(inputs: RunInputs, cfg: TrainConfig, seed: int, head) -> tuple[Replay, dict]:
    bb = inputs.backbone
    texts = read_corpus(cfg.replay, getattr(inputs.bundle, "text_col", None), "--replay")
    texts = [texts[i] for i in _sample(len(texts), REPLAY_TEXTS)]
    chunks = chunk_corpus(bb.tokenizer, texts, inputs.max_length, split_long=False)
    per_step = math.ceil(cfg.replay_ratio * cfg.batch_size)
    log.info(
        "  replay: %d texts of %s, %d a step with weight %g, masked-LM loss through the checkpoint's own head",
        len(chunks), Path(cfg.replay).name, per_step, cfg.replay_ratio,
    )  # fmt: skip
    record = {
        "file": Path(cfg.replay).name,
        "texts": len(chunks),
        "per_step": per_step,
        "weight": cfg.replay_ratio,
        "objective": "masked-lm",
    }
    return MaskedLMReplay(chunks, head, bb.tokenizer, per_step, cfg.replay_ratio, seed), record


def _sentence_embedder(path: str) -> bool:
    """A sentence-transformers checkpoint (the packaged MiniLM is one): its folder says how it pools."""
    return any((Path(path) / f).is_file() for f in ("modules.json", "sentence_bert_config.json"))


# -- shared -----------------------------------------------------------------------------------------


def corpus_rows(inputs: RunInputs, path: str, flag: str, limit: int) -> list[dict]:
    """A seeded sample of at most `limit` texts of a corpus file, tokenized as the run's inputs are."""
    bb = inputs.backbone
    tok = getattr(bb, "tokenizer", None)
    if not isinstance(tok, PreTrainedTokenizerBase):
        fallback = " (EWC then weighs by the Fisher on the training images)" if flag == "--reference" else ""
        raise TunebenchError(
            f"{flag} {path}: a corpus of text, but {bb.name} reads images; leave {flag} out{fallback}"
        )
    texts = read_corpus(path, getattr(inputs.bundle, "text_col", None), flag)
    texts = [texts[i] for i in _sample(len(texts), limit)]
    ids = tok(texts, truncation=True, max_length=inputs.max_length)["input_ids"]
    return [{"input_ids": list(row)} for row in ids]


def _embed(pooling: str) -> Callable:
    return lambda body, batch: pooled_embedding(body, batch, pooling)


def _sample(n: int, limit: int) -> list[int]:
    """A seeded sample of `limit` of n positions, in order (all of them when n <= limit)."""
    if n <= limit:
        return list(range(n))
    return sorted(np.random.default_rng(SAMPLE_SEED).choice(n, size=limit, replace=False).tolist())


def _key(kind: str, bb, max_length: int, *parts) -> str:
    """What a cached Fisher / replay target depends on: the model, its pooling, the max length, the corpus."""
    text = "|".join(map(str, (kind, bb.name, bb.path, bb.pooling, max_length, *parts)))
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _cached(inputs: RunInputs, kind: str, key: str, compute) -> dict[str, torch.Tensor]:
    """`compute()` stored under `<out>/cache/<kind>/KEY.safetensors` (atomically: workers share the
    cache), or read back from there; no cache when the inputs have no output folder."""
    path = Path(inputs.out_dir) / "cache" / kind / f"{key}.safetensors" if inputs.out_dir else None
    if path is not None and path.is_file():
        return load_file(str(path))
    tensors = compute()
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")  # this process's name: workers share the cache
        save_file({n: t.contiguous() for n, t in tensors.items()}, str(tmp))
        tmp.replace(path)
    return tensors
