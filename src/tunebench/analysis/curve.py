"""Learning curves: the metric per strategy over training-set sizes, and where fine-tuning overtakes
frozen features.

Each size is one `compare` with `train_size=size` into the same output folder. A run's key hashes the
data fingerprint, which changes with the subsample, so sizes never share runs by mistake, and a rerun
(or a larger curve over the same sizes) reuses every finished run. The training subsample is seeded by
the data seed, not the run seed: the seeds measure training noise at a fixed subsample.

Writes `OUT/curve.json` (read by the HTML report's size-curve section) and `OUT/curve.png`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path

from ..comparison import compare
from ..data import DataConfig
from ..data.named import default_task
from ..errors import TunebenchError
from ..strategies import STRATEGIES, default_ladder
from ..tasks import get_task
from .drift import DriftHook, changes_backbone

log = logging.getLogger("tunebench")


def ladder_order() -> list[str]:
    """Every registered strategy: the default ladder's first, in its order, then the rest as registered."""
    ladder = default_ladder()
    return ladder + [name for name, _ in STRATEGIES.items() if name not in ladder]


def default_strategies() -> list[str]:
    """The curve's default set: the strategies that declare `curve` (frozen vs fine-tuned), ladder order."""
    return [name for name in ladder_order() if STRATEGIES.get(name).curve]


def frozen_strategies() -> list[str]:
    """The strategies that leave the pre-trained backbone as it is (frozen features, head-only on cached
    features), in ladder order: the first of them with results is the crossover's baseline."""
    return [name for name in ladder_order() if not changes_backbone(STRATEGIES.get(name))]


def learning_curve(
    data_cfg,
    strategies: list[str] | None = None,
    sizes: list[int] | tuple[int, ...] = (100, 300, 1000, 3000),
    seeds: list[int] | tuple[int, ...] = (0,),
    out: str | Path = "tunebench-out",
    *,
    show: bool = True,
    **compare_kwargs,
) -> dict:
    """Run `compare` at each training-set size; returns (and writes) the curve.

    `data_cfg`: a DataConfig or a dataset name / train-file path, without train_size. `compare_kwargs`
    go to `compare` (model, options, train, task, pooling, max_length, trust_remote_code, drift).
    Sizes above the training rows available are capped at that number, with a note."""
    if isinstance(data_cfg, str):
        data_cfg = DataConfig(data=data_cfg)
    if data_cfg.train_size is not None:
        raise TunebenchError("learning curve: give the training-set sizes with --sizes, not --train-size")
    if "export" in compare_kwargs:
        raise TunebenchError("learning curve: no --export (it would copy one winner per size); use compare")
    if not sizes or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in sizes):
        raise TunebenchError(f"--sizes {' '.join(map(str, sizes))}: give positive whole numbers")
    if not seeds:
        raise TunebenchError("--seeds: give at least one seed")
    if compare_kwargs.pop("drift", False):
        compare_kwargs["hooks"] = (*compare_kwargs.get("hooks", ()), DriftHook())
    names = list(strategies or default_strategies())
    if names == ["all"]:
        names = STRATEGIES.names()
    for n in names:
        STRATEGIES.get(n)  # unknown names fail before any work

    task = get_task(compare_kwargs.get("task") or default_task(data_cfg))
    bundle = task.load_bundle(data_cfg)  # the full training split: what the sizes are capped at
    available = len(bundle.train)
    notes, effective = [], []
    for size in sorted(set(sizes)):
        if size > available:
            notes.append(
                f"size {size} is more than the {available} training examples available; capped at {available}"
            )
        if min(size, available) not in effective:
            effective.append(min(size, available))

    points, metric = [], "accuracy"
    for i, size in enumerate(effective, 1):
        log.info("learning curve: size %d (%d/%d)", size, i, len(effective))
        rows = compare(
            replace(data_cfg, train_size=size),
            strategies=names,
            seeds=list(seeds),
            out=out,
            show=False,
            **compare_kwargs,
        )
        for r in rows:
            metric = r["metric"]
            points.append(
                {
                    "strategy": r["strategy"],
                    "train_size": size,
                    "dev_mean": r["dev_mean"],
                    "dev_std": r["dev_std"],
                    "test_mean": r["test_mean"],
                    "test_std": r["test_std"],
                    "seeds": r["seeds"],
                    "status": r["status"],
                }
            )
    split = "test" if all(p["test_mean"] is not None for p in points if p["dev_mean"] is not None) else "dev"
    result = {
        "data": bundle.name,
        "model": str(compare_kwargs.get("model") or "minilm"),
        "metric": metric,
        "available_train": available,
        "requested_sizes": sorted(set(sizes)),
        "sizes": effective,
        "seeds": list(seeds),
        "strategies": names,
        "points": points,
        "crossover": crossover(points, split, metric),
        "notes": notes,
    }
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "curve.json").write_text(json.dumps(result, indent=2))
    plot_curve(result, out / "curve.png")
    if show:
        print_table(result)
    log.info("learning curve: %s", result["crossover"]["text"])
    for note in notes:
        log.warning("learning curve: %s", note)
    return result


