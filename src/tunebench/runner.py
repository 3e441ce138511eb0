"""Run one strategy with one seed on one dataset: train, evaluate, save, and describe the run.

The runner asks the task for what a strategy consumes (encoded batches, or frozen inputs read through
an `extract.FrozenSource`) and hands it over; strategies and tasks never see the runner's state.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
import traceback
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from safetensors.numpy import save_file as save_np

from .artifacts import manifest, write_artifact
from .backbones.prefix import split_encoder
from .errors import TunebenchError
from .extract import FrozenSource
from .measure import PeakMemory, extraction_rate, library_versions, seed_everything, training_mfu
from .mitigation import forgetting_terms
from .model import HeadOnFeatures, PrefixModel, TaskModel, count_parameters, parked
from .run_inputs import RunInputs, frozen_inputs
from .strategies.base import Strategy
from .training import imbalance
from .training.batching import StateBatches, TokenBatches, pad_rows
from .training.config import TrainConfig
from .training.inference import inference_cost
from .training.loop import Diverged, Pruned, fit, predict_logits, resolve_device, resolve_precision
from .training.optim import with_min_rate

log = logging.getLogger("tunebench")


def run_one(
    inputs: RunInputs, strategy: Strategy, cfg: TrainConfig, seed: int, key: str, hooks=(), report=None
) -> dict:
    """Returns the run record; status 'ok', 'pruned' or 'error: ...' (a failed run never stops the
    ladder). `hooks`: callables (inputs, strategy, trained backbone, cfg) -> dict of extra record fields,
    run after a gradient strategy trained (e.g. representation drift); their time is not the run's.
    `report(epoch, dev score) -> stop?`: a search's pruner, asked after every epoch.
    The artifact is written under a temporary name of this process and renamed into `runs/KEY` when the
    run ends well: workers sharing the output folder never see, or delete, each other's half-written runs."""
    record = {
        "key": key,
        "strategy": strategy.name,
        "settings": strategy.settings(),
        "train_config": cfg.as_dict(),
        "seed": seed,
        "task": inputs.task.name,
        "model": inputs.backbone.name,
        "newly_initialized_weights": inputs.backbone.newly_initialized,
        "max_length": inputs.max_length,
        "pooling": inputs.backbone.pooling,
        "data": inputs.bundle.name,
        "data_fingerprint": inputs.bundle.fingerprint(),
        "sizes": {s: len(inputs.split(s)) for s in inputs.splits},
        "rows": {s: len(inputs.enc[s]) for s in inputs.splits},
        "long_text": inputs.long_text,
        "selection": {"metric": inputs.selection, "why": inputs.metric_reason or "the task's metric"},
        "label_counts": {s: inputs.label_counts(s) for s in inputs.splits},
        "truncated_share": {s: round(inputs.truncated_share(s), 4) for s in inputs.splits},
        "versions": library_versions(),
        "device": str(resolve_device(cfg.device)),
        "precision": resolve_precision(resolve_device(cfg.device), cfg.precision),
    }
    run_dir = inputs.out_dir / "runs" / key
    work_dir = run_dir.with_name(f".{key}.{os.getpid()}.tmp")
    shutil.rmtree(work_dir, ignore_errors=True)
    t_start = time.perf_counter()
    try:
        with PeakMemory(resolve_device(cfg.device)) as mem:
            seed_everything(seed)
            if strategy.kind == "estimator":
                outcome = _run_features(inputs, strategy, cfg, seed, work_dir)
            else:
                outcome = _run_gradient(inputs, strategy, cfg, seed, work_dir, hooks, report)
        record.update(outcome)
        record["status"] = "ok"
        shutil.rmtree(run_dir, ignore_errors=True)
        work_dir.rename(run_dir)
    except TunebenchError:
        shutil.rmtree(work_dir, ignore_errors=True)
        raise  # the user's mistake (a bad option): stop with one line; finished runs are already stored
    except Diverged as err:
        record["status"] = f"error: diverged: {err}"
    except Pruned as err:  # the search's pruner stopped it: a result (dev so far), not a failure
        record.update(status="pruned", history=err.history, best_epoch=err.epoch)
    except Exception as err:  # our bug or a library failure: record it, keep the ladder going
        tb = traceback.format_exc(limit=-3)
        record["status"] = f"error: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
        record["traceback"] = tb
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)  # anything not renamed into place
    record["peak_memory_mb"] = round(mem.peak_mb, 1) if "mem" in locals() else None
    hook_s = record.pop("_hook_seconds", 0.0)  # analysis, not the run's cost
    record["wall_seconds"] = round(time.perf_counter() - t_start - hook_s, 2)
    return record


