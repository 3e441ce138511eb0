"""Layer probes: how well does each layer of the frozen backbone separate the classes?

One forward pass (through the feature cache that `compare` shares) stores every layer's [CLS] and
mean-pooled vector. A probe is then trained per layer (0 = embeddings, 1..L = the blocks) and per
pooling: standardized features, logistic regression, C chosen on dev -- the `features` strategy's own
classifier, so the probe at the last layer with the model's pooling *is* the `features` run.

Dev scores choose C and the best layer, so they are optimistic; test (when there is one) is only
reported.

Where partial fine-tuning should start (`suggest`). Layers up to the probe's peak already hold what
the task needs; the blocks above it were specialised for the pre-training objective, and they are the
ones fine-tuning changes most. Differences smaller than the dev set's standard error (sqrt(p(1-p)/n),
±1.4 points at 80% on SST-2's 872 sentences) are noise, so the curve (best pooling, dev) is read at its
*plateau*: the first layer p within one standard error of the best.
- The best layer does not beat the majority class by more than two standard errors: frozen features
  give nothing to build on; fine-tune the whole model.
- p is the last layer (the features still improve at the top): the frozen top is the best feature
  set (`features`/`head` are the cheap baseline), and fine-tuning starts at the top: last-k with k=2
  (or LoRA).
- p < L: last-k with k = L - p fine-tunes the blocks that add nothing measurable to the frozen
  features (those above the best layer when the curve falls after its peak); when that is more than
  half the model, full fine-tuning or LoRA cost about the same.
"""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits  # ships with scikit-learn

from ..backbones import quiet_libraries
from ..data import DataConfig
from ..data.named import default_task
from ..errors import TunebenchError
from ..estimators import LinearProbe
from ..extract import FrozenSource
from ..tasks import get_task

log = logging.getLogger("tunebench")
POOL_INDEX = {"cls": 0, "mean": 1}  # position in the cache's pooling axis


# ----------------------------------------------------------------------------- shared with gap.py


def load_inputs(
    data_cfg, model: str, max_length: int | None, trust_remote_code: bool, task: str = "text-classification"
):
    """(bundle, backbone, task, max length), built exactly as `compare` builds them, so cache keys match."""
    quiet_libraries()
    if isinstance(data_cfg, str):
        data_cfg = DataConfig(data=data_cfg)
    if max_length is not None and max_length < 8:
        raise TunebenchError(f"--max-length {max_length}: must be >= 8")
    task_obj = get_task(task)
    bundle = task_obj.load(data_cfg)
    backbone = task_obj.load_backbone(model, trust_remote_code)
    limit = min(max_length or backbone.max_length, backbone.max_length)
    return bundle, backbone, task_obj, limit


def frozen_features(
    bundle, backbone, task, limit: int, out, splits=("train", "dev", "test"), **extract
) -> tuple[dict[str, np.ndarray], float]:
    """Split -> (N, L+1, 2, H) pooled features from the cache; and the forward-pass seconds spent now
    (0.0 when every split came from the cache). `extract`: batch_size, device, precision."""
    source = FrozenSource(backbone, out, limit, **extract)
    pools = {}
    for name in splits:
        split = getattr(bundle, name)
        if split is not None:
            pools[name] = source.pools(task.encode(backbone, split, limit).rows)
    return pools, source.seconds


def fit_probe(X: np.ndarray, y: np.ndarray, X_dev: np.ndarray, y_dev: np.ndarray, seed: int = 0):
    """Standardize -> logistic regression, C chosen on dev (the `features` strategy's classifier)."""
    # Small lbfgs problems: BLAS threads only add overhead (10x slower on a busy 2-core machine).
    with threadpool_limits(1):
        return LinearProbe(seed=seed).fit(X, y, X_dev, y_dev)


def majority_share(train_labels: np.ndarray, labels: np.ndarray) -> float:
    """Score of always predicting train's most frequent class (the chance line of the probe plot)."""
    return float(np.mean(labels == np.bincount(train_labels).argmax()))


def layer_name(layer: int) -> str:
    return "embeddings" if layer == 0 else f"block {layer}"


# ----------------------------------------------------------------------------- the probe