def crossover(points: list[dict], split: str = "dev", metric: str = "accuracy") -> dict:
    """The smallest size from which the best fine-tuning strategy beats frozen features at every
    larger size tried (a single lucky size does not count); `size` None when it never does.

    The frozen baseline is the first frozen strategy with results, in ladder order (`features`, else
    `head`); fine-tuning is every other strategy. Points are {strategy, train_size, <split>_mean};
    missing (failed) means are skipped."""
    key = f"{split}_mean"
    means: dict[str, dict[int, float]] = {}
    for p in points:
        if p.get(key) is not None:
            means.setdefault(p["strategy"], {})[p["train_size"]] = p[key]
    frozen_names = frozen_strategies()
    frozen = next((s for s in frozen_names if s in means), None)
    tuned = [s for s in means if s not in frozen_names]
    base = {"split": split, "metric": metric, "frozen": frozen, "size": None, "margins": []}
    if frozen is None or not tuned:
        missing = "frozen baseline (features or head)" if frozen is None else "fine-tuning strategy"
        return {**base, "text": f"no crossover to compute: no {missing} with results among the strategies"}
    margins = []
    for size in sorted(means[frozen]):
        scores = {s: means[s][size] for s in tuned if size in means[s]}
        if scores:
            best = max(scores, key=scores.get)
            margins.append(
                {
                    "train_size": size,
                    "best": best,
                    "best_mean": scores[best],
                    "frozen_mean": means[frozen][size],
                    "margin_points": round(100 * (scores[best] - means[frozen][size]), 2),
                }
            )
    size = None
    for m in reversed(margins):  # walk down from the largest size while fine-tuning stays ahead
        if m["margin_points"] <= 0:
            break
        size = m["train_size"]
    where = f"({split} {metric}, mean over seeds)"
    if size is None:
        text = f"fine-tuning does not overtake {frozen}: not within the sizes tried {where}"
    else:
        at = next(m for m in margins if m["train_size"] == size)
        lead = f"{at['best']} leads {frozen} by {at['margin_points']:.1f} points"
        if size == margins[0]["train_size"]:
            text = f"fine-tuning is ahead of {frozen} already at the smallest size tried, {size} ({lead}) {where}"
        else:
            text = f"fine-tuning overtakes {frozen} at {size} training examples ({lead}) {where}"
    return {**base, "size": size, "margins": margins, "text": text}


def print_table(result: dict) -> None:
    # optional: rich only for the terminal table (not loaded when show=False)
    from rich.console import Console
    from rich.table import Table

    cross = result["crossover"]
    split, metric = cross["split"], result["metric"]
    caption = [f"{split} {metric}, mean ± std over seeds {result['seeds']}", cross["text"], *result["notes"]]
    table = Table(title=f"learning curve: {result['data']} · {result['model']}", caption="\n".join(caption))
    table.add_column("strategy")
    for size in result["sizes"]:
        table.add_column(f"n={size}", justify="right")
    by = {(p["strategy"], p["train_size"]): p for p in result["points"]}
    for name in result["strategies"]:
        cells = []
        for size in result["sizes"]:
            p = by.get((name, size))
            m = None if p is None else p[f"{split}_mean"]
            cells.append("–" if m is None else f"{m:.4f} ± {p[f'{split}_std']:.4f}")
        table.add_row(name, *cells)
    Console().print(table)


def plot_curve(result: dict, path: Path) -> Path:
    """Mean ± std over seeds per strategy against training-set size (log x), crossover marked."""
    # optional: matplotlib only for the plot; no pyplot: no global state, no GUI backend
    from matplotlib.figure import Figure

    cross = result["crossover"]
    split, metric = cross["split"], result["metric"]
    frozen = frozen_strategies()
    fig = Figure(figsize=(6.4, 4.0), dpi=120)
    ax = fig.subplots()
    for name in result["strategies"]:
        pts = sorted(
            (p for p in result["points"] if p["strategy"] == name and p[f"{split}_mean"] is not None),
            key=lambda p: p["train_size"],
        )
        if pts:
            xs = [p["train_size"] for p in pts]
            ys = [p[f"{split}_mean"] for p in pts]
            err = [p[f"{split}_std"] or 0.0 for p in pts]
            style = "--" if name in frozen else "-"
            ax.errorbar(xs, ys, yerr=err, fmt="o" + style, capsize=3, label=name)
    if cross["size"] is not None:
        ax.axvline(cross["size"], color="grey", linestyle=":", label=f"crossover ({cross['size']})")
    ax.set_xscale("log")
    ax.set_xlabel("training examples (log scale)")
    ax.set_ylabel(f"{split} {metric}")
    ax.set_title(f"learning curve: {result['data']} · {Path(result['model']).name}", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    return path
