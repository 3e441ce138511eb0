"""One run of the `multitask` strategy (strategies/multitask.py): a shared body trained the way its `body`
strategy trains it, a head per task, on batches of every task; scored per task. Also what loading its
export needs (`load_multitask`).

The artifact (layout "multitask"): the body strategy's files, whose head is the list of task heads
(`head.<i>.` in task order), and a manifest with one entry per task (what a single-task manifest holds:
task, labels, max length ...) under `tasks`.
"""

from __future__ import annotations

import os
import shutil
import time
import traceback
from pathlib import Path

from .artifacts import manifest, write_artifact
from .data.columns import FeatureColumns
from .errors import TunebenchError
from .measure import PeakMemory, library_versions, seed_everything
from .mitigation import forgetting_terms
from .model import MultiTaskModel, count_parameters, parked
from .run_inputs import RunInputs
from .strategies import STRATEGIES
from .tasks import get_task
from .tasks.mixture import Mixture
from .training.config import TrainConfig
from .training.inference import inference_cost
from .training.loop import Diverged, fit, predict_logits, resolve_device
from .training.mixing import MixedBatches, MixedDev

LAYOUT = "multitask"


def build(parts: dict[str, RunInputs], strategy, body, cfg: TrainConfig) -> MultiTaskModel:
    """The shared backbone with one head per task (task order), prepared by the body strategy."""
    first = next(iter(parts.values()))
    heads = [p.head(first.backbone.pooling, cfg.dropout) for p in parts.values()]
    uncertainty = strategy.weighting == "uncertainty"
    model = body.prepare(MultiTaskModel(first.backbone.fresh_model(), heads, uncertainty))
    model.frozen_depth = body.frozen_blocks(model)
    return model


def run_multitask(
    parts: dict[str, RunInputs], strategy, body, cfg: TrainConfig, seed: int, key: str, out: Path
):
    """The run record: per task its dev and test metrics (`tasks`), `dev_metrics` / `test_metrics` with
    the mean primary metric (0-1 scale), cost; status 'ok' or 'error: ...' (a bug does not lose the
    single-task runs beside it)."""
    names = list(parts)
    first = parts[names[0]]
    record = {
        "key": key,
        "strategy": strategy.name,
        "settings": strategy.settings(),
        "body": {"strategy": body.name, "settings": body.settings()},
        "train_config": cfg.as_dict(),
        "seed": seed,
        "tasks": {
            n: {"task": p.task.name, "data": p.bundle.name, "sizes": {s: len(p.split(s)) for s in p.splits}}
            for n, p in parts.items()
        },
        "model": first.backbone.name,
        "versions": library_versions(),
        "device": str(resolve_device(cfg.device)),
    }
    run_dir = out / "runs" / key
    work_dir = run_dir.with_name(f".{key}.{os.getpid()}.tmp")
    t_start = time.perf_counter()
    try:
        with PeakMemory(resolve_device(cfg.device)) as mem:
            seed_everything(seed)
            record.update(_train(parts, strategy, body, cfg, seed, work_dir))
        record["status"] = "ok"
        shutil.rmtree(run_dir, ignore_errors=True)
        work_dir.rename(run_dir)
    except Diverged as err:
        record["status"] = f"error: diverged: {err}"
    except Exception as err:  # our bug or a library failure: recorded; the single-task runs stand
        record["status"] = f"error: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
        record["traceback"] = traceback.format_exc(limit=-3)
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    record["peak_memory_mb"] = round(mem.peak_mb, 1) if "mem" in locals() else None
    record["wall_seconds"] = round(time.perf_counter() - t_start, 2)
    return record