def _finish(inputs: RunInputs, run_dir: Path, outputs: dict, per_example: bool = False) -> dict:
    """Metrics per split + the outputs saved beside the artifact (for later analysis)."""
    arrays = {}
    for s, v in outputs.items():
        if isinstance(v, list):  # token-level: rows of different lengths, stored end to end
            arrays[s] = np.concatenate(v) if v else np.zeros((0,), np.float32)
            arrays[f"{s}.lengths"] = np.asarray([len(x) for x in v], dtype=np.int64)
        else:
            arrays[s] = v
    save_np(arrays, str(run_dir / "predictions.safetensors"))
    return {f"{s}_metrics": inputs.score(s, v, per_example) for s, v in outputs.items()}


def _run_features(inputs: RunInputs, strategy, cfg: TrainConfig, seed: int, run_dir: Path) -> dict:
    task = inputs.task
    forgetting_terms(inputs, strategy, None, cfg, seed)  # --ewc / --replay: nothing trains here (logged)
    pooling = inputs.backbone.pooling if strategy.pooling == "auto" else strategy.pooling
    per_example = strategy.pairwise
    source = inputs.source(cfg, prefetch=not strategy.pairwise)  # pairwise: single texts, not last-k's rows
    X = {
        s: frozen_inputs(task, strategy, source, inputs.enc[s], inputs.split(s), pooling, inputs.columns)
        for s in inputs.splits
    }
    y = {s: inputs.labels(s) if per_example else task.frozen_targets(inputs.enc[s]) for s in inputs.splits}
    n_classes = None if task.regression else len(inputs.bundle.label_names)
    estimator = task.frozen_estimator(strategy, n_classes, seed, cfg.device)

    def dev_score(logits) -> float:
        return inputs.score("dev", logits, per_example)[inputs.selection]

    # class weights reach the linear probe (one class per example); the NER tagger and QA reader train
    # with the loop's plain loss
    weighted = {}
    if task.classes == "example" and not per_example:
        counts = inputs.class_counts()
        weighted = {
            "class_weight": imbalance.class_weights(cfg.class_weights, counts, inputs.bundle.label_names)
        }
    t0 = time.perf_counter()
    estimator.fit(X["train"], y["train"], X["dev"], y["dev"], score=dev_score, **weighted)
    train_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    logits = {s: estimator.decision_function(X[s]) for s in inputs.splits if s != "train"}
    eval_s = time.perf_counter() - t0
    cost = None
    if not task.token_level and not per_example and strategy.reads_text:
        # what predict runs: the encoder, pooling, a linear map (with feature columns: the fusion head's
        # cost stands in for the linear map on both)
        head = inputs.head(pooling, 0.0)
        cost = inference_cost(
            TaskModel(inputs.backbone.model, head),
            inputs.dev_batches,
            cfg,
            resolve_device(cfg.device),
            memo=inputs.costs,
        )
    n_params = estimator.n_trainable_
    backbone_params = sum(p.numel() for p in inputs.backbone.model.parameters()) if strategy.reads_text else 0
    total = backbone_params + n_params
    fields = manifest(inputs, strategy, cfg, pooling, strategy.layers)
    size = write_artifact(run_dir, fields, lambda out: strategy.save_estimator(out, estimator))
    return {
        **_finish(inputs, run_dir, logits, per_example),
        "chosen": {"C": estimator.C_},
        "times": {
            "extraction": round(source.seconds, 2),
            "training": round(train_s, 2),
            "evaluation": round(eval_s, 2),
        },
        "examples_per_second": round(len(X["train"]) / train_s, 1) if train_s > 0 else None,
        **extraction_rate(source.seconds, source.tokens, inputs.backbone.model, resolve_device(cfg.device)),
        "trainable_params": int(n_params),
        "total_params": int(total),
        "artifact_bytes": size,
        "inference": cost,
    }


