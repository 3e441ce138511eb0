"""`tunebench distill`: a trained model (the teacher: a run folder or an export) teaches a smaller
student on the training inputs, plus optional unlabelled text, for deployment.

The loss (Hinton et al. 2015): alpha * T^2 * KL(softmax(teacher / T) || softmax(student / T)) plus
(1 - alpha) * the task's loss on the hard labels (unlabelled rows have none); `loss="mse"` matches the
logits instead (Ba & Caruana 2014); for text regression the soft part is the squared error to the
teacher's score. Students: `MODEL:Ln`, the backbone cut to its bottom n blocks (`minilm:L3`, backbones/text.py), or
any model; trained by the `full` strategy or, cheapest, `head` (a head on the frozen student).

The student is an ordinary run (`OUT/runs/KEY`, the run store, `tunebench predict`); `OUT/distill.md`
holds teacher and student side by side, with what each costs to predict.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .artifacts import manifest, write_artifact
from .backbones import quiet_libraries
from .comparison import resolve_strategy
from .data.text import Texts, read_texts
from .errors import TunebenchError
from .measure import PeakMemory, seed_everything
from .model import TaskModel, count_parameters, parked
from .prediction import Predictor
from .run_inputs import RunInputs
from .store import RunStore, check_out_dir, run_key
from .strategies import STRATEGIES
from .tasks.base import pool_groups
from .training.batching import TokenBatches
from .training.inference import inference_cost
from .training.loop import fit, predict_logits, resolve_device

log = logging.getLogger("tunebench")


class DistillLoss:
    """Task-like for the training loop: `labels` rows are [hard label (NaN: none), teacher outputs...]."""

    def __init__(self, task, temperature: float, alpha: float, loss: str):
        self.task, self.t, self.alpha, self.kind = task, temperature, alpha, loss
        self.primary_metric = task.primary_metric

    def loss(self, logits: torch.Tensor, labels: torch.Tensor, **options) -> torch.Tensor:
        logits, hard, teacher = logits.float(), labels[:, 0], labels[:, 1:].float()
        if self.task.regression or self.kind == "mse":
            soft = nn.functional.mse_loss(logits.reshape(teacher.shape), teacher)
        else:
            t = self.t
            soft = (
                t
                * t
                * nn.functional.kl_div(
                    nn.functional.log_softmax(logits / t, -1),
                    nn.functional.log_softmax(teacher / t, -1),
                    log_target=True,
                    reduction="batchmean",
                )
            )
        known = ~torch.isnan(hard)
        if self.alpha >= 1 or not known.any():
            return soft
        target = hard[known] if self.task.regression else hard[known].long()
        return self.alpha * soft + (1 - self.alpha) * self.task.loss(logits[known], target)


def distill(
    teacher: str | Path,
    student: str,
    data,
    unlabeled: str | None = None,
    text_col: str | None = None,
    temperature: float = 2.0,
    alpha: float = 0.5,
    loss: str = "kl",
    strategy: str = "full",
    train: dict | None = None,
    seed: int = 0,
    out: str | Path = "tunebench-distill",
    export: str | Path | None = None,
    show: bool = True,
) -> dict:
    """Train `student` on `teacher`'s outputs; returns {"teacher": ..., "student": ...} rows (test metric,
    predict latency at batch 1, examples/s at batch 32, parameters) and the student's run record."""
    quiet_libraries()
    _check(temperature, alpha, loss, strategy)
    out = check_out_dir(out)
    t = Predictor(teacher)
    task = t.task
    if task.token_level or task.modality != "text" or t.columns is not None:
        raise TunebenchError(f"distill: for text classification and regression teachers, not {task.name}")
    bundle = task.load_bundle(data)
    if bundle.label_names != t.label_names:
        raise TunebenchError(
            f"distill: the teacher predicts {t.label_names[:5]}, the data has labels {bundle.label_names[:5]}; "
            "give the data the teacher was trained on"
        )
    extra = read_texts(unlabeled, text_col, None) if unlabeled else Texts([])
    backbone = task.load_backbone(student, t.manifest.get("trust_remote_code", False))
    limit = min(t.manifest["max_length"], backbone.max_length)
    inputs = RunInputs(task, backbone, bundle, out, limit)
    name, cfg = _resolve(strategy, train, limit, task)
    soft = _teacher_outputs(t, [bundle.train, extra] if len(extra) else [bundle.train])
    hard = np.asarray(bundle.train.labels, dtype=np.float32)
    hard = np.concatenate([hard, np.full(len(extra), np.nan, np.float32)])
    rows = inputs.enc["train"].rows + (task.encode(backbone, extra, limit).rows if len(extra) else [])
    identity = {
        "teacher": t.manifest,
        "student": [student, name],
        "data": bundle.fingerprint(),
        "unlabeled": [unlabeled, len(extra), _digest(extra)],
        "distill": [temperature, alpha, loss],
        "train": cfg.identity(),
        "seed": seed,
    }
    key = run_key(identity)
    store = RunStore(out)
    record = store.finished(key)
    if record is None:
        record = _train(
            inputs,
            name,
            cfg,
            seed,
            key,
            rows,
            np.concatenate([hard[:, None], soft], 1),
            DistillLoss(task, temperature, alpha, loss),
        )
        record.update(student=student, teacher=str(teacher), unlabeled_rows=len(extra))
        store.put(record)
    teacher_row = _teacher_row(t, inputs, cfg)
    student_row = {
        "model": student,
        "test": record["test_metrics"][task.primary_metric],
        "latency_ms": record["inference"]["latency_ms"],
        "examples_per_second": record["inference"]["examples_per_second"],
        "params": record["total_params"],
        "train_rows": len(rows),
        "seconds": record["wall_seconds"],
    }
    result = {"teacher": teacher_row, "student": student_row, "record": record, "metric": task.primary_metric}
    (out / "distill.json").write_text(json.dumps(result, indent=1, default=str))
    (out / "distill.md").write_text(markdown(result))
    if show:
        print(markdown(result))
    if export:
        _export(out / "runs" / key, Path(export))
    return result


