"""Diagnostics of one run: warnings computed from its record and its stored dev logits.

Pure functions of the data a compare leaves behind, so they work on any output folder, old or new.
Each warning carries the numbers it is based on and the fix to try. What the record cannot tell
(label counts, truncation) is used when a record carries it and otherwise not guessed at.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from safetensors.numpy import load_file

from ..tasks import TASKS
from .findings import RunWarning, standard_error

OVERFIT_DROP = 0.02  # dev metric lost after the best epoch that counts as overfitting
COLLAPSE_SHARE = 0.95  # share of dev predictions on one class that counts as collapsed
UNDERFIT_LOSS_FALL = 0.05  # relative train-loss fall below which training "barely moved"
STILL_RISING = 0.03  # relative dev gain in the last epoch that says training stopped too early
UNEVEN_F1_SPREAD = 0.20  # max - min per-class F1
TRUNCATION_SHARE = 0.10


def load_dev_logits(run_dir: str | Path | None):
    """(dev logits (N, C), label names) from a run directory, or (None, None) when absent."""
    if run_dir is None:
        return None, None
    run_dir = Path(run_dir)
    path = run_dir / "predictions.safetensors"
    if not path.is_file():
        return None, None
    logits = load_file(str(path)).get("dev")
    names = None
    manifest = run_dir / "manifest.json"
    if manifest.is_file():
        try:
            names = json.loads(manifest.read_text()).get("label_names")
        except (OSError, ValueError):
            names = None
    return logits, names


def _label_counts(record: dict) -> dict[str, int] | None:
    """Dev (else train) label counts if the record carries them (`label_counts`); else None."""
    counts = record.get("label_counts")
    if not isinstance(counts, dict) or not counts:
        return None
    if all(isinstance(v, dict) for v in counts.values()):
        counts = counts.get("dev") or counts.get("train") or next(iter(counts.values()))
    try:
        return {str(k): int(v) for k, v in counts.items()}
    except (TypeError, ValueError):
        return None


def truncated_share(record: dict) -> float | None:
    value = record.get("truncated_share", record.get("truncation"))
    if isinstance(value, dict):
        value = value.get("train", next(iter(value.values()), None))
    return float(value) if isinstance(value, (int, float)) else None


def diagnose(record: dict, run_dir: str | Path | None = None) -> list[RunWarning]:
    """Warnings for one run record; `run_dir` (OUT/runs/<key>) adds checks on the stored dev logits."""
    out: list[RunWarning] = []

    def warn(code, severity, message, fix):
        out.append(
            RunWarning(
                code, severity, message, fix, record.get("strategy"), record.get("seed"), record.get("key")
            )
        )

    status = str(record.get("status", ""))
    lr = (record.get("train_config") or {}).get("lr")
    if status.startswith("error"):
        if "diverged" in status:
            warn(
                "divergence",
                "error",
                f"the run diverged ({status.removeprefix('error: ')}) at lr {lr}.",
                f"learning rate too high: rerun with a lower one (e.g. --opt {record.get('strategy')}.lr={_lower(lr)}).",
            )
        else:
            warn(
                "run-failed",
                "error",
                f"the run failed: {status.removeprefix('error: ')}.",
                "read the traceback stored with the run in runs.sqlite; rerunning compare retries failed runs.",
            )
        return out

    _check_history(record, lr, warn)
    _check_chance_and_collapse(record, run_dir, warn)
    _check_classes(record, warn)
    if record.get("trainable_params") == 0:
        warn(
            "no-trainable-params",
            "error",
            "0 parameters were trained, so the run only measures the untrained head.",
            "check the strategy's settings (e.g. last-k.k >= 1, LoRA targets that exist in this model).",
        )
    share = truncated_share(record)
    if share is not None and share > TRUNCATION_SHARE:
        warn(
            "truncation",
            "warning",
            f"{share:.0%} of training texts were cut at {record.get('max_length')} tokens.",
            "keep the informative part (head+tail truncation), chunk long texts, or use a long-context encoder.",
        )
    new = record.get("newly_initialized_weights") or []
    if new:
        shown = ", ".join(map(str, new[:3])) + (" ..." if len(new) > 3 else "")
        warn(
            "random-weights",
            "warning",
            f"{len(new)} weight tensors were missing from the checkpoint and randomly initialised ({shown}).",
            "make sure they are trained (or unused); frozen strategies that read them see noise.",
        )
    _check_dev_test(record, warn)
    return out


def _lower(lr) -> str:
    return f"{lr / 3:.1g}" if isinstance(lr, (int, float)) else "a third of the current lr"


def _check_history(record: dict, lr, warn) -> None:
    history = record.get("history") or []
    losses = [h.get("train_loss") for h in history]
    if len(history) < 2 or any(not isinstance(v, (int, float)) for v in losses):
        return
    metric = _metric_name(record)
    dev = [(h.get("dev") or {}).get(metric) for h in history]
    rises = [b > a for a, b in zip(losses, losses[1:])]
    if any(x and y for x, y in zip(rises, rises[1:])) or losses[-1] > 1.05 * losses[0]:
        warn(
            "divergence",
            "warning",
            f"train loss rose epoch over epoch ({_seq(losses)}) at lr {lr}.",
            f"learning rate too high: try {_lower(lr)} (--opt {record.get('strategy')}.lr=...).",
        )
    elif (losses[0] - losses[-1]) / max(losses[0], 1e-12) < UNDERFIT_LOSS_FALL:
        warn(
            "underfitting",
            "warning",
            f"train loss barely fell over {len(losses)} epochs ({_seq(losses)}).",
            "train longer or with a higher lr, or unfreeze more of the model (last-k, LoRA, full).",
        )
    if any(not isinstance(v, (int, float)) for v in dev):
        return
    epochs = (record.get("train_config") or {}).get("epochs")
    if (
        len(dev) >= 2
        and len(dev) == epochs
        and dev[-1] == max(dev)
        and dev[-1] - dev[-2] >= STILL_RISING * abs(dev[-2])
    ):
        warn(
            "still-improving",
            "info",
            f"dev {metric} was still rising when the {epochs} epochs ran out ({_seq(dev[-3:])}).",
            f"train longer: --opt {record.get('strategy')}.epochs={2 * epochs} (the best epoch is kept, early "
            "stopping ends it when dev stops improving).",
        )
    if len(history) < 3:
        return
    best_i = max(range(len(dev)), key=lambda i: dev[i])
    drop = dev[best_i] - dev[-1]
    falling_tail = (
        losses[-1] < losses[-2] < losses[-3]
        and dev[-1] < dev[-2] < dev[-3]
        and dev[-3] - dev[-1] >= OVERFIT_DROP / 2
    )
    late_drop = best_i < len(dev) - 1 and drop >= OVERFIT_DROP and losses[-1] < losses[best_i]
    if falling_tail or late_drop:
        warn(
            "overfitting",
            "warning",
            f"dev {metric} peaked at {dev[best_i]:.4f} in epoch {best_i + 1} and fell to {dev[-1]:.4f} by "
            f"epoch {len(dev)} while train loss kept falling ({losses[best_i]:.3f} → {losses[-1]:.3f}); "
            "the best epoch is the one kept.",
            "fewer epochs or a lower lr, more regularisation (dropout, weight decay), or a strategy that "
            "trains fewer parameters (LoRA, BitFit, head).",
        )


def _seq(values: list[float]) -> str:
    return " → ".join(f"{v:.3f}" for v in values)


def _metric_name(record: dict) -> str:
    metrics = record.get("dev_metrics") or {}
    return (
        "accuracy"
        if "accuracy" in metrics
        else next((k for k, v in metrics.items() if isinstance(v, float)), "accuracy")
    )


def _check_chance_and_collapse(record: dict, run_dir, warn) -> None:
    dev = record.get("dev_metrics") or {}
    per_class = dev.get("per_class_f1") or {}
    n_classes = len(per_class)
    n_dev = (record.get("sizes") or {}).get("dev") or 0
    acc = dev.get("accuracy")
    counts = _label_counts(record)
    if n_classes >= 2 and isinstance(acc, (int, float)):
        chance, what = 1 / n_classes, f"1/{n_classes} classes"
        if counts:
            majority = max(counts.values()) / sum(counts.values())
            if majority > chance:
                chance, what = majority, "the majority-class share"
        margin = max(0.02, 2 * standard_error(chance, n_dev))
        if acc <= chance + margin:
            warn(
                "near-chance",
                "warning",
                f"dev accuracy {acc:.4f} is within {margin:.3f} of chance ({chance:.3f} = {what}).",
                "the model learned little: check labels and inputs, then train longer / unfreeze more.",
            )

    classifies = _one_class_per_example(record.get("task"))
    logits, names = load_dev_logits(run_dir) if classifies else (None, None)
    if logits is not None and logits.ndim == 2 and len(logits) >= 20:
        preds = logits.argmax(-1)
        top = int(max(range(logits.shape[1]), key=lambda c: int((preds == c).sum())))
        share = float((preds == top).mean())
        name = names[top] if names and top < len(names) else str(top)
        if share >= COLLAPSE_SHARE:
            warn(
                "collapsed-predictions",
                "error" if share == 1.0 else "warning",
                f"{share:.1%} of {len(preds)} dev predictions are class '{name}'.",
                "lower the lr (collapse is typical of too high a rate), train longer, or rebalance the classes.",
            )
    elif n_classes >= 2 and sum(f > 0 for f in per_class.values()) == 1:
        only = next(k for k, f in per_class.items() if f > 0)
        warn(
            "collapsed-predictions",
            "warning",
            f"per-class F1 is 0 for every class but '{only}' (no stored logits to count predictions).",
            "lower the lr, train longer, or rebalance the classes.",
        )


def _one_class_per_example(task: str | None) -> bool:
    """Classification predicts one class per example; regression scores, per-token labels (NER) and
    QA spans do not. Records from before tasks were recorded are text classification."""
    if task is None:
        return True
    if task not in TASKS:
        return False
    cls = TASKS.get(task)
    return not cls.regression and not cls.token_level


def _check_classes(record: dict, warn) -> None:
    dev = record.get("dev_metrics") or {}
    per_class = dev.get("per_class_f1") or {}
    counts = _label_counts(record)
    if counts and min(counts.values()) > 0 and max(counts.values()) / min(counts.values()) >= 3:
        hi, lo = max(counts, key=counts.get), min(counts, key=counts.get)
        warn(
            "class-imbalance",
            "warning",
            f"labels are imbalanced: '{hi}' has {counts[hi]} examples, '{lo}' {counts[lo]}"
            f" (selected by dev {(record.get('selection') or {}).get('metric', 'accuracy')}).",
            "rank by macro-F1 (--select macro-f1, the default from 3:1) and try --class-weights balanced or "
            "--sampler balanced.",
        )
        _check_never_predicted(record, warn)
        return
    _check_never_predicted(record, warn)
    if len(per_class) < 2 or sum(f > 0 for f in per_class.values()) <= 1:
        return  # collapse is reported on its own
    hi, lo = max(per_class, key=per_class.get), min(per_class, key=per_class.get)
    spread = per_class[hi] - per_class[lo]
    acc, macro = dev.get("accuracy"), dev.get("macro_f1")
    gap = acc - macro if isinstance(acc, (int, float)) and isinstance(macro, (int, float)) else 0.0
    if spread >= UNEVEN_F1_SPREAD or gap >= 0.05:
        warn(
            "uneven-classes",
            "warning",
            f"per-class dev F1 ranges from {per_class[lo]:.3f} ('{lo}') to {per_class[hi]:.3f} ('{hi}')"
            f"{f' and accuracy exceeds macro-F1 by {gap:.3f}' if gap >= 0.05 else ''}; "
            + (
                f"the labels are not imbalanced ({min(counts.values())}-{max(counts.values())} per "
                f"class), so '{lo}' is harder, not rarer."
                if counts
                else "the record has no label counts, so imbalance is inferred, not counted."
            ),
            f"look at dev examples of '{lo}' the model gets wrong; more labelled examples of it help most."
            if counts
            else f"count the labels of '{lo}'; if it is rare, weight the loss or oversample it and rank by macro_f1.",
        )


def _check_never_predicted(record: dict, warn) -> None:
    """Classes present in dev (test) that the model never chose: their F1 is 0 by construction."""
    for split in ("dev", "test"):
        never = (record.get(f"{split}_metrics") or {}).get("never_predicted") or []
        if never:
            shown = ", ".join(f"'{n}'" for n in never[:5]) + (
                f" and {len(never) - 5} more" if len(never) > 5 else ""
            )
            warn(
                "never-predicted",
                "warning",
                f"{len(never)} class(es) in {split} were never predicted: {shown}.",
                "they are probably rare in training: try --class-weights balanced or --sampler balanced, "
                "and rank by macro-F1.",
            )
            return


def _check_dev_test(record: dict, warn) -> None:
    metric = _metric_name(record)
    dev = (record.get("dev_metrics") or {}).get(metric)
    test = (record.get("test_metrics") or {}).get(metric)
    sizes = record.get("sizes") or {}
    if not isinstance(dev, (int, float)) or not isinstance(test, (int, float)):
        return
    noise = 3 * math.hypot(
        standard_error(dev, sizes.get("dev", 0)), standard_error(test, sizes.get("test", 0))
    )
    if abs(dev - test) > max(0.05, noise):
        warn(
            "dev-test-gap",
            "info",
            f"dev {metric} {dev:.4f} and test {test:.4f} differ by {abs(dev - test):.3f}, more than sampling noise.",
            "dev and test may come from different distributions; choose on a dev set drawn like the test set.",
        )
