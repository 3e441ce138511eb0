"""Inline SVG charts (no plotting library, no network): a Pareto scatter, a trial scatter, line charts
and a heatmap.

Every string that reaches the SVG goes through `esc`; numbers are formatted by us.
"""

from __future__ import annotations

import math
from html import escape

PALETTE = [
    "#1f77b4",
    "#d62728",
    "#2ca02c",
    "#ff7f0e",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#17becf",
    "#bcbd22",
    "#7f7f7f",
    "#393b79",
    "#ad494a",
]
W, H = 600, 380
M = {"left": 64, "right": 150, "top": 24, "bottom": 52}  # right margin holds the legend


def esc(text) -> str:
    return escape(str(text), quote=True)


def color(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if hi <= lo:
        return [lo]
    step = 10 ** math.floor(math.log10((hi - lo) / n))
    for m in (1, 2, 2.5, 5, 10):
        if (hi - lo) / (step * m) <= n:
            step *= m
            break
    start = math.ceil(lo / step) * step
    return [round(start + i * step, 10) for i in range(int((hi - start) / step + 1e-9) + 1)]


def _log_ticks(lo: float, hi: float) -> list[float]:
    out = []
    for e in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1):
        for m in (1, 2, 5):
            v = m * 10**e
            if lo <= v <= hi:
                out.append(v)
    return out or [lo, hi]


def _fmt(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.3g}"


class _Axes:
    """Maps data to pixels and draws the frame, grid, ticks and labels."""

    def __init__(self, xs, ys, log_x=False, pad=0.06, y_range=None):
        xs = [x for x in xs if x is not None and (x > 0 or not log_x)]
        ys = [y for y in ys if y is not None]
        self.log_x = log_x
        x0, x1 = (min(xs), max(xs)) if xs else (1, 10)
        if log_x:
            x0, x1 = x0 / 1.5, x1 * 1.5
        elif x1 == x0:
            x0, x1 = x0 - 1, x1 + 1
        y0, y1 = y_range or ((min(ys), max(ys)) if ys else (0, 1))
        if y1 == y0:
            y0, y1 = y0 - 0.01, y1 + 0.01
        dy = (y1 - y0) * pad
        self.x0, self.x1, self.y0, self.y1 = x0, x1, y0 - dy, y1 + dy

    def px(self, x: float) -> float:
        w = W - M["left"] - M["right"]
        if self.log_x:
            t = (math.log10(x) - math.log10(self.x0)) / (math.log10(self.x1) - math.log10(self.x0))
        else:
            t = (x - self.x0) / (self.x1 - self.x0)
        return M["left"] + t * w

    def py(self, y: float) -> float:
        h = H - M["top"] - M["bottom"]
        return M["top"] + (1 - (y - self.y0) / (self.y1 - self.y0)) * h

    def frame(self, x_label: str, y_label: str) -> list[str]:
        left, right, top, bottom = M["left"], W - M["right"], M["top"], H - M["bottom"]
        out = [
            f'<rect x="{left}" y="{top}" width="{right - left}" height="{bottom - top}" fill="#fff" stroke="#999"/>'
        ]
        xt = _log_ticks(self.x0, self.x1) if self.log_x else _ticks(self.x0, self.x1)
        for x in xt:
            p = self.px(x)
            out.append(f'<line x1="{p:.1f}" x2="{p:.1f}" y1="{top}" y2="{bottom}" stroke="#eee"/>')
            out.append(
                f'<text x="{p:.1f}" y="{bottom + 16}" text-anchor="middle" class="tick">{_fmt(x)}</text>'
            )
        for y in _ticks(self.y0, self.y1):
            p = self.py(y)
            out.append(f'<line x1="{left}" x2="{right}" y1="{p:.1f}" y2="{p:.1f}" stroke="#eee"/>')
            out.append(
                f'<text x="{left - 6}" y="{p + 4:.1f}" text-anchor="end" class="tick">{_fmt(y)}</text>'
            )
        out.append(
            f'<text x="{(left + right) / 2}" y="{H - 12}" text-anchor="middle" class="axis">{esc(x_label)}</text>'
        )
        out.append(
            f'<text transform="translate(16 {(top + bottom) / 2}) rotate(-90)" text-anchor="middle" '
            f'class="axis">{esc(y_label)}</text>'
        )
        return out


def _svg(body: list[str], title: str, cls: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="{cls}" viewBox="0 0 {W} {H}" width="{W}" height="{H}" '
        f'role="img"><title>{esc(title)}</title>' + "".join(body) + "</svg>"
    )


