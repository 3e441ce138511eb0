"""How far fine-tuning moved the backbone: representation drift per layer, and a forgetting check.

Drift is linear CKA (Kornblith et al. 2019, "Similarity of Neural Network Representations Revisited"),
in its plain form (the biased HSIC estimator, the one the paper reports), between the pre-trained and
the fine-tuned backbone's mean-pooled hidden states on up to `MAX_INPUTS` dev inputs, for the
embeddings and every block. 1 means the layer's representation is unchanged up to rotation and scale;
lower means fine-tuning reshaped it. The pre-trained side comes from the feature cache (the one pass
`features` and `head` already share); the fine-tuned side costs one forward pass.

Forgetting: a frozen probe (mean-pooled last layer + logistic regression, C chosen on dev) on a second
dataset, once with the original backbone and once with the fine-tuned one from an exported run. For
STS-B (sentence similarity, no classes) the probe is the classic zero-shot one: Spearman correlation of
the cosine similarity of the two sentences' embeddings with the gold scores.
"""

from __future__ import annotations

import csv
import json
import logging
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr  # a dependency of scikit-learn

from ..artifacts import read_manifest
from ..backbones import load_backbone, pool, quiet_libraries
from ..data import DataConfig, NamedDataset, load_text_classification, locate
from ..errors import TunebenchError
from ..estimators import LinearProbe
from ..extract import all_layer_pools
from ..prediction import Predictor
from ..progress import bar
from ..strategies import STRATEGIES
from ..tasks import get_task
from ..training.batching import TokenBatches
from ..training.loop import autocast, resolve_device
from .frozen import DEFAULT_TASK

log = logging.getLogger("tunebench")
MAX_INPUTS = 500  # dev inputs per drift measurement: CKA is stable well below this (Kornblith et al.)
MEAN = 1  # index of mean pooling in the feature cache's pooling axis ([CLS] is 0)
STSB_NAMES = ("stsb", "sts-b", "sts-benchmark")


# ----------------------------------------------------------------------------- drift


def changes_backbone(strategy) -> bool:
    """False for strategies whose backbone stays the pre-trained one: a frozen-feature fit (kind
    "features", i.e. not the "gradient" training loop) or a head trained on cached features."""
    return strategy.kind == "gradient" and not strategy.uses_cached_features


def linear_cka(X: np.ndarray, Y: np.ndarray) -> float | None:
    """Plain linear CKA of (N, D1) and (N, D2): ||Yc^T Xc||_F^2 / (||Xc^T Xc||_F ||Yc^T Yc||_F).

    None when either side is constant (CKA is undefined)."""
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    X = X - X.mean(0)
    Y = Y - Y.mean(0)
    if len(X) < max(X.shape[1], Y.shape[1]):  # fewer inputs than features: work with (N, N) Grams
        K, L = X @ X.T, Y @ Y.T
        num, nx, ny = (K * L).sum(), np.linalg.norm(K), np.linalg.norm(L)
    else:
        num = np.linalg.norm(Y.T @ X) ** 2
        nx, ny = np.linalg.norm(X.T @ X), np.linalg.norm(Y.T @ Y)
    if nx == 0 or ny == 0:
        return None
    return float(num / (nx * ny))


def layer_names(n: int) -> list[str]:
    """Names of the n = L+1 hidden states: the embeddings, then each block."""
    return ["embeddings"] + [f"layer {i}" for i in range(1, n)]


def cka_per_layer(before: np.ndarray, after: np.ndarray) -> list[float | None]:
    """(N, L+1, H) x (N, L+1, H) -> one CKA per layer."""
    return [linear_cka(before[:, i], after[:, i]) for i in range(before.shape[1])]


def drift_subset(n: int, limit: int = MAX_INPUTS) -> np.ndarray | None:
    """Indices of the dev inputs to use (seeded, sorted), or None for all of them."""
    if n <= limit:
        return None
    return np.sort(np.random.default_rng(0).choice(n, limit, replace=False))


def representation_drift(inputs, module: torch.nn.Module, cfg) -> dict:
    """Drift entry for a run record: per-layer CKA between the pre-trained backbone (feature cache)
    and `module`, the fine-tuned backbone (a peft wrapper too: calling it keeps the adapters active)."""
    t0 = time.perf_counter()
    rows = inputs.enc["dev"].rows
    cached = inputs.source(cfg).pools(rows)  # (N, L+1, 2, H)
    idx = drift_subset(len(rows))
    if idx is not None:  # a subset: the fine-tuned side runs on these inputs only
        rows, cached = [rows[i] for i in idx], cached[idx]
    pad = inputs.backbone.tokenizer.pad_token_id or 0
    tuned = all_layer_pools(module, rows, pad, cfg.eval_batch_size, cfg.device, cfg.precision)
    if tuned.shape[1] != cached.shape[1]:
        raise RuntimeError(f"{tuned.shape[1]} hidden states after fine-tuning, {cached.shape[1]} before")
    cka = cka_per_layer(cached[:, :, MEAN], tuned[:, :, MEAN])
    return {
        "cka": [None if c is None else round(c, 8) for c in cka],
        "layers": layer_names(len(cka)),
        "inputs": len(rows),
        "representation": "mean-pooled",
        "method": "linear CKA, plain (biased HSIC), Kornblith et al. 2019",
        "seconds": round(time.perf_counter() - t0, 2),  # not counted in the run's wall_seconds
    }


