"""The report's optional sections, from files other tools write beside the runs (probe.json, gap.json,
curve.json), with tolerant loaders for the many reasonable JSON shapes of a curve."""

from __future__ import annotations

import json
from pathlib import Path

from .plots import color, esc, line_svg
from .sections import not_measured, section

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


def curve_series(obj, kind: str, metric: str, name: str, depth: int = 0) -> list[dict]:
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
            return curve_series(value, kind, metric, name, depth + 1)
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
        for s in curve_series(v, kind, metric, str(k), depth + 1)
    ]


def _load_json(path: Path):
    """(data, problem): problem is an escaped one-line message when the file is missing or unreadable."""
    if not path.is_file():
        return None, None
    try:
        return json.loads(path.read_text()), None
    except (OSError, ValueError) as err:
        return None, f"{esc(path.name)} could not be read: {esc(err)}"


def probe_section(out_dir: Path, metric: str) -> str:
    data, problem = _load_json(out_dir / "probe.json")
    if isinstance(data, dict) and isinstance(data.get("metric"), str):
        metric = data["metric"]
    series = curve_series(data, "probe", metric, "probe") if data is not None else []
    if not series:
        why = problem or (
            "probe.json has no per-layer numbers"
            if data is not None
            else "no probe.json in this folder (a linear probe on each layer's frozen features)."
        )
        return section("layer-probe", "Layer probe", not_measured(why))
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
    return section("layer-probe", "Layer probe", svg + caption + extra)


def gap_section(out_dir: Path) -> str:
    data, problem = _load_json(out_dir / "gap.json")
    if not isinstance(data, dict) or not data.get("verdict"):
        why = problem or "no gap.json in this folder (how far the data is from what the backbone knows)."
        return section("domain-gap", "Domain gap", not_measured(why))
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
    return section("domain-gap", "Domain gap", body)


def _short(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def size_curve_section(out_dir: Path, metric: str, colors: dict) -> str:
    data, problem = _load_json(out_dir / "curve.json")
    series = curve_series(data, "curve", metric, "curve") if data is not None else []
    if not series:
        why = problem or (
            "curve.json has no (size, metric) points"
            if data is not None
            else "no curve.json in this folder (dev metric over training-set sizes)."
        )
        return section("size-curve", "Learning curve over training-set size", not_measured(why))
    for i, s in enumerate(series):
        s["color"] = colors.get(s["name"], color(len(colors) + i))
    svg = line_svg(
        series,
        "training examples (log scale)",
        f"dev {metric}",
        log_x=True,
        title="metric vs training-set size",
    )
    return section("size-curve", "Learning curve over training-set size", svg)