def _check(temperature: float, alpha: float, loss: str, strategy: str) -> None:
    if temperature <= 0:
        raise TunebenchError(f"--temperature {temperature}: must be > 0 (Hinton et al. use 1-20)")
    if not 0 <= alpha <= 1:
        raise TunebenchError(f"--alpha {alpha}: the soft loss's weight, in [0, 1]")
    if loss not in ("kl", "mse"):
        raise TunebenchError(f"--loss {loss}: kl (soft targets at temperature T) or mse (logits)")
    cls = STRATEGIES.get(strategy)
    if cls.kind != "gradient" or cls.from_scratch:
        raise TunebenchError(
            f"--student-strategy {strategy}: the student trains by gradient from its pre-trained weights "
            "(full, or head for the cheapest)"
        )


def _resolve(strategy: str, train: dict | None, limit: int, task):
    s, cfg = resolve_strategy(strategy, {}, train or {}, limit, task)
    return s.name, cfg


def _teacher_outputs(t: Predictor, splits) -> np.ndarray:
    parts = []
    for split in splits:
        outputs, enc, per_example = t.outputs(split)
        parts.append(outputs if per_example else pool_groups(outputs, enc.groups))
    return np.concatenate(parts).astype(np.float32).reshape(sum(len(s) for s in splits), -1)


def _digest(texts: Texts) -> str:
    return hashlib.sha256("\n".join(texts.texts).encode()).hexdigest()[:16]