def drift_entry(inputs, strategy, module: torch.nn.Module, cfg) -> dict:
    """What a run record gets: {"drift": ...}, {} for strategies that leave the backbone unchanged, or
    {"drift_error": ...} (a failed measurement never fails the run it describes)."""
    if not changes_backbone(strategy):
        return {}
    try:
        return {"drift": representation_drift(inputs, module, cfg)}
    except Exception as err:  # analysis only; the trained run stays valid
        log.warning("%s: drift not measured (%s: %s)", strategy.name, type(err).__name__, err)
        return {"drift_error": f"{type(err).__name__}: {err}"}


def drift_from_artifact(inputs, strategy, run_dir: Path, cfg) -> dict:
    """Drift for a stored run that was trained without it, from its saved artifact (no retraining)."""
    if not changes_backbone(strategy):
        return {}
    if not (Path(run_dir) / "manifest.json").is_file():
        return {"drift_error": f"{run_dir}: the run's artifact is missing"}
    try:
        model = Predictor(run_dir).model
    except Exception as err:  # an unreadable artifact costs the drift, not the compare
        return {"drift_error": f"{run_dir}: cannot load the artifact ({type(err).__name__}: {err})"}
    return drift_entry(inputs, strategy, model.backbone, cfg)


class DriftHook:
    """`compare`'s post-run hook for `drift=True`: each fine-tuning run's record gets `drift`; a stored
    run without it gets it from its saved artifact (`for_stored`), not by retraining."""

    field = "drift"

    def __call__(self, inputs, strategy, module: torch.nn.Module, cfg) -> dict:
        return drift_entry(inputs, strategy, module, cfg)

    def for_stored(self, inputs, strategy, run_dir: Path, cfg) -> dict:
        return drift_from_artifact(inputs, strategy, run_dir, cfg)


# ----------------------------------------------------------------------------- forgetting


