"""`tunebench adapt`: domain-adaptive pre-training (DAPT, Gururangan et al. 2020). The backbone keeps
training on unlabelled in-domain text with a self-supervised objective, before any labelled strategy:

- `mlm`: masked language modelling with whole-word masking (backbones/mlm.py), the objective BERT-style
  encoders were pre-trained with; the checkpoint's own MLM head, else a new one (reported as such);
- `tsdae`: the denoising auto-encoder sentence-transformers recommends for adapting embedding models
  (backbones/tsdae.py);
- `auto`: `mlm` for a checkpoint with an MLM head; for a sentence-embedding checkpoint without one,
  EMBEDDING_DEFAULT, the objective that measured better on the README's IMDB experiment.

Training goes through the one loop (training/loop.py `fit`): a "round" is `steps / rounds` steps and
ends with the loss on a held-out slice of the corpus; the best round is kept. The result is a model
folder (weights as safetensors, tokenizer, the sentence-transformers pooling files when the source had
them) that `--model DIR` loads like any other, and `adapt.json`: what it cost and what it changed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from .backbones import load_backbone, quiet_libraries
from .backbones.mlm import MaskedLM, WholeWordMasking, load_masked_lm
from .backbones.pretraining import CorpusBatches, HeldOut, TokenPrediction, chunk_corpus, held_out_metrics
from .backbones.tsdae import DeleteWords, Tsdae, load_decoder
from .data.text import read_corpus as corpus_texts
from .errors import TunebenchError
from .measure import PeakMemory, library_versions, seed_everything
from .store import check_out_dir, run_key
from .training.config import TrainConfig
from .training.loop import fit, resolve_device
from .training.optim import decay_groups

log = logging.getLogger("tunebench")

OBJECTIVES = ("auto", "mlm", "tsdae")
EMBEDDING_DEFAULT = "tsdae"
LEARNING_RATE = {"mlm": 5e-5, "tsdae": 3e-5}  # BERT's continued-pretraining rate; the TSDAE paper's
ST_FILES = ("modules.json", "config_sentence_transformers.json", "sentence_bert_config.json", "1_Pooling")
HELD_OUT = 500  # corpus texts kept aside (at most a tenth) to score each round


def read_corpus(path: str | Path, text_col: str | None = None) -> list[str]:
    """Unlabelled texts: a text file (.txt, .txt.gz; one document per line) or a table's text column
    (CSV, TSV, JSONL, Parquet; `text_col`, else found by name), as --reference and --replay read them."""
    if not Path(path).is_file():
        raise TunebenchError(
            f"--corpus {path}: no such file; give a text file (one document per line) or a table"
        )
    texts = [t.strip() for t in corpus_texts(str(path), text_col, "--corpus")]
    if len(texts) < 2:
        raise TunebenchError(f"--corpus {path}: {len(texts)} text; adaptation needs at least 2")
    return texts


def adapt(
    corpus: str | Path,
    model: str = "minilm",
    out: str | Path = "tunebench-adapted",
    *,
    text_col: str | None = None,
    objective: str = "auto",
    steps: int | None = None,
    epochs: int | None = None,
    lr: float | None = None,
    batch_size: int = 16,
    max_length: int | None = None,
    seed: int = 0,
    device: str = "auto",
    precision: str = "auto",
    exclude: set[str] | frozenset[str] = frozenset(),
    trust_remote_code: bool = False,
) -> dict:
    """Continue pre-training `model` on `corpus`; writes the adapted model folder `out` and returns its
    record (also `out/adapt.json`). A folder already holding this very adaptation is reused. `exclude`:
    texts left out of the corpus (the labelled rows a comparison trains and scores on)."""
    quiet_libraries()
    if objective not in OBJECTIVES:
        raise TunebenchError(f"--objective {objective}: choose {', '.join(OBJECTIVES)}")
    if steps is not None and epochs is not None:
        raise TunebenchError("give --steps or --epochs, not both")
    if (steps is not None and steps < 1) or (epochs is not None and epochs < 1):
        raise TunebenchError("--steps and --epochs must be >= 1")
    texts = [t for t in read_corpus(corpus, text_col) if t not in exclude]
    if len(texts) < 2:
        raise TunebenchError(
            f"--corpus {corpus}: fewer than 2 texts are left once the labelled rows are excluded"
        )
    steps = steps if steps is not None or epochs is not None else 1000
    identity = {
        "model": model,
        "corpus": hashlib.sha256("\n".join(texts).encode()).hexdigest()[:16],
        "objective": objective,
        "steps": steps,
        "epochs": epochs,
        "lr": lr,
        "batch_size": batch_size,
        "max_length": max_length,
        "seed": seed,
    }
    out = check_out_dir(out)
    record_file = out / "adapt.json"
    if record_file.is_file():
        record = json.loads(record_file.read_text())
        if record.get("key") == run_key(identity):
            log.info("adapt: %s already holds this adaptation (%s); reusing it", out, record["objective"])
            return record
    if any(out.iterdir()):
        raise TunebenchError(f"--out {out}: not empty and not this adaptation; give a new or empty folder")

    t_start = time.perf_counter()
    seed_everything(seed)
    backbone = load_backbone(model, trust_remote_code)
    if not hasattr(backbone, "tokenizer") or backbone.tokenizer is None:
        raise TunebenchError(f"adapt: model '{model}' has no tokenizer; adaptation is for text encoders")
    limit = min(max_length or backbone.max_length, backbone.max_length)
    mlm, new_head = load_masked_lm(backbone.path, trust_remote_code) if objective != "tsdae" else (None, [])
    chosen, why = _choose(objective, backbone.path, new_head)
    if chosen == "mlm":
        net, make = MaskedLM(mlm), WholeWordMasking(backbone.tokenizer)
        if new_head:
            log.info("adapt: %s has no MLM head; a new one is initialised (%d tensors)", model, len(new_head))
    else:
        encoder = backbone.model
        net = Tsdae(encoder, load_decoder(backbone.path, encoder, trust_remote_code), backbone.pooling)
        make = DeleteWords(backbone.tokenizer)
    del mlm

    rng = np.random.default_rng(seed)
    order = rng.permutation(len(texts))
    n_held = min(HELD_OUT, max(1, len(texts) // 10))
    held_texts, train_texts = [texts[i] for i in order[:n_held]], [texts[i] for i in order[n_held:]]
    split_long = chosen == "mlm"  # MLM reads every token of a long document; TSDAE encodes one text
    train_chunks = chunk_corpus(backbone.tokenizer, train_texts, limit, split_long)
    held = HeldOut(chunk_corpus(backbone.tokenizer, held_texts, limit, split_long), make)
    if epochs is not None:
        rounds, per_round = epochs, max(1, len(train_chunks) // batch_size)
    else:
        rounds = min(10, max(1, steps // 100))
        per_round = math.ceil(steps / rounds)
    cfg = TrainConfig(
        lr=lr or LEARNING_RATE[chosen],
        epochs=rounds,
        batch_size=batch_size,
        warmup_ratio=0.06,
        patience=rounds,
        device=device,
        precision=precision,
    )
    dev = resolve_device(cfg.device)
    net.to(dev)
    before = held_out_metrics(held.predict(net, cfg, dev))
    log.info(
        "adapt: %s by %s (%s) on %d texts (%d chunks of <= %d tokens), %d steps; held-out loss %.3f",
        model, chosen, why, len(train_texts), len(train_chunks), limit, rounds * per_round, before["loss"],
    )  # fmt: skip
    groups = decay_groups(net.named_parameters(), cfg.lr, cfg.weight_decay)
    with PeakMemory(dev) as peak:
        result = fit(
            net,
            groups,
            CorpusBatches(train_chunks, make, per_round, seed),
            held,
            TokenPrediction(),
            held_out_metrics,
            cfg,
            seed,
            description=f"adapt ({chosen})",
            metric="neg_loss",
        )
    after = result.best_dev
    _save(net, chosen, backbone, out)
    record = {
        "key": run_key(identity),
        "identity": identity,
        "model": model,
        "adapted": str(out),
        "objective": chosen,
        "objective_why": why,
        "new_head": new_head if chosen == "mlm" else [],
        "corpus": {
            "path": str(corpus),
            "texts": len(train_texts),
            "held_out": n_held,
            "chunks": len(train_chunks),
        },
        "max_length": limit,
        "steps": result.steps,
        "best_round": result.best_epoch,
        "held_out_before": before,
        "held_out_after": after,
        "history": result.history,
        "train_seconds": result.train_seconds,
        "seconds": time.perf_counter() - t_start,
        "tokens_per_second": result.tokens_per_second,
        "peak_mb": peak.peak_mb,
        "config": cfg.as_dict(),
        "versions": library_versions(),
    }
    tmp = record_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=1, default=str))
    tmp.replace(record_file)  # written last: a folder with adapt.json is a finished adaptation
    log.info(
        "adapt: held-out loss %.3f -> %.3f (perplexity %.1f -> %.1f) in %.0f s; the adapted model is %s "
        "(use --model %s)",
        before["loss"], after["loss"], before["perplexity"], after["perplexity"], record["seconds"], out, out,
    )  # fmt: skip
    return record


def _choose(objective: str, path: str, new_head: list[str]) -> tuple[str, str]:
    """The objective to run and why (for the record)."""
    if objective != "auto":
        return objective, "asked for"
    if not new_head:
        return "mlm", "the checkpoint has its own MLM head"
    if any((Path(path) / f).exists() for f in ST_FILES):
        return EMBEDDING_DEFAULT, f"a sentence-embedding checkpoint without an MLM head: {EMBEDDING_DEFAULT}"
    return "mlm", "no MLM head in the checkpoint: a new one is trained with the encoder"


def _save(net: torch.nn.Module, objective: str, backbone, out: Path) -> None:
    """The adapted model folder: MLM keeps its head (a second adaptation, or MLM replay, reuses it);
    TSDAE keeps the encoder only. The tokenizer and the sentence-transformers files (pooling, max
    length) come along, so pooling and limits stay those of the source model."""
    keep = net.mlm if objective == "mlm" else net.encoder
    keep.save_pretrained(out, safe_serialization=True)
    backbone.tokenizer.save_pretrained(out)
    source = Path(backbone.path)
    for name in ST_FILES:
        if (source / name).is_dir():
            shutil.copytree(source / name, out / name, dirs_exist_ok=True)
        elif (source / name).is_file():
            shutil.copy2(source / name, out / name)
