"""Run one strategy with one seed on one dataset: train, evaluate, save, and describe the run."""

from __future__ import annotations

import platform
import random
import shutil
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import save_file as save_np

from . import __version__
from .artifacts import save_artifact
from .errors import TunebenchError
from .extract import FeatureCache, select
from .measure import PeakMemory
from .model import HeadOnFeatures, TaskModel, count_parameters
from .strategies.base import Strategy
from .training.batching import TensorBatches, TokenBatches
from .training.config import TrainConfig
from .training.loop import Diverged, fit, predict_logits, resolve_device


@dataclass
class Context:
    """What every run of one compare shares: data, backbone, task, tokenized splits, caches."""

    task: object
    backbone: object
    bundle: object
    out_dir: Path
    max_length: int
    rows: dict[str, list] = field(default_factory=dict)  # split name -> tokenized rows
    cache: FeatureCache | None = None
    drift: bool = False  # measure representation drift after fine-tuning (analysis/drift.py)

    def __post_init__(self):
        self.cache = FeatureCache(self.out_dir)
        for name in ("train", "dev", "test"):
            split = getattr(self.bundle, name)
            if split is not None:
                self.rows[name] = self.task.encode(self.backbone.tokenizer, split, self.max_length)

    @property
    def splits(self) -> list[str]:
        return list(self.rows)

    def labels(self, split: str) -> np.ndarray:
        return np.asarray(getattr(self.bundle, split).labels)

    def label_counts(self, split: str) -> dict[str, int]:
        counts = np.bincount(self.labels(split), minlength=len(self.bundle.label_names))
        return {name: int(c) for name, c in zip(self.bundle.label_names, counts)}

    def truncated_share(self, split: str = "train") -> float:
        rows = self.rows[split]
        return sum(len(r["input_ids"]) >= self.max_length for r in rows) / max(len(rows), 1)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def library_versions() -> dict[str, str]:
    import peft
    import sklearn
    import transformers

    return {
        "tunebench": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "peft": peft.__version__,
        "scikit-learn": sklearn.__version__,
    }


def run_one(ctx: Context, strategy: Strategy, cfg: TrainConfig, seed: int, key: str) -> dict:
    """Returns the run record; status 'ok' or 'error: ...' (a failed run never stops the ladder)."""
    record = {
        "key": key,
        "strategy": strategy.name,
        "settings": strategy.settings(),
        "train_config": cfg.as_dict(),
        "seed": seed,
        "task": ctx.task.name,
        "model": ctx.backbone.name,
        "newly_initialized_weights": ctx.backbone.newly_initialized,
        "max_length": ctx.max_length,
        "pooling": ctx.backbone.pooling,
        "data": ctx.bundle.name,
        "data_fingerprint": ctx.bundle.fingerprint(),
        "sizes": {s: len(ctx.rows[s]) for s in ctx.splits},
        "label_counts": {s: ctx.label_counts(s) for s in ctx.splits},
        "truncated_share": {s: round(ctx.truncated_share(s), 4) for s in ctx.splits},
        "versions": library_versions(),
        "device": str(resolve_device(cfg.device)),
    }
    run_dir = ctx.out_dir / "runs" / key
    t_start = time.perf_counter()
    try:
        with PeakMemory(resolve_device(cfg.device)) as mem:
            seed_everything(seed)
            if strategy.kind == "features":
                outcome = _run_features(ctx, strategy, cfg, seed, run_dir)
            else:
                outcome = _run_gradient(ctx, strategy, cfg, seed, run_dir)
        record.update(outcome)
        record["status"] = "ok"
    except TunebenchError:
        raise  # the user's mistake (a bad option): stop with one line; finished runs are already stored
    except Diverged as err:
        record["status"] = f"error: diverged: {err}"
    except Exception as err:  # our bug or a library failure: record it, keep the ladder going
        tb = traceback.format_exc(limit=-3)
        record["status"] = f"error: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
        record["traceback"] = tb
        shutil.rmtree(run_dir, ignore_errors=True)
    record["peak_memory_mb"] = round(mem.peak_mb, 1) if "mem" in locals() else None
    drift_s = (record.get("drift") or {}).get("seconds", 0.0)  # analysis, not the run's cost
    record["wall_seconds"] = round(time.perf_counter() - t_start - drift_s, 2)
    return record


def _manifest(ctx: Context, strategy: Strategy, cfg: TrainConfig, pooling: str, layers: str = "last") -> dict:
    return {
        "tunebench_version": __version__,
        "task": ctx.task.name,
        "strategy": strategy.name,
        "strategy_settings": strategy.settings(),
        "backbone": ctx.backbone.name,
        "trust_remote_code": ctx.backbone.trust_remote_code,
        "pooling": pooling,
        "layers": layers,
        "max_length": ctx.max_length,
        "dropout": cfg.dropout,
        "label_names": ctx.bundle.label_names,
    }


