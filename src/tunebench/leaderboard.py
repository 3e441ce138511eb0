"""Leaderboard: a pure function of run records, plus writers (CSV, Markdown, JSON, terminal)."""

from __future__ import annotations

import csv
import io
import json
import os
import statistics
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

COLUMNS = [
    ("strategy", "strategy"),
    ("dev", "dev {metric}"),
    ("test", "test {metric}"),
    ("rare_f1", "rare-class F1"),
    ("seeds", "seeds"),
    ("trials", "trials"),
    ("time_s", "time (s)"),
    ("train_ex_per_s", "train ex/s"),
    ("peak_mem_mb", "peak mem (MB)"),
    ("latency_ms", "predict ms/ex (b1)"),
    ("predict_ex_per_s", "predict ex/s (b32)"),
    ("trainable", "trainable params"),
    ("trainable_pct", "trainable %"),
    ("artifact_mb", "artifact (MB)"),
    ("status", "status"),
]


IMBALANCE_RATIO = 3.0  # largest / smallest training class from which classes count as imbalanced
RARE_SHARE = 0.1  # the rarest tenth of the classes (at least one) make the rare-class F1


def rare_classes(counts: dict[str, int] | None) -> list[str]:
    """The rarest classes in training (the rarest tenth, at least one) when the classes are imbalanced
    (largest / smallest >= IMBALANCE_RATIO); [] otherwise."""
    present = {k: v for k, v in (counts or {}).items() if v > 0}
    if len(present) < 2 or max(present.values()) < IMBALANCE_RATIO * min(present.values()):
        return []
    k = max(1, round(RARE_SHARE * len(present)))
    return sorted(present, key=lambda name: (present[name], name))[:k]


def rare_f1(record: dict) -> float | None:
    """Mean F1 of the rarest training classes, on test (dev when there is none); None when the
    classes are balanced or the task has no per-class F1."""
    rare = rare_classes((record.get("label_counts") or {}).get("train"))
    metrics = record.get("test_metrics") or record.get("dev_metrics") or {}
    per_class = metrics.get("per_class_f1")
    if not rare or not per_class:
        return None
    return statistics.fmean(per_class[name] for name in rare)


def _inference(runs: list[dict], key: str) -> float | None:
    """Mean inference cost over the runs that measured it (training/inference.py)."""
    return _mean_std([r["inference"][key] for r in runs if r.get("inference")])[0]


