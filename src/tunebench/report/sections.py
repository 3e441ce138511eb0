"""The report's sections read from the run records: leaderboard, metric vs cost, learning curves,
diagnostics, recommendation and the drift map. Text from the records goes through `esc`."""

from __future__ import annotations

from .. import leaderboard
from .plots import esc, heatmap_svg, line_svg, pareto_svg


def section(anchor: str, title: str, body: str) -> str:
    return f"<section id='{anchor}'><h2>{esc(title)}</h2>{body}</section>"


def not_measured(what: str) -> str:
    return f"<p class='not-measured'>Not measured yet: {what}</p>"


def leaderboard_section(out) -> str:
    cols = leaderboard.columns(out.rows)
    head = "".join(
        f"<th class='{'l' if c in ('strategy', 'status') else ''}'>{esc(h.format(metric=out.metric))}</th>"
        for c, h in cols
    )
    body = []
    for i, row in enumerate(out.rows):
        cells = "".join(
            f"<td class='{'l' if c in ('strategy', 'status') else ''}'>{esc(leaderboard._fmt(row, c))}</td>"
            for c, _ in cols
        )
        body.append(
            f"<tr class='{'best' if i == 0 and row.get('dev_mean') is not None else ''}'>{cells}</tr>"
        )
    note = (
        "<p class='caption'>Sorted by mean dev metric. time = mean wall seconds per run (extraction, training "
        "and evaluation); peak memory = process RSS on CPU, max allocated on CUDA.</p>"
    )
    table = f"<table><tr>{head}</tr>{''.join(body)}</table>{note}"
    return section("leaderboard", "Leaderboard", table + _per_class(out))


def _per_class(out) -> str:
    """Dev F1 per class of each strategy's best run: where a strategy wins or loses."""
    by_key = {r.get("key"): r for r in out.records}
    rows, labels = [], []
    for row in out.rows:
        per_class = ((by_key.get(row.get("best_key")) or {}).get("dev_metrics") or {}).get(
            "per_class_f1"
        ) or {}
        labels += [k for k in per_class if k not in labels]
        rows.append((row["strategy"], per_class))
    counts = next(
        (((r.get("label_counts") or {}).get("train")) for r in out.records if r.get("label_counts")), None
    )
    if counts:  # the rarest training classes first: with many classes those are the ones to watch
        position = {k: i for i, k in enumerate(labels)}
        labels.sort(key=lambda k: (counts.get(k, 0), position[k]))
    labels = labels[:24]
    if not labels:
        return ""
    head = "<th class='l'>strategy</th>" + "".join(f"<th>{esc(k)}</th>" for k in labels)
    body = "".join(
        f"<tr><td class='l'>{esc(name)}</td>"
        + "".join(
            f"<td>{pc[k]:.3f}</td>" if isinstance(pc.get(k), (int, float)) else "<td>–</td>" for k in labels
        )
        + "</tr>"
        for name, pc in rows
    )
    order = ", rarest in training first" if counts else ""
    return (
        f"<h3>Dev F1 per class (best run of each strategy{order})</h3>"
        f"<table class='per-class'><tr>{head}</tr>{body}</table>"
    )


def pareto_section(out, colors) -> str:
    points = [
        {
            "name": r["strategy"],
            "x": r.get("time_s"),
            "y": r.get("dev_mean"),
            "yerr": r.get("dev_std") if r.get("seeds", 0) > 1 else None,
            "size": r.get("trainable") or 0,
            "color": colors[r["strategy"]],
        }
        for r in out.rows
        if r.get("dev_mean") is not None and (r.get("time_s") or 0) > 0
    ]
    svg = pareto_svg(points, "wall time per run (s, log scale)", f"dev {out.metric}")
    if not svg:
        return section(
            "pareto", "Metric vs cost", not_measured("no finished run with a time and a dev metric.")
        )
    caption = (
        "<p class='caption'>Marker area ∝ trainable parameters (at least 4 px radius); error bars = seed std when "
        "several seeds ran. Ringed markers joined by the dashed line form the Pareto front: no other "
        "strategy is both faster and better on dev.</p>"
    )
    return section("pareto", "Metric vs cost", svg + caption)