def _pooled(
    ctx: Context, split: str, cfg: TrainConfig, pooling: str, layers: str
) -> tuple[np.ndarray, float]:
    pools = ctx.cache.get(
        ctx.backbone, ctx.rows[split], ctx.max_length, cfg.eval_batch_size, cfg.device, cfg.precision
    )
    return select(pools, pooling, layers), ctx.cache.seconds


def _finish(ctx, run_dir: Path, logits: dict[str, np.ndarray], label_names) -> dict:
    """Metrics per split + the logits saved beside the artifact (for later analysis)."""
    save_np({k: v for k, v in logits.items()}, str(run_dir / "predictions.safetensors"))
    return {f"{s}_metrics": ctx.task.metrics(v, ctx.labels(s), label_names) for s, v in logits.items()}


def _run_features(ctx: Context, strategy, cfg: TrainConfig, seed: int, run_dir: Path) -> dict:
    pooling = ctx.backbone.pooling if strategy.pooling == "auto" else strategy.pooling
    X, extract_s = {}, 0.0
    for s in ctx.splits:
        X[s], secs = _pooled(ctx, s, cfg, pooling, strategy.layers)
        extract_s += secs
    t0 = time.perf_counter()
    strategy.fit(X["train"], ctx.labels("train"), X["dev"], ctx.labels("dev"), seed)
    train_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    logits = {s: strategy.decision(X[s]) for s in ctx.splits if s != "train"}
    eval_s = time.perf_counter() - t0
    n_params = sum(a.size for a in strategy.state().values() if a is not None) - 2 * X["train"].shape[1]
    total = sum(p.numel() for p in ctx.backbone.model.parameters()) + n_params
    size = save_artifact(run_dir, _manifest(ctx, strategy, cfg, pooling, strategy.layers), strategy)
    return {
        **_finish(ctx, run_dir, logits, ctx.bundle.label_names),
        "chosen": {"C": strategy.C_},
        "times": {
            "extraction": round(extract_s, 2),
            "training": round(train_s, 2),
            "evaluation": round(eval_s, 2),
        },
        "examples_per_second": round(len(X["train"]) / train_s, 1) if train_s > 0 else None,
        "trainable_params": int(n_params),
        "total_params": int(total),
        "artifact_bytes": size,
    }


def _run_gradient(ctx: Context, strategy, cfg: TrainConfig, seed: int, run_dir: Path) -> dict:
    names = ctx.bundle.label_names
    pooling = ctx.backbone.pooling
    device = resolve_device(cfg.device)
    head = ctx.task.build_head(ctx.backbone.hidden_size, len(names), pooling, cfg.dropout)
    backbone_module = ctx.backbone.random_model(seed) if strategy.from_scratch else ctx.backbone.fresh_model()
    full_model = strategy.prepare(TaskModel(backbone_module, head))
    extract_s = 0.0
    if strategy.uses_cached_features:  # head-only: frozen pooled features, computed once
        feats = {}
        for s in ctx.splits:
            feats[s], secs = _pooled(ctx, s, cfg, pooling, "last")
            extract_s += secs
        model = HeadOnFeatures(full_model.head)
        data = {s: TensorBatches(feats[s], ctx.labels(s)) for s in ctx.splits}
    else:
        model = full_model
        pad = ctx.backbone.tokenizer.pad_token_id or 0
        data = {s: TokenBatches(ctx.rows[s], ctx.labels(s), pad) for s in ctx.splits}
    groups = strategy.param_groups(model, cfg)
    hook = strategy.epoch_hook(cfg)
    result = fit(
        model, groups, data["train"], data["dev"], ctx.task, names, cfg, seed, hook, description=strategy.name
    )
    t0 = time.perf_counter()
    logits = {s: predict_logits(model, data[s], cfg, device) for s in ctx.splits if s != "train"}
    eval_s = result.eval_seconds + time.perf_counter() - t0
    trainable, total = count_parameters(full_model)
    full_model.to("cpu")
    size = save_artifact(run_dir, _manifest(ctx, strategy, cfg, pooling), strategy, full_model, ctx.backbone)
    drift = {}
    if ctx.drift:
        from .analysis.drift import drift_entry

        drift = drift_entry(ctx, strategy, full_model.backbone, cfg)
    return {
        **_finish(ctx, run_dir, logits, names),
        "best_epoch": result.best_epoch,
        "history": result.history,
        "steps": result.steps,
        "times": {
            "extraction": round(extract_s, 2),
            "training": round(result.train_seconds, 2),
            "evaluation": round(eval_s, 2),
        },
        "examples_per_second": round(result.examples_per_second, 1),
        "trainable_params": trainable,
        "total_params": total,
        "artifact_bytes": size,
        **drift,
    }