def _legend(items: list[tuple]) -> list[str]:
    """items: (label, colour, dash) for a line, or (label, colour, dash, "dot" | "hollow") for a marker
    (a hollow one dashed when `dash` is set)."""
    x, out = W - M["right"] + 14, []
    for i, (label, col, dash, *shape) in enumerate(items[:18]):
        y = M["top"] + 10 + i * 18
        if shape == ["dot"]:
            out.append(f'<circle cx="{x + 9}" cy="{y}" r="5" fill="{col}"/>')
        elif shape == ["hollow"]:
            out.append(
                f'<circle cx="{x + 9}" cy="{y}" r="5" fill="#fff" stroke="{col}" stroke-width="1.8" '
                f'stroke-dasharray="{dash}"/>'
            )
        else:
            out.append(
                f'<line x1="{x}" x2="{x + 18}" y1="{y}" y2="{y}" stroke="{col}" stroke-width="3" '
                f'stroke-dasharray="{dash}"/>'
            )
        out.append(f'<text x="{x + 24}" y="{y + 4}" class="legend">{esc(label)}</text>')
    return out


def pareto_front(points: list[dict]) -> list[dict]:
    """Points not beaten on both y (higher) and x (lower), sorted by x."""
    front = [
        p
        for p in points
        if not any(
            q is not p and q["y"] >= p["y"] and q["x"] <= p["x"] and (q["y"] > p["y"] or q["x"] < p["x"])
            for q in points
        )
    ]
    return sorted(front, key=lambda p: p["x"])


def pareto_svg(points: list[dict], x_label: str, y_label: str) -> str:
    """points: {name, x (>0), y, yerr, size (trainable params), color}. Log x; area ∝ size; front joined."""
    points = [p for p in points if p.get("x") and p["x"] > 0 and p.get("y") is not None]
    if not points:
        return ""
    ax = _Axes(
        [p["x"] for p in points],
        [p["y"] - (p.get("yerr") or 0) for p in points] + [p["y"] + (p.get("yerr") or 0) for p in points],
        log_x=True,
        pad=0.12,
    )
    body = ax.frame(x_label, y_label)
    front = pareto_front(points)
    on_front = {id(p) for p in front}
    biggest = max((p.get("size") or 0) for p in points) or 1
    if len(front) > 1:
        path = " ".join(f"{ax.px(p['x']):.1f},{ax.py(p['y']):.1f}" for p in front)
        body.append(
            f'<polyline class="front" points="{path}" fill="none" stroke="#222" stroke-width="2" stroke-dasharray="6 4"/>'
        )
    for p in sorted(points, key=lambda p: -(p.get("size") or 0)):  # big markers first, small on top
        cx, cy = ax.px(p["x"]), ax.py(p["y"])
        r = max(4.0, 22 * math.sqrt((p.get("size") or 0) / biggest))  # area ∝ trainable parameters
        if p.get("yerr"):
            body.append(
                f'<line x1="{cx:.1f}" x2="{cx:.1f}" y1="{ax.py(p["y"] - p["yerr"]):.1f}" '
                f'y2="{ax.py(p["y"] + p["yerr"]):.1f}" stroke="{p["color"]}" stroke-width="1.5"/>'
            )
        on = id(p) in on_front
        if on:  # a ring around the marker, so the marker keeps its colour however small it is
            body.append(
                f'<circle class="ring" cx="{cx:.1f}" cy="{cy:.1f}" r="{r + 3:.1f}" fill="none" stroke="#000" '
                'stroke-width="1.8"/>'
            )
        body.append(
            f'<circle class="point{" on-front" if on else ""}" cx="{cx:.1f}" cy="{cy:.1f}" r="{r:.1f}" '
            f'fill="{p["color"]}" fill-opacity="0.8" stroke="#fff" stroke-width="0.8"><title>{esc(p["name"])}: '
            f"{esc(y_label)} {p['y']:.4f}, {p['x']:.1f} s, {p.get('size') or 0:,} trainable</title></circle>"
        )
        body.append(f'<text x="{cx + r + 5:.1f}" y="{cy - 4:.1f}" class="label">{esc(p["name"])}</text>')
    legend = [(p["name"], p["color"], "", "dot") for p in points]
    legend.append(("Pareto front", "#222", "6 4"))
    body += _legend(legend)
    return _svg(body, f"{y_label} vs {x_label}", "plot pareto")