def _train(inputs: RunInputs, name: str, cfg, seed: int, key: str, rows, targets, loss) -> dict:
    strategy = STRATEGIES.get(name)()
    device, backbone = resolve_device(cfg.device), inputs.backbone
    t0 = time.perf_counter()
    with PeakMemory(device) as mem:
        seed_everything(seed)
        model = strategy.prepare(
            TaskModel(backbone.fresh_model(), inputs.head(backbone.pooling, cfg.dropout))
        )
        train = TokenBatches(rows, targets, backbone.tokenizer.pad_token_id or 0)
        dev = inputs.task.batches(inputs.enc["dev"], backbone)
        with parked(backbone.model):
            result = fit(
                model,
                strategy.param_groups(model, cfg),
                train,
                dev,
                loss,
                lambda o: inputs.score("dev", o),
                cfg,
                seed,
                strategy.epoch_hook(cfg),
                description=f"distill {backbone.name}",
            )
        metrics = {
            f"{s}_metrics": inputs.score(
                s, predict_logits(model, inputs.task.batches(inputs.enc[s], backbone), cfg, device)
            )
            for s in inputs.splits
            if s != "train"
        }
        cost = inference_cost(model, inputs.dev_batches, cfg, device)
    trainable, total = count_parameters(model)
    model.to("cpu")
    run_dir = inputs.out_dir / "runs" / key
    size = write_artifact(
        run_dir,
        manifest(inputs, strategy, cfg, backbone.pooling),
        lambda out: strategy.save(out, model, backbone.tokenizer),
    )
    return {
        "key": key,
        "strategy": f"distill ({name})",
        "seed": seed,
        "status": "ok",
        **metrics,
        "history": result.history,
        "best_epoch": result.best_epoch,
        "steps": result.steps,
        "train_config": cfg.as_dict(),
        "inference": cost,
        "trainable_params": trainable,
        "total_params": total,
        "artifact_bytes": size,
        "peak_memory_mb": round(mem.peak_mb, 1),
        "wall_seconds": round(time.perf_counter() - t0, 2),
    }


def _teacher_row(t: Predictor, inputs: RunInputs, cfg) -> dict:
    """The teacher on the same test set and dev rows, through the same prediction path."""
    outputs, enc, per_example = t.outputs(
        inputs.split("test") if "test" in inputs.splits else inputs.split("dev")
    )
    split = "test" if "test" in inputs.splits else "dev"
    score = inputs.task.score(outputs, enc if not per_example else None, inputs.split(split), t.label_names)
    cost = None
    if t.model is not None:
        teacher_inputs = RunInputs(
            t.task,
            t.backbone,
            inputs.bundle,
            None,
            t.manifest["max_length"],
            enc={"dev": t.task.encode(t.backbone, inputs.split("dev"), t.manifest["max_length"])},
        )
        cost = inference_cost(t.model, teacher_inputs.dev_batches, cfg, resolve_device(cfg.device))
    return {
        "model": f"{t.manifest['strategy']} on {t.manifest['backbone']}",
        "test": score[t.task.primary_metric],
        "latency_ms": cost and cost["latency_ms"],
        "examples_per_second": cost and cost["examples_per_second"],
        "params": sum(p.numel() for p in (t.model or t.backbone.model).parameters()),
    }


def markdown(result: dict) -> str:
    metric, t, s = result["metric"], result["teacher"], result["student"]
    lines = [
        f"| model | test {metric} | predict ms/ex (b1) | predict ex/s (b32) | parameters | speed-up (b32) |",
        "|---|---|---|---|---|---|",
    ]
    for role, row in (("teacher", t), ("student", s)):
        speed = (
            f"{row['examples_per_second'] / t['examples_per_second']:.2f}x"
            if t["examples_per_second"] and row["examples_per_second"]
            else "–"
        )
        lat = "–" if row["latency_ms"] is None else f"{row['latency_ms']:.2f}"
        eps = "–" if row["examples_per_second"] is None else f"{row['examples_per_second']:.0f}"
        lines.append(
            f"| {role}: {row['model']} | {row['test']:.4f} | {lat} | {eps} | {row['params']:,} | {speed} |"
        )
    return "\n".join(lines)


def _export(src: Path, dest: Path) -> None:
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(src, dest)
    log.info("exported the student to %s", dest)
