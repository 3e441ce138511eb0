"""Layer probes: how well does each layer of the frozen backbone separate the classes?

One forward pass (through the feature cache that `compare` shares) stores every layer's [CLS] and
mean-pooled vector. A probe is then trained per layer (0 = embeddings, 1..L = the blocks) and per
pooling: standardized features, logistic regression, C chosen on dev -- the `features` strategy's own
classifier, so the probe at the last layer with the model's pooling *is* the `features` run.

Dev scores choose C and the best layer, so they are optimistic; test (when there is one) is only
reported. What the task's `layer_probe` asks for decides the probe: a pooled vector per example with
class labels here; regression and per-word probes in `probe_tasks`. Where partial fine-tuning should
start is read off the dev curve by `suggest` (the rule is in suggest.py).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np

from ..data.named import default_task
from .frozen import POOL_INDEX, fit_probe, frozen_features, layer_name, load_inputs, majority_share
from .probe_tasks import probe_task_layers
from .suggest import suggest

log = logging.getLogger("tunebench")


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
    if task.layer_probe != "sentence" or task.regression:  # per word, or a score: probe_tasks
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


# ----------------------------------------------------------------------------- output


def print_table(result: dict) -> None:
    # optional: rich only for the terminal table (not loaded when show=False)
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
    # optional: matplotlib only for the plot; no pyplot: no global state, no GUI backend
    from matplotlib.figure import Figure

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