def _mean_by_epoch(runs: list[dict], value) -> tuple[list[int], list[float | None]]:
    by_epoch: dict[int, list[float]] = {}
    for r in runs:
        for h in r.get("history") or []:
            v = value(h)
            if isinstance(v, (int, float)):
                by_epoch.setdefault(int(h.get("epoch", 0)), []).append(float(v))
    epochs = sorted(by_epoch)
    return epochs, [sum(by_epoch[e]) / len(by_epoch[e]) for e in epochs]


def learning_curves_section(out, colors) -> str:
    by_strategy: dict[str, list[dict]] = {}
    for r in out.records:
        if r.get("status") == "ok":
            by_strategy.setdefault(r["strategy"], []).append(r)
    loss, dev, none = [], [], []
    for name, runs in by_strategy.items():
        if not any(r.get("history") for r in runs):
            none.append(name)
            continue
        seeds = len(runs)
        label = name + (f" ({seeds} seeds)" if seeds > 1 else "")
        xs, ys = _mean_by_epoch(runs, lambda h: h.get("train_loss"))
        loss.append({"name": label, "color": colors.get(name, "#333"), "xs": xs, "ys": ys})
        xs, ys = _mean_by_epoch(runs, lambda h: (h.get("dev") or {}).get(out.metric))
        dev.append({"name": label, "color": colors.get(name, "#333"), "xs": xs, "ys": ys})
    if not loss:
        return section(
            "learning-curves", "Learning curves", not_measured("no run recorded per-epoch history.")
        )
    plots = line_svg(loss, "epoch", "train loss", title="train loss per epoch") + line_svg(
        dev, "epoch", f"dev {out.metric}", title=f"dev {out.metric} per epoch"
    )
    caption = "Mean over seeds at each epoch (early stopping can end seeds at different epochs)."
    if none:
        caption += f" No epochs (closed-form fit): {esc(', '.join(none))}."
    return section(
        "learning-curves",
        "Learning curves",
        f"<div class='plots'>{plots}</div><p class='caption'>{caption}</p>",
    )


def diagnostics_section(warnings) -> str:
    if not warnings:
        return section(
            "diagnostics",
            "Diagnostics",
            "<p>No warnings: no run overfit, underfit, diverged or collapsed.</p>",
        )
    rows = "".join(
        f"<tr><td class='l'><span class='sev sev-{esc(w.severity)}'>{esc(w.severity)}</span></td>"
        f"<td class='l'>{esc(w.strategy or 'all')}</td><td>{'' if w.seed is None else esc(w.seed)}</td>"
        f"<td class='l'><code>{esc(w.code)}</code></td><td class='l'>{esc(w.message)}</td><td class='l'>{esc(w.fix)}</td></tr>"
        for w in warnings
    )
    head = "<tr><th class='l'>severity</th><th class='l'>strategy</th><th>seed</th><th class='l'>code</th><th class='l'>finding</th><th class='l'>fix</th></tr>"
    note = (
        "<p class='caption'>Not checked, because the records do not store them: label counts (imbalance is "
        "inferred from per-class F1) and the share of truncated texts (used when a record carries it).</p>"
    )
    return section("diagnostics", f"Diagnostics ({len(warnings)})", f"<table>{head}{rows}</table>{note}")