def probe_layers(
    data_cfg,
    model: str = "minilm",
    out: str | Path = "tunebench-out",
    *,
    max_length: int | None = None,
    batch_size: int = 128,
    device: str = "auto",
    precision: str = "auto",
    seed: int = 0,
    trust_remote_code: bool = False,
    plot: bool = True,
    show: bool = True,
    task: str | None = None,
) -> dict:
    """Probe every layer x pooling; write `out/probe.json` (+ `out/probe.png`) and return the same dict.

    `data_cfg` is a DataConfig, or a dataset name / train-file path.
    """
    t0 = time.perf_counter()
    out = Path(out)

    task_name = task or default_task(data_cfg)
    bundle, backbone, task, limit = load_inputs(data_cfg, model, max_length, trust_remote_code, task_name)
    log.info("%s · model %s (max length %d)", bundle.describe(), backbone.name, limit)
    if task.name != "text-classification":
        from .probe_tasks import probe_task_layers

        extract = {"batch_size": batch_size, "device": device, "precision": precision}
        part = probe_task_layers(task, bundle, backbone, limit, out, extract, seed)
        result = {
            "data": bundle.name,
            "data_fingerprint": bundle.fingerprint(),
            "task": task.name,
            "model": backbone.name,
            "num_layers": backbone.num_layers,
            "hidden_size": backbone.hidden_size,
            "max_length": limit,
            "model_pooling": backbone.pooling,
            **{k: v for k, v in part.items() if not k.endswith("_seconds")},
            "seconds": {
                "extract": round(part["extract_seconds"], 2),
                "probes": round(part["probe_seconds"], 2),
                "total": round(time.perf_counter() - t0, 2),
            },
        }
        return _write(result, out, plot, show)
    pools, extract_s = frozen_features(
        bundle, backbone, task, limit, out, batch_size=batch_size, device=device, precision=precision
    )
    labels = {s: np.asarray(getattr(bundle, s).labels) for s in pools}
    log.info("features: %s", f"extracted in {extract_s:.1f}s" if extract_s else "from the cache")

    t1 = time.perf_counter()
    metric = task.primary_metric
    # The model's own pooling first, so that a tie goes to the representation `features` uses.
    poolings = sorted(POOL_INDEX, key=lambda p: p != backbone.pooling)
    layers = []
    for pooling in poolings:
        for layer in range(pools["train"].shape[1]):
            X = {s: p[:, layer, POOL_INDEX[pooling]] for s, p in pools.items()}  # (N, H) each
            probe = fit_probe(X["train"], labels["train"], X["dev"], labels["dev"], seed)
            entry = {"layer": layer, "name": layer_name(layer), "pooling": pooling, "C": probe.C_}
            for s in X:
                if s != "train":
                    m = task.metrics(probe.decision_function(X[s]), labels[s], bundle.label_names)
                    entry[s] = {k: v for k, v in m.items() if isinstance(v, float)}
            layers.append(entry)
    probe_s = time.perf_counter() - t1

    best = max(layers, key=lambda e: e["dev"][metric])  # max keeps the first of equal scores
    by_pooling = {
        p: max((e for e in layers if e["pooling"] == p), key=lambda e: e["dev"][metric]) for p in poolings
    }
    majority = {s: majority_share(labels["train"], labels[s]) for s in labels if s != "train"}
    curve = [e["dev"][metric] for e in layers if e["pooling"] == best["pooling"]]
    k, plateau, text = suggest(curve, majority["dev"], len(labels["dev"]), metric)
    result = {
        "data": bundle.name,
        "data_fingerprint": bundle.fingerprint(),
        "sizes": {s: len(v) for s, v in labels.items()},
        "model": backbone.name,
        "num_layers": backbone.num_layers,
        "hidden_size": backbone.hidden_size,
        "max_length": limit,
        "model_pooling": backbone.pooling,
        "metric": metric,
        "majority": majority,
        "layers": layers,
        "best": best,
        "best_by_pooling": by_pooling,
        "suggestion": {"last_k": k, "plateau_layer": plateau, "pooling": best["pooling"], "text": text},
        "seconds": {
            "extract": round(extract_s, 2),
            "probes": round(probe_s, 2),
            "total": round(time.perf_counter() - t0, 2),
        },
    }
    return _write(result, out, plot, show)


def _write(result: dict, out: Path, plot: bool, show: bool) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    if plot:
        result["plot"] = str(plot_curves(result, out / "probe.png"))
    (out / "probe.json").write_text(json.dumps(result, indent=2) + "\n")
    if show:
        print_table(result)
    log.info("wrote %s", out / "probe.json")
    return result


