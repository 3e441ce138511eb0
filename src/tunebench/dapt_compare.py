"""`compare --dapt-corpus FILE`: the ladder on the original backbone and on the same backbone adapted to
the corpus (adapt.py: continued pre-training), side by side, the adaptation's cost counted.

Layout of OUT: `backbone/` (the adapted model folder and adapt.json, reused when it already holds this
adaptation), `original/` and `adapted/` (a plain compare each: its own leaderboard and run store), and
`dapt.md` / `dapt.json`, the two leaderboards as one table. The adapted rows' `total s` adds the
adaptation's wall time, paid once for every strategy of the ladder (also shown on its own).

The comparison's dev and test texts are left out of the corpus: adaptation never reads what is scored.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from .adapt import adapt
from .comparison import compare
from .data import DataConfig
from .data.named import default_task
from .errors import TunebenchError
from .store import check_out_dir
from .tasks import get_task

log = logging.getLogger("tunebench")


def compare_dapt(
    data: str | DataConfig,
    corpus: str | Path,
    *,
    model: str | None = None,
    task: str | None = None,
    out: str | Path = "tunebench-out",
    adapt_options: dict | None = None,
    show: bool = True,
    **compare_kwargs,
) -> dict:
    """Adapt the backbone to `corpus`, run the same comparison on both backbones; returns
    {"adapt": adapt.json's record, "rows": the side-by-side rows}. `adapt_options`: adapt()'s keywords
    (objective, steps, epochs, lr, batch_size, max_length, text_col)."""
    out = check_out_dir(out)
    config = data if isinstance(data, DataConfig) else DataConfig(data)
    task_name = task or default_task(config)
    spec = get_task(task_name)
    if spec.modality != "text":
        raise TunebenchError(
            f"--dapt-corpus: domain-adaptive pre-training is for text backbones, not {task_name}"
        )
    bundle = spec.load_bundle(config)
    scored = {
        t
        for split in (bundle.dev, bundle.test)
        if split is not None
        for t in [*split.texts, *(getattr(split, "text_pairs", None) or [])]
    }
    base = model or spec.default_model
    options = {"seed": 0, **(adapt_options or {})}
    trust = compare_kwargs.get("trust_remote_code", False)
    record = adapt(corpus, base, out / "backbone", exclude=scored, trust_remote_code=trust, **options)
    common = {"task": task_name, "show": show, **compare_kwargs}
    original = compare(config, model=base, out=out / "original", **common)
    adapted = compare(config, model=record["adapted"], out=out / "adapted", **common)
    rows = _table(original, adapted, record)
    (out / "dapt.json").write_text(json.dumps({"adapt": record, "rows": rows}, indent=1, default=str))
    text = markdown(rows, record)
    (out / "dapt.md").write_text(text + "\n")
    if show:
        print(text)
    return {"adapt": record, "rows": rows}


def _table(original: list[dict], adapted: list[dict], record: dict) -> list[dict]:
    cost = record["seconds"]
    by_strategy = {r["strategy"]: r for r in adapted}
    rows = []
    for r in original:
        a = by_strategy.get(r["strategy"], {})
        rows.append(
            {
                "strategy": r["strategy"],
                "metric": r.get("metric"),
                "original": _cells(r, 0.0),
                "adapted": _cells(a, cost) if a else None,
                "gain": (
                    a["test_mean"] - r["test_mean"]
                    if a and a.get("test_mean") is not None and r.get("test_mean") is not None
                    else None
                ),
            }
        )
    return rows


def _cells(row: dict, adapt_seconds: float) -> dict:
    time_s = row.get("time_s") or 0.0
    return {
        "status": row.get("status", "ok"),
        "dev": row.get("dev_mean"),
        "test": row.get("test_mean"),
        "time_s": time_s,
        "total_s": time_s + adapt_seconds,
    }


def markdown(rows: list[dict], record: dict) -> str:
    def num(v, fmt=".4f"):
        return "–" if v is None else format(v, fmt)

    lines = [
        f"Adapted by {record['objective']} ({record['steps']} steps on {record['corpus']['texts']:,} texts, "
        f"{record['seconds']:.0f} s; held-out loss {record['held_out_before']['loss']:.3f} → "
        f"{record['held_out_after']['loss']:.3f}): {record['adapted']}",
        "",
        "| strategy | original dev | original test | adapted dev | adapted test | gain (test) | "
        "original s | adapted s | adapted s + adaptation |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        o, a = r["original"], r["adapted"] or {}
        gain = "–" if r["gain"] is None else f"{r['gain'] * 100:+.1f} pt"
        lines.append(
            f"| {r['strategy']} | {num(o['dev'])} | {num(o['test'])} | {num(a.get('dev'))} | "
            f"{num(a.get('test'))} | {gain} | {o['time_s']:.0f} | {num(a.get('time_s'), '.0f')} | "
            f"{num(a.get('total_s'), '.0f')} |"
        )
    return "\n".join(lines)
