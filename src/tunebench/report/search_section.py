"""The report's Search section: each searched strategy's Optuna trials (dev metric vs learning rate) and
a table of what the search found. Only a `compare --search` has one; text from the data goes through
`esc`."""

from __future__ import annotations

import math

from .plots import color, esc, scatter_svg
from .sections import section

CAPTION = (
    "Each dot is one trial on dev (the search never sees test); hollow: pruned after the epoch shown; "
    "the best configuration then ran on every seed (the leaderboard)."
)
PRUNED = "#888"


def search_section(out, colors) -> str:
    """One scatter per searched strategy and a summary table; "" when nothing was searched."""
    if not out.search:
        return ""
    plots, rows = [], []
    for i, (name, trials) in enumerate(out.search.items()):
        col = colors.get(name) or color(i)
        best, default = _best(trials), next((t for t in trials if t.get("default")), None)
        plots.append(_plot(name, trials, best, default, col, out.metric))
        counts = [sum(t.get("state") == s for t in trials) for s in ("complete", "pruned", "fail")]
        cells = [
            f"<td class='l'><span class='swatch' style='background:{col}'></span>{esc(name)}</td>",
            f"<td>{len(trials)}</td>",
            *(f"<td>{n}</td>" for n in counts),
            f"<td>{_score(best)}</td>",
            f"<td>{_score(default)}</td>",
            f"<td class='l'>{esc(_params(best)) if best else '–'}</td>",
        ]
        rows.append(f"<tr>{''.join(cells)}</tr>")
    head = "".join(
        f"<th class='{'l' if h in ('strategy', 'best parameters') else ''}'>{esc(h)}</th>"
        for h in (
            "strategy",
            "trials",
            "complete",
            "pruned",
            "failed",
            f"best dev {out.metric}",
            f"default's dev {out.metric}",
            "best parameters",
        )
    )
    body = (
        f"<div class='plots'>{''.join(plots)}</div><table><tr>{head}</tr>{''.join(rows)}</table>"
        f"<p class='caption'>{CAPTION}</p>"
    )
    return section("search", "Search", body)


def _num(value) -> float | None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return float(value) if ok else None


def _best(trials: list[dict]) -> dict | None:
    """The best completed trial on dev, the earliest of equals (as the search chose it)."""
    done = [t for t in trials if t.get("state") == "complete" and _num(t.get("value")) is not None]
    return max(done, key=lambda t: (_num(t["value"]), -(_num(t.get("number")) or 0))) if done else None


def _score(trial: dict | None) -> str:
    value = _num((trial or {}).get("value"))
    if trial is None or value is None:
        return "–" if trial is None or trial.get("state") != "fail" else "failed"
    return f"{value:.4f}" + (
        f" (pruned, epoch {esc(trial.get('epochs'))})" if trial.get("state") == "pruned" else ""
    )


def _params(trial: dict) -> str:
    params = trial.get("params") if isinstance(trial.get("params"), dict) else {}
    return " · ".join(f"{k} {_value(v)}" for k, v in params.items())


def _value(v) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def _plot(name: str, trials: list[dict], best, default, col: str, metric: str) -> str:
    points, unplotted = [], 0
    order = {"pruned": 0, "complete": 1}  # pruned underneath, completed on top, the best last
    for t in sorted(trials, key=lambda t: (t is best, order.get(t.get("state"), 0))):
        params = t.get("params") if isinstance(t.get("params"), dict) else {}
        x, y, state = _num(params.get("lr")), _num(t.get("value")), t.get("state")
        if state not in order or x is None or x <= 0 or y is None:
            unplotted += 1
            continue
        pruned = state == "pruned"
        label = [w for w, on in (("best", t is best), ("default", t is default)) if on]
        if pruned:
            label.append(f"ep {t.get('epochs')}")
        points.append(
            {
                "x": x,
                "y": y,
                "color": PRUNED if pruned else col,
                "hollow": pruned,
                "r": 8 if t is best else 5,
                "ring": t is default,
                "label": ", ".join(label),
                "tip": f"#{t.get('number')} {state}: dev {metric} {y:.4f} · {_params(t)} "
                f"({t.get('epochs')} epochs run)",
            }
        )
    legend = [
        ("complete", col, "", "dot"),
        ("pruned", PRUNED, "", "hollow"),
        ("default", "#000", "3 2", "hollow"),
    ]
    failed = sum(t.get("state") == "fail" for t in trials)
    title = f"{name}: {len(trials)} trials" + "".join(
        f", {n} {what} (not plotted)"
        for n, what in ((failed, "failed"), (unplotted - failed, "unscored"))
        if n
    )
    svg = scatter_svg(points, "learning rate (log scale)", f"dev {metric}", legend, title)
    return svg or f"<p class='not-measured'>{esc(title)}: no trial with a dev score to plot.</p>"