def recommendation_section(a) -> str:
    if a.winner is None:
        return section("recommendation", "Recommendation", not_measured(esc(a.agreement)))
    w, m = a.winner, esc(a.metric)
    spread = f" ± {w['dev_std']:.4f} over {w['seeds']} seeds" if w.get("seeds", 0) > 1 else " (one seed)"
    items = [
        f"<li><b>Measured winner:</b> {esc(w['strategy'])}, dev {m} {w['dev_mean']:.4f}{spread}.</li>",
        f"<li><b>Pareto set</b> (dev {m} ↑, time ↓, peak memory ↓): {esc(', '.join(a.pareto))}.</li>",
    ]
    if a.cheapest is not None:
        c = a.cheapest
        items.append(
            f"<li><b>Cheapest within noise:</b> {esc(c['strategy'])}, dev {c['dev_mean']:.4f} in {c['time_s']:.1f} s "
            f"(within {a.band:.4f} of the best = {esc(a.band_kind)}).</li>"
        )
    items.append(f"<li><b>Rule of thumb:</b> {esc(a.agreement)}.</li>")
    advice = ""
    if a.advice is not None:
        picks = "".join(
            f"<li><b>{esc(p.strategy)}</b> (score {p.score:+g}, ~{p.minutes:.1f} min)<ul class='reasons'>"
            + "".join(
                f"<li><code>{esc(r.input)}={esc(r.value)}</code> ({r.effect:+g}) {esc(r.text)}"
                + (f" <i>[{esc(r.source)}]</i>" if r.source else "")
                + "</li>"
                for r in sorted(p.reasons, key=lambda r: -r.effect)
            )
            + "</ul></li>"
            for p in a.advice.try_first
        )
        advice = f"<h3>What the rule of thumb would have tried first</h3><ol>{picks}</ol>"
    return section("recommendation", "Recommendation", f"<ul>{''.join(items)}</ul>{advice}")


def _flatten(value, prefix: str = "", depth: int = 0) -> dict[str, float]:
    if isinstance(value, bool):
        return {}
    if isinstance(value, (int, float)):
        return {prefix or "drift": float(value)}
    out: dict[str, float] = {}
    if depth < 3 and isinstance(value, dict):
        for k, v in value.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k), depth + 1))
    elif depth < 3 and isinstance(value, list):
        for i, v in enumerate(value):
            out.update(_flatten(v, f"{prefix}[{i}]" if prefix else str(i), depth + 1))
    return out


def drift_section(records: list[dict]) -> str:
    with_drift = [r for r in records if r.get("drift") is not None]
    if not with_drift:
        return section(
            "drift",
            "Drift map",
            not_measured(
                "no run record has a <code>drift</code> entry (how far each layer's weights moved)."
            ),
        )
    rows, names, cols = [], [], []
    for r in with_drift:
        flat = _drift_values(r["drift"])
        for k in flat:
            if k not in cols:
                cols.append(k)
        rows.append(flat)
        names.append(f"{r.get('strategy')} (seed {r.get('seed')})")
    cols = cols[:48]
    svg = heatmap_svg(names, cols, [[row.get(c) for c in cols] for row in rows], "drift per run and layer")
    if not svg:
        return section("drift", "Drift map", not_measured("the <code>drift</code> entries hold no numbers."))
    caption = (
        "<p class='caption'>Cells with a layer name: 1 − linear CKA between the pre-trained and the "
        "fine-tuned model's mean-pooled hidden states on dev (0 = unchanged; compare --drift).</p>"
        if any(isinstance(r["drift"], dict) and "cka" in r["drift"] for r in with_drift)
        else ""
    )
    return section("drift", "Drift map", f"<div style='overflow-x:auto'>{svg}</div>{caption}")


def _drift_values(drift) -> dict[str, float]:
    """{"cka": [...], "layers": [...], "inputs": n, ...} (compare --drift) -> {layer: 1 - CKA}, so that
    darker means more change and the input count is not a column; any other shape is flattened."""
    cka = drift.get("cka") if isinstance(drift, dict) else None
    if not isinstance(cka, list):
        return _flatten(drift)
    names = drift.get("layers")
    if not isinstance(names, list) or len(names) != len(cka):
        names = [f"layer {i}" for i in range(len(cka))]
    return {
        str(n): 1.0 - float(v)
        for n, v in zip(names, cka)
        if isinstance(v, (int, float)) and not isinstance(v, bool)
    }