def _train(parts: dict[str, RunInputs], strategy, body, cfg: TrainConfig, seed: int, run_dir: Path) -> dict:
    names, device = list(parts), resolve_device(cfg.device)
    first = parts[names[0]]
    model = build(parts, strategy, body, cfg)
    data = {n: {s: p.task.batches(p.enc[s], p.backbone) for s in p.splits} for n, p in parts.items()}
    train = MixedBatches([data[n]["train"] for n in names], strategy.sampling, strategy.temperature)
    mixture = Mixture([p.task for p in parts.values()], model.log_vars)
    # --ewc / --replay on the shared body (EWC's default reference: the first task's training inputs)
    extra_loss, _ = forgetting_terms(first, body, model, cfg, seed)

    def evaluate(outputs: list) -> dict:
        return mixture.metrics({n: parts[n].score("dev", o) for n, o in zip(names, outputs)})

    with parked(first.backbone.model):  # the pre-trained copy is idle while this one trains
        result = fit(
            model,
            body.param_groups(model, cfg),
            train,
            MixedDev([data[n]["dev"] for n in names]),
            mixture,
            evaluate,
            cfg,
            seed,
            body.epoch_hook(cfg),
            description=f"multitask ({body.name})",
            evaluating=body.evaluating,
            metric="mean",
            extra_loss=extra_loss,
        )
    t0 = time.perf_counter()
    per_task, outputs = {}, {}
    with body.evaluating(model):
        for i, n in enumerate(names):
            splits = [s for s in parts[n].splits if s != "train"]
            outputs[n] = {s: predict_logits(model.view(i), data[n][s], cfg, device) for s in splits}
            per_task[n] = {f"{s}_metrics": parts[n].score(s, o) for s, o in outputs[n].items()}
    eval_s = result.eval_seconds + time.perf_counter() - t0
    cost = {
        n: inference_cost(model.view(i), parts[n].dev_batches, cfg, device, body.evaluating)
        for i, n in enumerate(names)
    }
    trainable, total = count_parameters(model)
    model.to("cpu")
    fields = {
        "layout": LAYOUT,
        "strategy": body.name,
        "strategy_settings": body.settings(),
        "backbone": first.backbone.name,
        "trust_remote_code": first.backbone.trust_remote_code,
        "pooling": first.backbone.pooling,
        "dropout": cfg.dropout,
        "multitask": strategy.settings(),
        "tasks": {n: manifest(p, body, cfg, p.backbone.pooling) for n, p in parts.items()},
    }
    size = write_artifact(run_dir, fields, lambda out: body.save(out, model, first.backbone.tokenizer))
    mean = {
        s: mixture.metrics({n: per_task[n][f"{s}_metrics"] for n in names})["mean"]
        for s in ("dev", "test")
        if all(f"{s}_metrics" in per_task[n] for n in names)
    }
    return {
        "task_metrics": per_task,
        **{f"{s}_metrics": {"mean": v} for s, v in mean.items()},
        "best_epoch": result.best_epoch,
        "history": result.history,
        "steps": result.steps,
        "task_shares": dict(zip(names, [round(float(x), 4) for x in train.shares()])),
        "times": {"training": round(result.train_seconds, 2), "evaluation": round(eval_s, 2)},
        "examples_per_second": round(result.examples_per_second, 1),
        "trainable_params": trainable,
        "total_params": total,
        "artifact_bytes": size,
        "inference": cost,
    }


def task_manifest(path: Path, m: dict, name: str | None) -> dict:
    """Task `name`'s single-task manifest in a multitask export; a missing or unknown name is one line
    listing the export's tasks."""
    if name not in m["tasks"]:
        what = "this export holds several tasks" if name is None else f"no task '{name}' in this export"
        raise TunebenchError(f"{path}: {what} ({', '.join(m['tasks'])}); choose one with --task NAME")
    return m["tasks"][name]


def load_multitask(path: Path, m: dict, name: str | None):
    """(that task's single-task manifest, backbone, model) of task `name` in a multitask export: the
    shared body and that task's head, built with tunebench's classes; an unknown or missing `name` is one
    line listing the export's tasks."""
    own, tasks = task_manifest(path, m, name), m["tasks"]
    body = STRATEGIES.get(m["strategy"]).from_options(m["strategy_settings"])
    task = get_task(own["task"])
    backbone = task.load_backbone(body.backbone_source(path, m), m["trust_remote_code"], m["pooling"])
    heads = []
    for t in tasks.values():
        columns = FeatureColumns.from_json(t["feature_columns"]) if "feature_columns" in t else None
        head_task = get_task(t["task"])
        heads.append(
            head_task.head_for(backbone.hidden_size, t["num_outputs"], t["pooling"], t["dropout"], columns)
        )
    uncertainty = m["multitask"]["weighting"] == "uncertainty"
    model = body.load(path, MultiTaskModel(backbone.model, heads, uncertainty)).eval()
    return own, backbone, model.view(list(tasks).index(name)).eval()