def suggest(
    curve: list[float], majority: float, n_dev: int, metric: str = "accuracy", se: float | None = None
) -> tuple[int | None, int, str]:
    """(k for last-k or None, plateau layer, one plain sentence) from the dev curve (index = layer).

    The plateau layer is the first layer within one dev standard error of the best: the blocks above
    it add nothing measurable to the frozen features. See the module docstring for the rule.
    """
    L = len(curve) - 1
    b = int(np.argmax(curve))
    top, last = curve[b], curve[L]
    if se is None:  # binomial standard error of a dev score in [0, 1]
        se = math.sqrt(max(top * (1 - top), 1e-4) / max(n_dev, 1))
    p = next(i for i, s in enumerate(curve) if s >= top - se)
    if top - majority <= 2 * se:
        return (
            None,
            p,
            (
                f"no layer's frozen features clearly beat the majority class (best dev {metric} {top:.3f} "
                f"at layer {b} vs {majority:.3f}, dev noise ±{se:.3f}): fine-tune the whole model "
                "(full, llrd or lora), not part of it"
            ),
        )
    if p == L:
        k = min(2, L)
        return (
            k,
            p,
            (
                f"features improve up to the last layer (dev {metric} {top:.3f} at layer {L} of {L}): the "
                f"frozen top is the best feature set, so features/head are the cheap baseline; to fine-tune, "
                f"start at the top: last-k with k={k} (or lora)"
            ),
        )
    k = L - p
    where = "the embeddings (layer 0)" if p == 0 else f"layer {p} of {L}"
    if p < b:
        text = (
            f"features reach dev {metric} {curve[p]:.3f} at {where} and gain no more than dev noise "
            f"(±{se:.3f}) above it (best {top:.3f} at layer {b}): last-k with k={k} fine-tunes the "
            "blocks that add nothing measurable to the frozen features"
        )
    else:
        trend = (
            f"fall to {last:.3f} at layer {L}"
            if top - last > se
            else f"stay within dev noise (±{se:.3f}) up to layer {L} ({last:.3f})"
        )
        text = (
            f"features peak at {where} (dev {metric} {top:.3f}) and {trend}: last-k with k={k} "
            "fine-tunes the blocks above the best frozen layer"
        )
    if k > L / 2:
        text += "; that is most of the model, so full fine-tuning or lora cost about the same"
    return k, p, text


# ----------------------------------------------------------------------------- output


def print_table(result: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    metric, best = result["metric"], result["best"]
    splits = [s for s in ("dev", "test") if s in result["majority"]]
    poolings = list(result["best_by_pooling"])
    table = Table(
        title=f"layer probes ({metric}): {result['data']} · {result['model']}",
        caption=f"dev picks C and the best layer; test is only reported\n{result['suggestion']['text']}",
    )
    table.add_column("layer")
    for p in poolings:
        for s in splits:
            table.add_column(f"{p} {s}", justify="right")
    by_key = {(e["layer"], e["pooling"]): e for e in result["layers"]}
    for layer in range(result["num_layers"] + 1):
        cells = []
        for p in poolings:
            e = by_key[(layer, p)]
            for s in splits:
                cell = f"{e[s][metric]:.4f}"
                is_best = (layer, p) == (best["layer"], best["pooling"])
                cells.append(f"[bold green]{cell}[/]" if is_best and s == "dev" else cell)
        table.add_row(layer_name(layer), *cells)
    table.add_row("majority class", *[f"{result['majority'][s]:.4f}" for _ in poolings for s in splits])
    Console().print(table)


def plot_curves(result: dict, path: Path) -> Path:
    """Dev (solid) and test (dashed) score per layer and pooling, with the majority-class line."""
    from matplotlib.figure import Figure  # no pyplot: no global state, no GUI backend

    metric, L = result["metric"], result["num_layers"]
    fig = Figure(figsize=(6.4, 4.0), dpi=120)
    ax = fig.subplots()
    xs = list(range(L + 1))
    for color, pooling in zip(("tab:blue", "tab:orange"), result["best_by_pooling"]):
        entries = sorted((e for e in result["layers"] if e["pooling"] == pooling), key=lambda e: e["layer"])
        ax.plot(xs, [e["dev"][metric] for e in entries], "o-", color=color, label=f"{pooling} · dev")
        if "test" in result["majority"]:
            ys = [e["test"][metric] for e in entries]
            ax.plot(xs, ys, "--", color=color, alpha=0.6, label=f"{pooling} · test")
    best = result["best"]
    ax.plot([best["layer"]], [best["dev"][metric]], "*", color="black", markersize=14, label="best (dev)")
    ax.axhline(result["majority"]["dev"], color="grey", linestyle=":", label="majority class (dev)")
    ax.set_xticks(xs, ["emb"] + [str(i) for i in xs[1:]])
    ax.set_xlabel("layer (0 = embeddings)")
    ax.set_ylabel(metric)
    ax.set_title(f"layer probes: {result['data']} · {Path(result['model']).name}", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    return path