def _mfu(model, result, trainable: int, total: int, device) -> float | None:
    """MFU for runs that train every weight (full, llrd, scratch) on a GPU whose peak is known."""
    return training_mfu(model, result.tokens_per_second, device) if trainable == total else None


def build_model(inputs: RunInputs, strategy: Strategy, cfg: TrainConfig, seed: int) -> TaskModel:
    """The task's head on the backbone (random weights for `from_scratch`), prepared by the strategy."""
    backbone = inputs.backbone
    head = inputs.head(backbone.pooling, cfg.dropout)
    module = backbone.random_model(seed) if strategy.from_scratch else backbone.fresh_model()
    model = strategy.prepare(TaskModel(module, head))
    model.frozen_depth = strategy.frozen_blocks(model)
    return model


def head_rate(model, groups: list[dict], epoch_hook):
    """The strategy's parameter groups (and those its epoch hook rebuilds: gradual unfreezing) with the
    head at its own minimum rate when it has one (the fusion head: `min_lr`)."""
    floor = getattr(model.head, "min_lr", None)
    if floor is None:
        return groups, epoch_hook
    hook = None
    if epoch_hook is not None:

        def hook(m, epoch):
            rebuilt = epoch_hook(m, epoch)
            return None if rebuilt is None else with_min_rate(rebuilt, model.head, floor)

    return with_min_rate(groups, model.head, floor), hook


def prefix_model(inputs: RunInputs, model: TaskModel, source: FrozenSource):
    """`model`'s trainable top on cached hidden states of its frozen bottom blocks, with the batches it
    reads per split; None when there is no frozen prefix or this architecture cannot be cut there."""
    depth, task = model.frozen_depth, inputs.task
    if not depth:  # full, LoRA, BitFit ...: nothing frozen to cache
        return None
    tokens = {s: task.batches(inputs.enc[s], inputs.backbone) for s in inputs.splits}
    if not all(isinstance(t, TokenBatches) for t in tokens.values()):
        return None
    rows = sorted(inputs.enc["train"].rows[:64], key=lambda r: len(r["input_ids"]))
    probe = pad_rows([rows[0], rows[-1]], inputs.backbone.tokenizer.pad_token_id or 0)
    top = split_encoder(model.backbone, depth, probe)
    if top is None:
        log.info(
            "  %s cannot be cut after block %d: the frozen blocks run every step", inputs.backbone.name, depth
        )
        return None
    data = {s: StateBatches(*source.prefix(inputs.enc[s].rows, depth), t) for s, t in tokens.items()}
    return PrefixModel(top, model.head), data


def prefix_depths(inputs: RunInputs, plans) -> frozenset[int]:
    """The frozen depths whose prefix states `plans` ((strategy, cfg) pairs still to run) will read
    (last-k: L - k), so that the compare's first all-layer frozen pass writes them beside its features."""
    view = SimpleNamespace(backbone=inputs.backbone.model)  # frozen_blocks reads only the block stack
    depths = set()
    for strategy, cfg in plans:
        on_features = strategy.uses_cached_features and inputs.task.head_on_cached_features()
        if strategy.kind != "gradient" or on_features or cfg.ewc or cfg.replay:
            continue
        try:
            depths.add(strategy.frozen_blocks(view))
        except TunebenchError:  # no block stack this architecture's way: no cache to fill
            continue
    return frozenset(depths - {0})


def _plain_batches(inputs: RunInputs) -> dict:
    return {s: inputs.task.batches(inputs.enc[s], inputs.backbone) for s in inputs.splits}


