"""Warnings about a whole output folder: every run's diagnostics, plus what only the comparison shows
(orderings that seed or dev-set noise could flip, the shared frozen-feature cache, truncation)."""

from __future__ import annotations

from pathlib import Path

from ..strategies import STRATEGIES
from .diagnostics import TRUNCATION_SHARE, diagnose, truncated_share
from .findings import SEVERITIES, RunWarning, standard_error


def diagnose_leaderboard(rows: list[dict], n_dev: int | None = None) -> list[RunWarning]:
    """Warnings about the comparison itself: orderings that seed noise (or dev-set noise) could flip."""
    out: list[RunWarning] = []
    ranked = [r for r in rows if isinstance(r.get("dev_mean"), (int, float))]
    for a, b in zip(ranked, ranked[1:]):
        gap = a["dev_mean"] - b["dev_mean"]
        if a.get("seeds", 0) < 2 and b.get("seeds", 0) < 2:
            continue
        noisier = a if (a.get("dev_std") or 0) >= (b.get("dev_std") or 0) else b
        std = noisier.get("dev_std") or 0.0
        if std >= gap:
            out.append(
                RunWarning(
                    "seed-variance",
                    "warning",
                    f"{noisier['strategy']}'s seed std {std:.4f} is at least the {gap:.4f} gap between "
                    f"{a['strategy']} ({a['dev_mean']:.4f}) and {b['strategy']} ({b['dev_mean']:.4f}).",
                    "the order of these two may flip with other seeds: add seeds (--seeds 0 1 2 3 4) before choosing.",
                    strategy=noisier["strategy"],
                )
            )
    single = [r for r in ranked if r.get("seeds", 0) == 1]
    if len(ranked) >= 2 and len(single) == len(ranked):
        msg = "every strategy ran with one seed, so seed variance is unmeasured"
        if n_dev:
            se = standard_error(ranked[0]["dev_mean"], n_dev)
            close = [r["strategy"] for r in ranked[1:] if ranked[0]["dev_mean"] - r["dev_mean"] < 2 * se]
            msg += f"; on {n_dev} dev examples accuracy alone has a standard error of ±{se:.4f}"
            if close:
                verb = "is" if len(close) == 1 else "are"
                msg += f", and {', '.join(close)} {verb} within two standard errors of the winner"
        out.append(
            RunWarning(
                "single-seed",
                "info",
                msg + ".",
                "rerun with --seeds 0 1 2 (finished runs are reused) before trusting small gaps.",
            )
        )
    return out


def _shared_cache(records: list[dict]) -> list[RunWarning]:
    """Frozen-feature runs share one on-disk cache: the first pays the extraction, later ones do not."""
    ok = [r for r in records if r.get("status") == "ok"]
    extraction = [(r, (r.get("times") or {}).get("extraction") or 0) for r in ok]
    cost = max((e for _, e in extraction), default=0)
    if cost <= 1:
        return []
    cached = {r["strategy"] for r, _ in extraction if _reads_cached_features(r["strategy"])}
    cached |= {r["strategy"] for r, e in extraction if e > 1}
    names = sorted({r["strategy"] for r, e in extraction if r["strategy"] in cached and e < 0.5 * cost})
    if not names:
        return []
    return [
        RunWarning(
            "shared-feature-cache",
            "info",
            f"the time of {', '.join(names)} leaves out the frozen-feature extraction ({cost:.1f} s) that an "
            "earlier run paid and the cache reused.",
            f"add {cost:.1f} s when comparing the cost of a frozen strategy run on its own.",
        )
    ]


def _reads_cached_features(name: str) -> bool:
    """A frozen-feature strategy (kind "features", not the training loop) or a head trained on cached
    features; a name the registry does not know (an old record): no."""
    if name not in STRATEGIES:
        return False
    cls = STRATEGIES.get(name)
    return cls.kind != "gradient" or cls.uses_cached_features


def diagnose_output(
    records: list[dict], rows: list[dict], out_dir: str | Path | None = None, facts: dict | None = None
) -> list[RunWarning]:
    """Every run's warnings (using its stored logits when `out_dir` is given) plus the leaderboard's.

    `facts` are measurements of the same data from other tools (`truncated_share` from gap.json);
    a share of truncated texts concerns every strategy alike, so it is reported once."""
    found: list[RunWarning] = []
    for r in records:
        run_dir = Path(out_dir) / "runs" / r["key"] if out_dir is not None and r.get("key") else None
        found.extend(diagnose(r, run_dir))
    share = (facts or {}).get("truncated_share")
    measured = any(truncated_share(r) is not None for r in records)
    if share is not None and share > TRUNCATION_SHARE and not measured:
        found.append(
            RunWarning(
                "truncation",
                "warning",
                f"{share:.0%} of training texts are longer than {records[0].get('max_length')} tokens "
                "(gap.json), so every strategy sees only their beginning.",
                "keep the informative part (head+tail truncation), chunk long texts, or use a long-context encoder.",
            )
        )
    found.extend(_shared_cache(records))
    n_dev = next(((r.get("sizes") or {}).get("dev") for r in records if r.get("status") == "ok"), None)
    found.extend(diagnose_leaderboard(rows, n_dev))
    return sorted(found, key=lambda w: SEVERITIES.index(w.severity) if w.severity in SEVERITIES else 9)
