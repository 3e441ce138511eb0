"""Which strategies to try first, measured: the answer after a compare, and the text of both answers.

`analyse` reads the leaderboard: the winner, the Pareto set over (dev metric ↑, time ↓, peak memory ↓),
the cheapest strategy within noise of the best, and whether the rule of thumb (`rules.advise`, before
any training) agreed. `format_advice` and `format_analysis` print them.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from .findings import standard_error
from .rules import Advice, advise

__all__ = ["Advice", "Analysis", "advise", "analyse", "format_advice", "format_analysis", "pareto_set"]


# -- after a compare --------------------------------------------------------------------------------


@dataclass
class Analysis:
    metric: str
    winner: dict | None
    pareto: list[str]  # strategies not dominated on (dev metric ↑, time ↓, peak memory ↓)
    cheapest: dict | None  # fastest strategy whose mean is within `band` of the best
    band: float
    band_kind: str
    advice: Advice | None
    agreement: str

    def as_dict(self) -> dict:
        return asdict(self)


def pareto_set(rows: list[dict]) -> list[str]:
    """Strategies no other strategy beats on dev mean, time and peak memory at once."""
    pts = [
        r
        for r in rows
        if all(isinstance(r.get(k), (int, float)) for k in ("dev_mean", "time_s", "peak_mem_mb"))
    ]

    def dominates(a, b) -> bool:
        ge = (
            a["dev_mean"] >= b["dev_mean"]
            and a["time_s"] <= b["time_s"]
            and a["peak_mem_mb"] <= b["peak_mem_mb"]
        )
        gt = a["dev_mean"] > b["dev_mean"] or a["time_s"] < b["time_s"] or a["peak_mem_mb"] < b["peak_mem_mb"]
        return ge and gt

    return [b["strategy"] for b in pts if not any(dominates(a, b) for a in pts if a is not b)]


def analyse(
    records: list[dict], rows: list[dict], metric: str, facts: dict | None = None, **rule_inputs
) -> Analysis:
    """The measured answer for one output folder. The rule of thumb's inputs come from the records
    (train size, device), `facts` (the gap verdict of gap.json) and `rule_inputs`, which win."""
    ranked = [r for r in rows if isinstance(r.get("dev_mean"), (int, float))]
    if not ranked:
        return Analysis(metric, None, [], None, 0.0, "", None, "no finished run to analyse")
    best = ranked[0]
    ok = [r for r in records if r.get("status") == "ok"]
    n_dev = next(((r.get("sizes") or {}).get("dev") for r in ok), 0) or 0
    if best.get("seeds", 0) >= 2:
        band, kind = best.get("dev_std") or 0.0, f"one seed standard deviation of {best['strategy']}"
    else:
        band = standard_error(best["dev_mean"], n_dev)
        kind = f"one binomial standard error on {n_dev} dev examples (one seed: seed std unmeasured)"
    near = [r for r in ranked if r["dev_mean"] >= best["dev_mean"] - band - 1e-12]
    cheapest = min(near, key=lambda r: r["time_s"] if isinstance(r.get("time_s"), (int, float)) else math.inf)
    advice, agreement = _rule_check(ok, ranked, band, (facts or {}).get("gap"), rule_inputs)
    return Analysis(metric, best, pareto_set(ranked), cheapest, band, kind, advice, agreement)


def _rule_check(
    ok: list[dict], ranked: list[dict], band: float, gap: str | None, inputs: dict
) -> tuple[Advice | None, str]:
    if not ok:
        return None, "no finished run"
    first = ok[0]
    derived = {
        "train_size": int((first.get("sizes") or {}).get("train") or 1),
        "device": "cuda" if str(first.get("device", "")).startswith("cuda") else "cpu",
    }
    measured_gap = {"gap": gap} if gap else {}
    given = {k: v for k, v in inputs.items() if v is not None}
    advice = advise(**{**derived, **measured_gap, **given})
    origin = (
        {k: "records" for k in derived} | {k: "gap.json" for k in measured_gap} | {k: "given" for k in given}
    )
    shown = ", ".join(
        f"{k}={v} ({origin.get(k, 'assumed')})"
        for k, v in advice.inputs.items()
        if v is not None and k != "params_m"
    )
    measured = {r["strategy"]: r for r in ranked}
    picks = [p.strategy for p in advice.try_first]
    tried = [measured[s] for s in picks if s in measured]
    best = ranked[0]
    if not tried:
        return advice, f"given {shown}: its first picks ({', '.join(picks)}) were not measured"
    top = max(tried, key=lambda r: r["dev_mean"])
    order = [p.strategy for p in advice.try_first + advice.later]
    rank = (
        f"{order.index(best['strategy']) + 1} of {len(order)}" if best["strategy"] in order else "not at all"
    )
    if top is best:
        verdict = f"agreed: the winner {best['strategy']} is among its first picks ({', '.join(picks)})"
    elif best["dev_mean"] - top["dev_mean"] <= band + 1e-12:
        verdict = (
            f"agreed within noise: its best first pick, {top['strategy']} ({top['dev_mean']:.4f}), is within "
            f"{band:.4f} of the winner {best['strategy']} ({best['dev_mean']:.4f})"
        )
    else:
        verdict = (
            f"disagreed: its first picks ({', '.join(picks)}) reach {top['dev_mean']:.4f} at best "
            f"({top['strategy']}), {best['dev_mean'] - top['dev_mean']:.4f} below the winner "
            f"{best['strategy']} ({best['dev_mean']:.4f}), which it ranked {rank}"
        )
    return advice, f"given {shown}: {verdict}"


# -- text output -----------------------------------------------------------------------------------


def format_advice(advice: Advice) -> str:
    """Each reason is printed next to the input it follows from and what it added to the score."""
    lines = ["Try first:"]
    for i, p in enumerate(advice.try_first, 1):
        lines.append(f"  {i}. {p.strategy}  (score {p.score:+g}, ~{p.minutes:.1f} min per run)")
        lines += [f"       {r}" for r in sorted(p.reasons, key=lambda r: -r.effect)]
    lines.append("Later:")
    for p in advice.later:
        against = sorted((r for r in p.reasons if r.effect < 0), key=lambda r: r.effect)
        why = str(against[0]) if against else "outscored by the picks above"
        lines.append(f"  - {p.strategy} (score {p.score:+g}, ~{p.minutes:.1f} min): {why}")
    if advice.notes:
        lines.append("Notes:")
        lines += [f"  - {r}" for r in advice.notes]
    lines.append(
        "Times are rough: from this project's 2-core CPU measurements on MiniLM-L6 with short texts, "
        "scaled by model size (and ~30x for CUDA); long texts cost proportionally more."
    )
    return "\n".join(lines)


def format_analysis(a: Analysis) -> str:
    if a.winner is None:
        return a.agreement
    w = a.winner
    lines = [
        f"Winner: {w['strategy']}  dev {a.metric} {w['dev_mean']:.4f}"
        + (f" ± {w['dev_std']:.4f} ({w['seeds']} seeds)" if w.get("seeds", 0) > 1 else " (1 seed)"),
        f"Pareto set (dev {a.metric} ↑, time ↓, peak memory ↓): {', '.join(a.pareto)}",
    ]
    if a.cheapest is not None:
        c = a.cheapest
        lines.append(
            f"Cheapest within noise: {c['strategy']}  dev {c['dev_mean']:.4f}, {c['time_s']:.1f} s "
            f"(band ±{a.band:.4f} = {a.band_kind})"
        )
    lines.append(f"Rule of thumb: {a.agreement}")
    return "\n".join(lines)
