"""One self-contained HTML report for a compare's output folder (inline CSS and SVG, no network).

Every piece of text that comes from the records or the user's data (strategy names, labels, file
names, error messages) goes through `esc` (html.escape). Sections whose inputs are missing say so.
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

from .._version import __version__
from .leaderboard_checks import diagnose_output
from .output import load_output
from .plots import color, esc
from .recommend import analyse
from .search_section import search_section
from .sections import (
    diagnostics_section,
    drift_section,
    leaderboard_section,
    learning_curves_section,
    pareto_section,
    recommendation_section,
)
from .tool_sections import curve_series as _series  # the name tests and tools import from here
from .tool_sections import gap_section, probe_section, size_curve_section

__all__ = ["CSS", "render", "write_html", "_series"]

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


def write_html(out_dir: str | Path, path: str | Path | None = None) -> Path:
    """Write the self-contained HTML report for `out_dir` (default `OUT/report.html`); returns its path."""
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
        leaderboard_section(out),
        pareto_section(out, colors),
        learning_curves_section(out, colors),
        search_section(out, colors),
        diagnostics_section(warnings),
        recommendation_section(analysis),
        probe_section(out.out_dir, out.metric),
        gap_section(out.out_dir),
        size_curve_section(out.out_dir, out.metric, colors),
        drift_section(out.records),
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
