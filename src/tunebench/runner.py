"""Run one strategy with one seed on one dataset: train, evaluate, save, and describe the run."""

from __future__ import annotations

import platform
import random
import shutil
import time
import traceback
from dataclasses import dataclass, field, replace
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
from .training.config import TrainConfig
from .training.loop import Diverged, fit, predict_logits, resolve_device


@dataclass
class Context:
    """What every run of one compare shares: data, backbone, task, encoded splits, caches."""

    task: object
    backbone: object
    bundle: object
    out_dir: Path
    max_length: int
    long_text: str = "truncate"  # or "chunk": windows of long texts, predictions pooled per text
    drift: bool = False  # measure representation drift after fine-tuning (analysis/drift.py)
    enc: dict = field(default_factory=dict)  # split name -> Encoded
    cache: FeatureCache | None = None
    extract_seconds: float = 0.0  # forward-pass seconds of frozen feature extraction in the current run

    def __post_init__(self):
        self.cache = FeatureCache(self.out_dir)
        for name in ("train", "dev", "test"):
            split = getattr(self.bundle, name)
            if split is not None:
                self.enc[name] = self.task.encode(self.backbone, split, self.max_length, self.long_text)

    @property
    def splits(self) -> list[str]:
        return list(self.enc)

    @property
    def rows(self) -> dict[str, list]:
        return {s: e.rows for s, e in self.enc.items()}

    def split(self, name: str):
        return getattr(self.bundle, name)

    def targets(self, name: str):
        """What the loss compares with, one per row of the encoded split."""
        return self.enc[name].targets

    def labels(self, name: str) -> np.ndarray:
        """One label per example (not per chunk)."""
        return self.task.example_labels(self.split(name))

    def score(self, name: str, outputs, per_example: bool = False) -> dict:
        enc = self.enc[name]
        if per_example:  # outputs already one per example (bi-encoder strategies never chunk)
            enc = replace(enc, groups=None)
        return self.task.score(outputs, enc, self.split(name), self.bundle.label_names)

    def batches(self, name: str):
        return self.task.batches(self.enc[name], self.backbone)

    def label_counts(self, split: str) -> dict[str, int] | None:
        if self.task.regression or self.task.token_level:
            return None
        counts = np.bincount(self.labels(split), minlength=len(self.bundle.label_names))
        return {name: int(c) for name, c in zip(self.bundle.label_names, counts)}

    def truncated_share(self, split: str = "train") -> float:
        """Share of examples cut at max length (0 for windows: chunked texts, QA contexts lose nothing)."""
        enc = self.enc[split]
        if enc.groups is not None or not enc.rows or "input_ids" not in enc.rows[0]:  # windows cut nothing
            return 0.0
        return sum(len(r["input_ids"]) >= self.max_length for r in enc.rows) / max(len(enc.rows), 1)

    def pooled(self, rows: list[dict], cfg: TrainConfig, pooling: str, layers: str) -> np.ndarray:
        """Frozen pooled features of token rows (through the on-disk cache); adds the forward-pass
        seconds to `extract_seconds`."""
        pools = self.cache.get(
            self.backbone, rows, self.max_length, cfg.eval_batch_size, cfg.device, cfg.precision
        )
        self.extract_seconds += self.cache.seconds
        return select(pools, pooling, layers)


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
        "sizes": {s: len(ctx.split(s)) for s in ctx.splits},
        "rows": {s: len(ctx.enc[s]) for s in ctx.splits},
        "long_text": ctx.long_text,
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
            ctx.extract_seconds = 0.0
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
        "long_text": ctx.long_text,
        "dropout": cfg.dropout,
        "label_names": ctx.bundle.label_names,
        "num_outputs": ctx.task.num_outputs(ctx.bundle),
    }


def _finish(ctx, run_dir: Path, outputs: dict, per_example: bool = False) -> dict:
    """Metrics per split + the outputs saved beside the artifact (for later analysis)."""
    arrays = {}
    for s, v in outputs.items():
        if isinstance(v, list):  # token-level: rows of different lengths, stored end to end
            arrays[s] = np.concatenate(v) if v else np.zeros((0,), np.float32)
            arrays[f"{s}.lengths"] = np.asarray([len(x) for x in v], dtype=np.int64)
        else:
            arrays[s] = v
    save_np(arrays, str(run_dir / "predictions.safetensors"))
    return {f"{s}_metrics": ctx.score(s, v, per_example) for s, v in outputs.items()}