def _run_gradient(
    inputs: RunInputs, strategy, cfg: TrainConfig, seed: int, run_dir: Path, hooks, report=None
) -> dict:
    task = inputs.task
    device = resolve_device(cfg.device)
    full_model = build_model(inputs, strategy, cfg, seed)
    source = inputs.source(cfg)
    extra_loss, kept = forgetting_terms(inputs, strategy, full_model, cfg, seed)  # --ewc, --replay
    on_features = strategy.uses_cached_features and task.head_on_cached_features()
    # token tasks' cached word states are float16: they train and select, the whole model scores (below)
    scored_whole = on_features and task.token_level
    if on_features:  # head-only: features once
        pooling = inputs.backbone.pooling
        model = HeadOnFeatures(full_model.head)
        data = {
            s: task.feature_batches(
                task.frozen_inputs(source, inputs.enc[s], pooling, "last"),
                task.frozen_targets(inputs.enc[s]),
                inputs.enc[s].extra,
            )
            for s in inputs.splits
            if not scored_whole or s in ("train", "dev")
        }
    # last-k: frozen blocks once (not with EWC or replay: they read the whole body)
    elif extra_loss is None and (cut := prefix_model(inputs, full_model, source)) is not None:
        model, data = cut
    else:
        model, data = full_model, _plain_batches(inputs)
    if cfg.sampler == "balanced":
        data["train"] = imbalance.BalancedBatches(data["train"], data["train"].labels)
    loss_options = imbalance.loss_options(cfg, inputs.class_counts(), inputs.bundle.label_names)
    groups, epoch_hook = head_rate(model, strategy.param_groups(model, cfg), strategy.epoch_hook(cfg))
    with parked(inputs.backbone.model):  # the pre-trained copy is idle while this one trains
        result = fit(
            model,
            groups,
            data["train"],
            data["dev"],
            task,
            lambda outputs: inputs.score("dev", outputs),
            cfg,
            seed,
            epoch_hook,
            description=strategy.name,
            evaluating=strategy.evaluating,
            report=report,
            metric=inputs.selection,
            loss_options=loss_options,
            extra_loss=extra_loss,
        )
    t0 = time.perf_counter()
    if scored_whole:  # as its export predicts
        model, data, result.best_outputs = full_model, _plain_batches(inputs), None
    with strategy.evaluating(model):
        logits = {  # dev: the best epoch's outputs, which the restored model would give again
            s: result.best_outputs
            if s == "dev" and result.best_outputs is not None
            else predict_logits(model, data[s], cfg, device)
            for s in inputs.splits
            if s != "train"
        }
    eval_s = result.eval_seconds + time.perf_counter() - t0
    cost = inference_cost(full_model, inputs.dev_batches, cfg, device, strategy.evaluating, inputs.costs)
    trainable, total = count_parameters(full_model)
    full_model.to("cpu")
    fields = manifest(inputs, strategy, cfg, inputs.backbone.pooling)
    size = write_artifact(
        run_dir, fields, lambda out: strategy.save(out, full_model, inputs.backbone.tokenizer)
    )
    extra, hook_s = {}, 0.0
    for hook in hooks:
        t0 = time.perf_counter()
        extra.update(hook(inputs, strategy, full_model.backbone, cfg))
        hook_s += time.perf_counter() - t0
    return {
        **_finish(inputs, run_dir, logits),
        "best_epoch": result.best_epoch,
        "history": result.history,
        "steps": result.steps,
        "times": {
            "extraction": round(source.seconds, 2),
            "training": round(result.train_seconds, 2),
            "evaluation": round(eval_s, 2),
        },
        "examples_per_second": round(result.examples_per_second, 1),
        "tokens_per_second": round(result.tokens_per_second, 1),
        **({"mfu": round(mfu, 4)} if (mfu := _mfu(full_model, result, trainable, total, device)) else {}),
        "trainable_params": trainable,
        "total_params": total,
        "artifact_bytes": size,
        "inference": cost,
        "_hook_seconds": hook_s,
        **({"mitigation": kept} if kept else {}),
        **extra,
    }