@torch.no_grad()
def mean_last_layer(
    module: torch.nn.Module, rows: list[dict], pad_id: int, batch_size: int, device: str, precision: str
) -> np.ndarray:
    """(N, H) mean-pooled last hidden state (only the last layer: a whole probe set fits in memory)."""
    dev = resolve_device(device)
    module.to(dev).eval()
    out = None
    data = TokenBatches(rows, None, pad_id)
    with bar("embed", -(-len(rows) // batch_size)) as advance:
        for idx, batch in data.eval_batches(batch_size):
            batch = {k: v.to(dev) for k, v in batch.items()}
            with autocast(dev, precision):
                h = module(**batch).last_hidden_state  # (B, T, H)
            pooled = pool(h.float(), batch["attention_mask"], "mean").cpu().numpy()  # (B, H)
            if out is None:
                out = np.zeros((len(rows), pooled.shape[1]), dtype=np.float32)
            out[idx] = pooled
            advance(1)
    return out


def forgetting(
    run_dir: str | Path,
    probe_data,
    out: str | Path | None = None,
    *,
    batch_size: int = 128,
    device: str = "auto",
    precision: str = "auto",
    seed: int = 0,
    show: bool = True,
) -> dict:
    """Probe score on `probe_data` with the original backbone vs the fine-tuned one in `run_dir`.

    `probe_data`: a DataConfig or a dataset name / file (any text-classification data), or `stsb`.
    `difference_points` is fine-tuned minus original, in points (x100): negative means forgotten.
    With `out`, the result is added to `OUT/forgetting.json` (one entry per run and probe data)."""
    quiet_libraries()
    run_dir = Path(run_dir)
    m = read_manifest(run_dir)
    strategy = STRATEGIES.get(m["strategy"])
    if not changes_backbone(strategy):
        raise TunebenchError(
            f"{run_dir}: a {m['strategy']} run leaves the backbone unchanged, so there is nothing to forget; "
            "pick a run that fine-tunes it (full, last-k, lora, ...)"
        )
    if batch_size < 1:
        raise TunebenchError(f"--batch-size {batch_size}: must be >= 1")
    cfg = DataConfig(data=probe_data) if isinstance(probe_data, str) else probe_data
    original = load_backbone(m["backbone"], m.get("trust_remote_code", False), m["pooling"])
    tuned = Predictor(run_dir).model.backbone
    sides = {"original": original.model, "fine_tuned": tuned}
    embed = dict(
        pad_id=original.tokenizer.pad_token_id or 0, batch_size=batch_size, device=device, precision=precision
    )
    if cfg.data.lower() in STSB_NAMES:
        result = _sts_probe(cfg, original.tokenizer, m["max_length"], sides, embed)
    else:
        result = _classification_probe(cfg, original.tokenizer, m["max_length"], sides, embed, seed)
    split, metric = result["split"], result["metric"]
    diff = 100 * (result["fine_tuned"][split] - result["original"][split])
    result = {
        "run": str(run_dir.resolve()),
        "strategy": m["strategy"],
        "backbone": m["backbone"],
        **result,
        "difference_points": round(diff, 2),
        "text": (
            f"{m['strategy']} {'lost' if diff < 0 else 'gained'} {abs(diff):.1f} points of {split} {metric} "
            f"on {result['probe_data']} ({result['original'][split]:.4f} -> {result['fine_tuned'][split]:.4f})"
        ),
    }
    if out is not None:
        _append_result(Path(out) / "forgetting.json", result)
    if show:
        log.info("forgetting: %s", result["text"])
    return result


def _classification_probe(cfg, tokenizer, max_length: int, sides: dict, embed: dict, seed: int) -> dict:
    task = get_task(DEFAULT_TASK)
    bundle = load_text_classification(cfg)
    splits = {s: getattr(bundle, s) for s in ("train", "dev", "test") if getattr(bundle, s) is not None}
    rows = {s: task.encode(tokenizer, split, max_length).rows for s, split in splits.items()}
    labels = {s: np.asarray(split.labels) for s, split in splits.items()}
    metric = task.primary_metric
    result = {
        "probe_data": bundle.name,
        "probe_fingerprint": bundle.fingerprint(),
        "probe": "frozen mean-pooled last layer + logistic regression, C chosen on dev",
        "sizes": {s: len(r) for s, r in rows.items()},
        "metric": metric,
        "split": "test" if "test" in rows else "dev",
    }
    for side, module in sides.items():
        X = {s: mean_last_layer(module, r, **embed) for s, r in rows.items()}
        clf = LinearProbe(seed=seed).fit(X["train"], labels["train"], X["dev"], labels["dev"])
        scores = {
            s: task.metrics(clf.decision_function(X[s]), labels[s], bundle.label_names)[metric]
            for s in rows
            if s != "train"
        }
        result[side] = {**scores, "C": clf.C_}
    return result


def read_sts(path: Path) -> tuple[list[str], list[str], np.ndarray]:
    """The STS benchmark's tab-separated files: genre, file, year, id, score, sentence 1, sentence 2 (+ extras)."""
    first, second, scores = [], [], []
    with open(path, newline="", encoding="utf-8") as f:
        for i, row in enumerate(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE), 1):
            if len(row) < 7:
                raise TunebenchError(
                    f"{path} line {i}: expected 7 tab-separated fields (STS benchmark format)"
                )
            try:
                scores.append(float(row[4]))
            except ValueError:
                raise TunebenchError(f"{path} line {i}: score {row[4]!r} is not a number") from None
            first.append(row[5])
            second.append(row[6])
    return first, second, np.asarray(scores)


def _sts_probe(cfg, tokenizer, max_length: int, sides: dict, embed: dict) -> dict:
    files = {"test": "stsb/sts-test.csv"}
    path = locate(NamedDataset("stsb", "sentence-similarity", files), cfg.data_dir)["test"]
    first, second, gold = read_sts(path)
    if cfg.eval_size is not None and cfg.eval_size < len(gold):
        keep = np.sort(np.random.default_rng(cfg.seed).choice(len(gold), cfg.eval_size, replace=False))
        first, second, gold = [first[i] for i in keep], [second[i] for i in keep], gold[keep]
    texts = first + second
    enc = tokenizer(texts, truncation=True, max_length=max_length, padding=False, return_attention_mask=False)
    rows = [{"input_ids": ids} for ids in enc["input_ids"]]
    result = {
        "probe_data": "stsb",
        "probe_fingerprint": f"{path.name}:{len(gold)}",
        "probe": "cosine similarity of mean-pooled last-layer embeddings (no training) vs gold scores",
        "sizes": {"test": len(gold)},
        "metric": "spearman",
        "split": "test",
    }
    n = len(gold)
    for side, module in sides.items():
        E = mean_last_layer(module, rows, **embed)
        E = E / np.maximum(np.linalg.norm(E, axis=1, keepdims=True), 1e-12)
        cosine = (E[:n] * E[n:]).sum(1)
        result[side] = {"test": float(spearmanr(cosine, gold).statistic)}
    return result


def _append_result(path: Path, result: dict) -> None:
    """Keep one entry per (run, probe data): a rerun replaces its own entry."""
    entries = []
    if path.is_file():
        try:
            entries = json.loads(path.read_text())
        except ValueError:
            entries = []
    if not isinstance(entries, list):
        entries = []
    same = (result["run"], result["probe_fingerprint"])
    entries = [e for e in entries if (e.get("run"), e.get("probe_fingerprint")) != same] + [result]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(entries, indent=2))