def _mean_std(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def build(records: list[dict], metric: str) -> list[dict]:
    """One row per strategy, aggregated over seeds, sorted by mean dev metric (best first)."""
    by_strategy: dict[str, list[dict]] = {}
    for r in records:
        by_strategy.setdefault(r["strategy"], []).append(r)
    rows = []
    for name, runs in by_strategy.items():
        ok = [r for r in runs if r["status"] == "ok"]
        errors = [r["status"] for r in runs if r["status"] != "ok"]
        dev_m, dev_s = _mean_std([r["dev_metrics"][metric] for r in ok])
        test_vals = [r["test_metrics"][metric] for r in ok if "test_metrics" in r]
        test_m, test_s = _mean_std(test_vals)
        first = ok[0] if ok else {}
        total = first.get("total_params") or 0
        rows.append(
            {
                "strategy": name,
                "metric": metric,
                "dev_mean": dev_m,
                "dev_std": dev_s,
                "test_mean": test_m,
                "test_std": test_s,
                "rare_f1": _mean_std([v for r in ok if (v := rare_f1(r)) is not None])[0],
                "seeds": len(ok),
                "time_s": _mean_std([r["wall_seconds"] for r in ok])[0],
                "train_ex_per_s": _mean_std([r["examples_per_second"] or 0 for r in ok])[0],
                "peak_mem_mb": max((r["peak_memory_mb"] or 0 for r in ok), default=None),
                "latency_ms": _inference(ok, "latency_ms"),
                "predict_ex_per_s": _inference(ok, "examples_per_second"),
                "trainable": first.get("trainable_params"),
                "total": total,
                "trainable_pct": 100 * first["trainable_params"] / total if total else None,
                "artifact_mb": first["artifact_bytes"] / 2**20 if ok else None,
                "status": "ok" if not errors else f"{len(errors)} failed: {errors[-1]}",
                "trials": (first.get("search") or runs[0].get("search") or {}).get("trials"),
                "best_key": max(ok, key=lambda r: r["dev_metrics"][metric])["key"] if ok else None,
            }
        )
    return sorted(rows, key=lambda r: (r["dev_mean"] is None, -(r["dev_mean"] or 0.0)))  # failed runs last


def _fmt(row: dict, col: str) -> str:
    def pm(m, s):
        if m is None:
            return "–"
        return f"{m:.4f} ± {s:.4f}" if row["seeds"] > 1 else f"{m:.4f}"

    if col == "dev":
        return pm(row["dev_mean"], row["dev_std"])
    if col == "test":
        return pm(row["test_mean"], row["test_std"])
    v = row.get(col)
    if v is None:
        return "–"
    if col == "trainable":
        return f"{v:,}"
    if col == "rare_f1":
        return f"{v:.4f}"
    if col == "trainable_pct":
        return f"{v:.3g}"
    if col in ("time_s", "train_ex_per_s", "peak_mem_mb", "latency_ms", "predict_ex_per_s"):
        return f"{v:,.0f}" if v >= 100 else f"{v:.1f}"
    if col == "artifact_mb":
        return f"{v:.2f}"
    return str(v)


def columns(rows: list[dict]) -> list[tuple[str, str]]:
    """The columns to show: `trials` only when a strategy was searched, the rare-class F1 only when the
    training classes are imbalanced."""
    optional = ("trials", "rare_f1")
    return [(c, h) for c, h in COLUMNS if c not in optional or any(r.get(c) is not None for r in rows)]


def _headers(metric: str, shown) -> list[str]:
    return [h.format(metric=metric) for _, h in shown]


def to_markdown(rows: list[dict], metric: str) -> str:
    shown = columns(rows)
    lines = ["| " + " | ".join(_headers(metric, shown)) + " |", "|" + "---|" * len(shown)]
    for row in rows:
        lines.append("| " + " | ".join(_fmt(row, c) for c, _ in shown) + " |")
    return "\n".join(lines) + "\n"


def _atomic_write(path: Path, text: str) -> None:
    """Write under a name of this process, then rename: workers writing at once never mix files."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def write(
    rows: list[dict], records: list[dict], metric: str, out_dir: Path, search: dict | None = None
) -> None:
    """leaderboard.csv/.md and results.json (with each searched strategy's trials under "search")."""
    out_dir.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    keys = [k for k in rows[0] if k != "metric"] if rows else []
    writer = csv.DictWriter(buf, fieldnames=keys, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    _atomic_write(out_dir / "leaderboard.csv", buf.getvalue())
    _atomic_write(out_dir / "leaderboard.md", to_markdown(rows, metric))
    results = {
        "metric": metric,
        "leaderboard": rows,
        "runs": records,
        **({"search": search} if search else {}),
    }
    _atomic_write(out_dir / "results.json", json.dumps(results, indent=1, default=str))


def print_table(rows: list[dict], metric: str, title: str) -> None:
    console = Console()
    if not console.is_terminal:  # logs and pipes: don't squeeze the table into 80 columns
        console = Console(width=220)
    table = Table(title=title)
    shown = columns(rows)
    for i, h in enumerate(_headers(metric, shown)):
        table.add_column(h, justify="left" if i in (0, len(shown) - 1) else "right", no_wrap=i == 0)
    for row in rows:
        table.add_row(*(escape(_fmt(row, c)) for c, _ in shown))  # "[...]" in an error is not markup
    console.print(table)