def line_svg(series: list[dict], x_label: str, y_label: str, log_x: bool = False, title: str = "") -> str:
    """series: {name, color, xs, ys, dash?}; None values break nothing (they are skipped)."""
    series = [s for s in series if any(y is not None for y in s["ys"])]
    if not series:
        return ""
    xs = [x for s in series for x, y in zip(s["xs"], s["ys"]) if y is not None]
    ys = [y for s in series for y in s["ys"] if y is not None]
    ax = _Axes(xs, ys, log_x=log_x)
    body = ax.frame(x_label, y_label)
    for s in series:
        pts = [
            (x, y)
            for x, y in zip(s["xs"], s["ys"])
            if y is not None and x is not None and (x > 0 or not log_x)
        ]
        path = " ".join(f"{ax.px(x):.1f},{ax.py(y):.1f}" for x, y in pts)
        dash = s.get("dash", "")
        body.append(
            f'<polyline class="series" points="{path}" fill="none" stroke="{s["color"]}" stroke-width="2.2" '
            f'stroke-dasharray="{dash}"><title>{esc(s["name"])}</title></polyline>'
        )
        for x, y in pts:
            body.append(
                f'<circle cx="{ax.px(x):.1f}" cy="{ax.py(y):.1f}" r="3" fill="{s["color"]}">'
                f"<title>{esc(s['name'])}: {_fmt(x)} → {y:.4f}</title></circle>"
            )
    body += _legend([(s["name"], s["color"], s.get("dash", "")) for s in series])
    return _svg(body, title or f"{y_label} vs {x_label}", "plot lines")


def scatter_svg(points: list[dict], x_label: str, y_label: str, legend: list[tuple], title: str) -> str:
    """points: {x (>0), y, color, r?, hollow?, ring?, label?, tip?}, drawn in order (later on top); log x.
    `title` is shown above the frame; `legend` as for `_legend`."""
    points = [p for p in points if (p.get("x") or 0) > 0 and p.get("y") is not None]
    if not points:
        return ""
    ax = _Axes([p["x"] for p in points], [p["y"] for p in points], log_x=True, pad=0.12)
    body = ax.frame(x_label, y_label)
    body.append(f'<text x="{M["left"]}" y="{M["top"] - 8}" class="axis">{esc(title)}</text>')
    for p in points:
        cx, cy, r, col = ax.px(p["x"]), ax.py(p["y"]), p.get("r", 5), p["color"]
        if p.get("ring"):
            body.append(
                f'<circle class="ring" cx="{cx:.1f}" cy="{cy:.1f}" r="{r + 4}" fill="none" stroke="#000" '
                'stroke-width="1.5" stroke-dasharray="3 2"/>'
            )
        paint = (
            f'fill="#fff" fill-opacity="0.6" stroke="{col}" stroke-width="1.8"'
            if p.get("hollow")
            else f'fill="{col}" fill-opacity="0.85" stroke="#fff" stroke-width="0.8"'
        )
        body.append(
            f'<circle class="{"hollow" if p.get("hollow") else "point"}" cx="{cx:.1f}" cy="{cy:.1f}" '
            f'r="{r}" {paint}><title>{esc(p.get("tip", ""))}</title></circle>'
        )
        if p.get("label"):
            body.append(f'<text x="{cx + r + 4:.1f}" y="{cy - 4:.1f}" class="label">{esc(p["label"])}</text>')
    body += _legend(legend)
    return _svg(body, title, "plot scatter")


def heatmap_svg(
    row_names: list[str], col_names: list[str], values: list[list[float | None]], title: str
) -> str:
    """A grid of cells shaded white → blue by value (per-table min/max); hover shows the number."""
    flat = [v for row in values for v in row if v is not None]
    if not flat:
        return ""
    lo, hi = min(flat), max(flat)
    cw = max(18, min(60, 520 // max(len(col_names), 1)))
    ch, left, top = 22, 130, 40
    width, height = left + cw * len(col_names) + 20, top + ch * len(row_names) + 30
    body = [f'<text x="{left}" y="16" class="axis">{esc(title)} (min {_fmt(lo)}, max {_fmt(hi)})</text>']
    for j, c in enumerate(col_names):
        body.append(
            f'<text x="{left + j * cw + cw / 2:.1f}" y="{top - 6}" text-anchor="middle" class="tick">{esc(c)}</text>'
        )
    for i, (name, row) in enumerate(zip(row_names, values)):
        y = top + i * ch
        body.append(f'<text x="{left - 6}" y="{y + 15}" text-anchor="end" class="tick">{esc(name)}</text>')
        for j, v in enumerate(row):
            t = 0.0 if v is None or hi == lo else (v - lo) / (hi - lo)
            fill = (
                "#f3f3f3"
                if v is None
                else f"rgb({int(255 - 224 * t)},{int(255 - 136 * t)},{int(255 - 75 * t)})"
            )
            tip = "–" if v is None else f"{v:.4g}"
            body.append(
                f'<rect x="{left + j * cw}" y="{y}" width="{cw - 1}" height="{ch - 1}" fill="{fill}">'
                f"<title>{esc(name)} · {esc(col_names[j])}: {tip}</title></rect>"
            )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="plot heatmap" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img"><title>{esc(title)}</title>' + "".join(body) + "</svg>"
    )
