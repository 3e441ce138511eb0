"""One self-contained HTML report for a compare's output folder (inline CSS and SVG, no network).

Every piece of text that comes from the records or the user's data (strategy names, labels, file
names, error messages) goes through `esc` (html.escape). Sections whose inputs are missing say so.
"""

from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path

from .. import __version__, leaderboard
from . import load_output
from .diagnostics import diagnose_output
from .plots import color, esc, heatmap_svg, line_svg, pareto_svg
from .recommend import analyse

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d1d1f;background:#f6f7f9}
main{max-width:1320px;margin:0 auto;padding:20px 28px 60px}
h1{font-size:24px;margin:8px 0 2px}h2{font-size:18px;margin:0 0 10px}
section{background:#fff;border:1px solid #dde1e6;border-radius:8px;padding:16px 20px;margin:16px 0}
.meta{color:#555}table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}
th,td{border-bottom:1px solid #e5e7eb;padding:5px 8px;text-align:right;vertical-align:top}
th{background:#f0f2f5;font-weight:600}td.l,th.l{text-align:left}tr.best td{background:#eef7ee}
.sev{display:inline-block;padding:1px 7px;border-radius:9px;color:#fff;font-size:12px}
.sev-error{background:#c62828}.sev-warning{background:#e08e0b}.sev-info{background:#1f77b4}
.not-measured{color:#777;font-style:italic;border-left:4px solid #ccc;padding:4px 10px;background:#fafafa}
table.per-class{width:auto}table.per-class td,table.per-class th{min-width:70px}
.plots{display:flex;flex-wrap:wrap;gap:12px}.caption{color:#555;font-size:13px;margin:4px 0 0}
svg .tick{font-size:11px;fill:#444}svg .axis{font-size:12px;fill:#222}svg .legend{font-size:12px;fill:#222}
svg .label{font-size:11px;fill:#111}code{background:#f0f2f5;padding:0 4px;border-radius:3px}
ul.reasons{margin:2px 0 8px 18px;padding:0}.swatch{display:inline-block;width:10px;height:10px;border-radius:5px;margin-right:5px}
"""


def write(out_dir: str | Path, path: str | Path | None = None) -> Path:
    dest = Path(path) if path else Path(out_dir) / "report.html"
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(render(out_dir), encoding="utf-8")
    return dest


def render(out_dir: str | Path) -> str:
    out = load_output(out_dir)
    colors = {r["strategy"]: color(i) for i, r in enumerate(out.rows)}
    warnings = diagnose_output(out.records, out.rows, out.out_dir, out.facts)
    analysis = analyse(out.records, out.rows, out.metric, out.facts)
    parts = [
        _header(out),
        _leaderboard(out),
        _pareto(out, colors),
        _learning_curves(out, colors),
        _diagnostics(warnings),
        _recommendation(analysis),
        _probe(out.out_dir, out.metric),
        _gap(out.out_dir),
        _size_curve(out.out_dir, out.metric, colors),
        _drift(out.records),
    ]
    title = f"tunebench report · {_first(out.records, 'data')} · {_first(out.records, 'model')}"
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<meta name='viewport' content='width=device-width'><title>{esc(title)}</title><style>{CSS}</style></head>"
        "<body><main>"
        + "".join(parts)
        + f"<p class='meta'>tunebench {esc(__version__)} · self-contained: no "
        "scripts, fonts or images are loaded from anywhere.</p></main></body></html>"
    )


def _first(records: list[dict], key: str):
    return next((r.get(key) for r in records if r.get(key) is not None), "?")


def _section(anchor: str, title: str, body: str) -> str:
    return f"<section id='{anchor}'><h2>{esc(title)}</h2>{body}</section>"


def _not_measured(what: str) -> str:
    return f"<p class='not-measured'>Not measured yet: {what}</p>"


def _header(out) -> str:
    ok = [r for r in out.records if r.get("status") == "ok"]
    ref = ok[0] if ok else out.records[0]
    sizes = ", ".join(f"{esc(k)} {v:,}" for k, v in (ref.get("sizes") or {}).items() if isinstance(v, int))
    versions = ", ".join(f"{esc(k)} {esc(v)}" for k, v in (ref.get("versions") or {}).items())
    now = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    return (
        f"<h1>tunebench report: {esc(ref.get('data', '?'))} · {esc(ref.get('model', '?'))}</h1>"
        f"<p class='meta'>{len(out.records)} runs ({len(ok)} ok) from <code>{esc(out.source)}</code> · "
        f"{sizes} · max length {esc(ref.get('max_length', '?'))} · {esc(ref.get('pooling', '?'))} pooling · "
        f"device {esc(ref.get('device', '?'))} · metric {esc(out.metric)}<br>{versions} · generated {now}</p>"
    )


def _leaderboard(out) -> str:
    cols = leaderboard.COLUMNS
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
    return _section("leaderboard", "Leaderboard", table + _per_class(out))


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
    return f"<h3>Dev F1 per class (best run of each strategy)</h3><table class='per-class'><tr>{head}</tr>{body}</table>"


def _pareto(out, colors) -> str:
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
        return _section(
            "pareto", "Metric vs cost", _not_measured("no finished run with a time and a dev metric.")
        )
    caption = (
        "<p class='caption'>Marker area ∝ trainable parameters (at least 4 px radius); error bars = seed std when "
        "several seeds ran. Ringed markers joined by the dashed line form the Pareto front: no other "
        "strategy is both faster and better on dev.</p>"
    )
    return _section("pareto", "Metric vs cost", svg + caption)


def _mean_by_epoch(runs: list[dict], value) -> tuple[list[int], list[float | None]]:
    by_epoch: dict[int, list[float]] = {}
    for r in runs:
        for h in r.get("history") or []:
            v = value(h)
            if isinstance(v, (int, float)):
                by_epoch.setdefault(int(h.get("epoch", 0)), []).append(float(v))
    epochs = sorted(by_epoch)
    return epochs, [sum(by_epoch[e]) / len(by_epoch[e]) for e in epochs]


def _learning_curves(out, colors) -> str:
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
        return _section(
            "learning-curves", "Learning curves", _not_measured("no run recorded per-epoch history.")
        )
    plots = line_svg(loss, "epoch", "train loss", title="train loss per epoch") + line_svg(
        dev, "epoch", f"dev {out.metric}", title=f"dev {out.metric} per epoch"
    )
    caption = "Mean over seeds at each epoch (early stopping can end seeds at different epochs)."
    if none:
        caption += f" No epochs (closed-form fit): {esc(', '.join(none))}."
    return _section(
        "learning-curves",
        "Learning curves",
        f"<div class='plots'>{plots}</div><p class='caption'>{caption}</p>",
    )


def _diagnostics(warnings) -> str:
    if not warnings:
        return _section(
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
    return _section("diagnostics", f"Diagnostics ({len(warnings)})", f"<table>{head}{rows}</table>{note}")


def _recommendation(a) -> str:
    if a.winner is None:
        return _section("recommendation", "Recommendation", _not_measured(esc(a.agreement)))
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
    return _section("recommendation", "Recommendation", f"<ul>{''.join(items)}</ul>{advice}")


# -- optional sections: tolerant loaders for files other tools write ------------------------------------

X_KEYS = {
    "probe": ("layer", "index", "layer_index", "l", "depth"),
    "curve": ("train_size", "size", "n", "n_train", "examples", "train_examples"),
}
GROUP_KEYS = ("strategy", "pooling", "series", "model", "method", "probe")
CONTAINERS = ("layers", "results", "points", "curve", "probe", "data", "runs", "sizes")


def _number(v, metric: str):
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, dict):
        for k in (metric, "dev_mean", "mean", "dev", "accuracy", "score", "value", "macro_f1"):
            if k in v:
                return _number(v[k], metric)
    return None


def _y_of(d: dict, metric: str, skip: set[str]):
    for k in (
        metric,
        f"dev_{metric}",
        "dev_mean",
        "dev",
        "score",
        "accuracy",
        "value",
        "metric",
        "mean",
        "macro_f1",
    ):
        if k in d and _number(d[k], metric) is not None:
            return _number(d[k], metric)
    return next(
        (_number(v, metric) for k, v in d.items() if k not in skip and _number(v, metric) is not None), None
    )


def _x_of(v, i: int):
    try:
        return float(v)
    except (TypeError, ValueError):
        digits = "".join(ch for ch in str(v) if ch.isdigit())
        return float(digits) if digits else float(i)


def _series(obj, kind: str, metric: str, name: str, depth: int = 0) -> list[dict]:
    """Turn the many reasonable JSON shapes of a per-layer / per-size curve into {name, xs, ys} series:
    a list of numbers, of [x, y] pairs or of records ({layer|train_size, metric, strategy|pooling}),
    {x: y}, {"layers": [...], "scores": [...]}, {name: any of these}, or one of them under a key such
    as "layers" or "results" beside other fields."""
    if depth > 3:
        return []
    if isinstance(obj, dict):
        return _series_from_dict(obj, kind, metric, name, depth)
    if not isinstance(obj, list) or not obj:
        return []
    if all(isinstance(v, dict) for v in obj) and any(k in v for v in obj for k in _x_keys(kind)):
        return _records_series(obj, kind, metric, name)
    if all(_number(v, metric) is not None for v in obj):
        return [{"name": name, "xs": list(range(len(obj))), "ys": [_number(v, metric) for v in obj]}]
    if all(isinstance(v, (list, tuple)) and len(v) >= 2 for v in obj):
        pts = [(_x_of(v[0], i), _number(v[1], metric)) for i, v in enumerate(obj)]
        return [{"name": name, "xs": [p[0] for p in pts], "ys": [p[1] for p in pts]}]
    if all(isinstance(v, dict) for v in obj):
        return _records_series(obj, kind, metric, name)
    return []


def _x_keys(kind: str) -> tuple[str, ...]:
    return X_KEYS[kind] + tuple(k for other in X_KEYS.values() for k in other if k not in X_KEYS[kind])


def _records_series(obj: list[dict], kind: str, metric: str, name: str) -> list[dict]:
    """[{x key, metric, group key}, ...] -> one series per group, sorted by x."""
    x_keys = _x_keys(kind)
    groups: dict[str, list[tuple[float, float | None]]] = {}
    skip = {*x_keys, *GROUP_KEYS, "name", "seed", "seeds", "std", "dev_std", "epochs", "C"}
    for i, d in enumerate(obj):
        xk = next((k for k in x_keys if k in d), None)
        group = next((str(d[k]) for k in GROUP_KEYS if k in d and not isinstance(d[k], (dict, list))), None)
        if group is None and xk is not None and isinstance(d.get("name"), str) and kind != "probe":
            group = d["name"]
        groups.setdefault(group or name, []).append(
            (_x_of(d[xk], i) if xk else float(i), _y_of(d, metric, skip))
        )
    out = []
    for g, pts in groups.items():
        pts.sort(key=lambda p: p[0])
        out.append({"name": g, "xs": [p[0] for p in pts], "ys": [p[1] for p in pts]})
    return out


def _series_from_dict(obj: dict, kind: str, metric: str, name: str, depth: int) -> list[dict]:
    for key in CONTAINERS:
        value = obj.get(key)
        if isinstance(value, list) and value and not all(isinstance(v, (int, float)) for v in value):
            return _series(value, kind, metric, name, depth + 1)
    lists = {k: v for k, v in obj.items() if isinstance(v, list)}
    xs_key = next((k for k in (*X_KEYS[kind], "layers", "sizes", "train_sizes", "x") if k in lists), None)
    if xs_key:
        ys_key = next((k for k, v in lists.items() if k != xs_key and len(v) == len(lists[xs_key])), None)
        if ys_key:
            xs = [_x_of(x, i) for i, x in enumerate(lists[xs_key])]
            return [{"name": name, "xs": xs, "ys": [_number(y, metric) for y in lists[ys_key]]}]
    if obj and all(_number(v, metric) is not None for v in obj.values()):
        items = list(obj.items())
        return [
            {
                "name": name,
                "xs": [_x_of(k, i) for i, (k, _) in enumerate(items)],
                "ys": [_number(v, metric) for _, v in items],
            }
        ]
    return [
        s
        for k, v in obj.items()
        if isinstance(v, (dict, list))
        for s in _series(v, kind, metric, str(k), depth + 1)
    ]


def _load_json(path: Path):
    """(data, problem): problem is an escaped one-line message when the file is missing or unreadable."""
    if not path.is_file():
        return None, None
    try:
        return json.loads(path.read_text()), None
    except (OSError, ValueError) as err:
        return None, f"{esc(path.name)} could not be read: {esc(err)}"


def _probe(out_dir: Path, metric: str) -> str:
    data, problem = _load_json(out_dir / "probe.json")
    if isinstance(data, dict) and isinstance(data.get("metric"), str):
        metric = data["metric"]
    series = _series(data, "probe", metric, "probe") if data is not None else []
    if not series:
        why = problem or (
            "probe.json has no per-layer numbers"
            if data is not None
            else "no probe.json in this folder (a linear probe on each layer's frozen features)."
        )
        return _section("layer-probe", "Layer probe", _not_measured(why))
    for i, s in enumerate(series):
        s["color"] = color(i)
    extra = ""
    if isinstance(data, dict):
        majority = _number(
            (data.get("majority") or {}).get("dev")
            if isinstance(data.get("majority"), dict)
            else data.get("majority"),
            metric,
        )
        if majority is not None:
            xs = sorted({x for s in series for x in s["xs"]})
            series.append(
                {
                    "name": "majority class",
                    "color": "#888",
                    "xs": xs,
                    "ys": [majority] * len(xs),
                    "dash": "4 4",
                }
            )
        suggestion = data.get("suggestion")
        text = suggestion.get("text") if isinstance(suggestion, dict) else suggestion
        if isinstance(text, str):
            extra = f"<p><b>Suggestion:</b> {esc(text)}</p>"
    svg = line_svg(series, "layer (0 = embeddings)", f"dev {metric}", title="linear probe per layer")
    caption = "<p class='caption'>From probe.json: a classifier on each layer's frozen features, one line per pooling.</p>"
    return _section("layer-probe", "Layer probe", svg + caption + extra)


def _gap(out_dir: Path) -> str:
    data, problem = _load_json(out_dir / "gap.json")
    if not isinstance(data, dict) or not data.get("verdict"):
        why = problem or "no gap.json in this folder (how far the data is from what the backbone knows)."
        return _section("domain-gap", "Domain gap", _not_measured(why))
    by = data.get("verdict_by") or []
    rows = "".join(
        f"<tr><td class='l'>{esc(s.get('label', s.get('name', '?')))}</td><td>{esc(_short(s.get('value')))}</td>"
        f"<td class='l'>{esc(s.get('level', ''))}</td><td class='l'>{esc(s.get('thresholds', ''))}</td></tr>"
        for s in data.get("signals") or []
        if isinstance(s, dict)
    )
    notes = "".join(f"<li>{esc(n)}</li>" for n in data.get("notes") or [])
    body = (
        f"<p><b>Verdict: {esc(data['verdict'])}</b>"
        + (f" (set by {esc(', '.join(map(str, by)))})" if by else "")
        + ". The rule of thumb in the recommendation uses it as its <code>gap</code> input.</p>"
        + (
            f"<table><tr><th class='l'>signal</th><th>value</th><th class='l'>level</th><th class='l'>thresholds</th></tr>{rows}</table>"
            if rows
            else ""
        )
        + (f"<ul>{notes}</ul>" if notes else "")
    )
    return _section("domain-gap", "Domain gap", body)


def _short(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _size_curve(out_dir: Path, metric: str, colors: dict) -> str:
    data, problem = _load_json(out_dir / "curve.json")
    series = _series(data, "curve", metric, "curve") if data is not None else []
    if not series:
        why = problem or (
            "curve.json has no (size, metric) points"
            if data is not None
            else "no curve.json in this folder (dev metric over training-set sizes)."
        )
        return _section("size-curve", "Learning curve over training-set size", _not_measured(why))
    for i, s in enumerate(series):
        s["color"] = colors.get(s["name"], color(len(colors) + i))
    svg = line_svg(
        series,
        "training examples (log scale)",
        f"dev {metric}",
        log_x=True,
        title="metric vs training-set size",
    )
    return _section("size-curve", "Learning curve over training-set size", svg)


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


def _drift(records: list[dict]) -> str:
    with_drift = [r for r in records if r.get("drift") is not None]
    if not with_drift:
        return _section(
            "drift",
            "Drift map",
            _not_measured(
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
        return _section(
            "drift", "Drift map", _not_measured("the <code>drift</code> entries hold no numbers.")
        )
    caption = (
        "<p class='caption'>Cells with a layer name: 1 − linear CKA between the pre-trained and the "
        "fine-tuned model's mean-pooled hidden states on dev (0 = unchanged; compare --drift).</p>"
        if any(isinstance(r["drift"], dict) and "cka" in r["drift"] for r in with_drift)
        else ""
    )
    return _section("drift", "Drift map", f"<div style='overflow-x:auto'>{svg}</div>{caption}")


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