def _run_features(ctx: Context, strategy, cfg: TrainConfig, seed: int, run_dir: Path) -> dict:
    pooling = ctx.backbone.pooling if strategy.pooling == "auto" else strategy.pooling
    per_example = strategy.per_example_inputs
    X = {s: strategy.inputs(ctx, s, cfg, pooling) for s in ctx.splits}
    y = {s: ctx.labels(s) if per_example else ctx.task.frozen_targets(ctx, s) for s in ctx.splits}
    primary = ctx.task.primary_metric

    def dev_score(logits: np.ndarray) -> float:
        return ctx.score("dev", logits, per_example)[primary]

    t0 = time.perf_counter()
    strategy.fit(
        X["train"],
        y["train"],
        X["dev"],
        y["dev"],
        seed,
        score=dev_score,
        regression=ctx.task.regression,
        n_classes=None if ctx.task.regression else len(ctx.bundle.label_names),
        loss=ctx.task.loss,
        device=cfg.device,  # the torch tagger / reader (token tasks) train on the GPU when there is one
    )
    train_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    logits = {s: strategy.decision(X[s]) for s in ctx.splits if s != "train"}
    eval_s = time.perf_counter() - t0
    n_params = strategy.trainable_count()
    total = sum(p.numel() for p in ctx.backbone.model.parameters()) + n_params
    size = save_artifact(run_dir, _manifest(ctx, strategy, cfg, pooling, strategy.layers), strategy)
    return {
        **_finish(ctx, run_dir, logits, per_example),
        "chosen": {"C": strategy.C_},
        "times": {
            "extraction": round(ctx.extract_seconds, 2),
            "training": round(train_s, 2),
            "evaluation": round(eval_s, 2),
        },
        "examples_per_second": round(len(X["train"]) / train_s, 1) if train_s > 0 else None,
        "trainable_params": int(n_params),
        "total_params": int(total),
        "artifact_bytes": size,
    }


def _run_gradient(ctx: Context, strategy, cfg: TrainConfig, seed: int, run_dir: Path) -> dict:
    pooling = ctx.backbone.pooling
    device = resolve_device(cfg.device)
    head = ctx.task.build_head(
        ctx.backbone.hidden_size, ctx.task.num_outputs(ctx.bundle), pooling, cfg.dropout
    )
    backbone_module = ctx.backbone.random_model(seed) if strategy.from_scratch else ctx.backbone.fresh_model()
    full_model = strategy.prepare(TaskModel(backbone_module, head))
    if strategy.uses_cached_features and ctx.task.head_on_cached_features():  # head-only: features once
        feats = {s: ctx.task.frozen_inputs(ctx, s, cfg, pooling, "last") for s in ctx.splits}
        model = HeadOnFeatures(full_model.head)
        data = {s: ctx.task.feature_batches(feats[s], ctx.task.frozen_targets(ctx, s)) for s in ctx.splits}
    else:
        model = full_model
        data = {s: ctx.batches(s) for s in ctx.splits}
    groups = strategy.param_groups(model, cfg)
    hook = strategy.epoch_hook(cfg)
    result = fit(
        model,
        groups,
        data["train"],
        data["dev"],
        ctx.task,
        lambda outputs: ctx.score("dev", outputs),
        cfg,
        seed,
        hook,
        description=strategy.name,
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
        **_finish(ctx, run_dir, logits),
        "best_epoch": result.best_epoch,
        "history": result.history,
        "steps": result.steps,
        "times": {
            "extraction": round(ctx.extract_seconds, 2),
            "training": round(result.train_seconds, 2),
            "evaluation": round(eval_s, 2),
        },
        "examples_per_second": round(result.examples_per_second, 1),
        "trainable_params": trainable,
        "total_params": total,
        "artifact_bytes": size,
        **drift,
    }
