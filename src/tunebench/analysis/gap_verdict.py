"""The verdict of `tunebench gap`: each signal's level against its thresholds (the reasons for them are
in gap.py's docstring), the largest level overall, the note on a gap of form rather than topic, and the
terminal table."""

from __future__ import annotations

from pathlib import Path

LEVELS = ("small", "medium", "large")
# signal -> (medium from, large from, larger is worse)
THRESHOLDS = {
    "fertility": (1.3, 1.6, True),
    "split_3plus": (0.05, 0.12, True),
    "unk_rate": (0.005, 0.02, True),
    "vocab_overlap_relative": (0.65, 0.4, False),
    "mmd_excess": (0.03, 0.10, True),
}
MMD_NOISE_RATIO = 2.0  # below this ratio to the within-reference baseline the distance is noise
PERCENT = frozenset({"split_3plus", "unk_rate"})  # signals shown as percentages


def level(signal: str, value: float) -> str:
    medium, large, worse_up = THRESHOLDS[signal]
    if worse_up:
        return LEVELS[(value >= medium) + (value >= large)]
    return LEVELS[(value <= medium) + (value <= large)]


def threshold_text(signal: str) -> str:
    medium, large, worse_up = THRESHOLDS[signal]
    pct = signal in PERCENT

    def f(v: float) -> str:
        return f"{v:.1%}" if pct else f"{v:g}"

    if worse_up:
        return f"< {f(medium)} · {f(medium)}-{f(large)} · ≥ {f(large)}"
    return f"> {f(medium)} · {f(large)}-{f(medium)} · ≤ {f(large)}"


def verdict(signals: list[dict]) -> tuple[str, list[str]]:
    """The largest level among the signals, and the names of the signals at that level."""
    worst = max((LEVELS.index(s["level"]) for s in signals), default=0)
    return LEVELS[worst], [s["name"] for s in signals if LEVELS.index(s["level"]) == worst]


def make_signal(name: str, label: str, value: float, lvl: str | None = None, **extra) -> dict:
    return {
        "name": name,
        "label": label,
        "value": value,
        "level": lvl or level(name, value),
        "thresholds": threshold_text(name),
        **extra,
    }


def form_note(relative: float, lengths: dict[str, float]) -> str:
    """Shared words, distant embeddings: say that the difference is form rather than topic."""
    a, b = lengths["target"], lengths["reference"]
    why = (
        f"texts average {a:.0f} words here and {b:.0f} in the reference, so the gap is mostly one of "
        "form (length, structure), not topic"
        if max(a, b) > 2 * min(a, b)
        else "the difference is one of style or register more than topic"
    )
    return f"the vocabulary is shared ({relative:.2f} of the in-reference overlap) but the embeddings differ: {why}"


def print_table(result: dict) -> None:
    # optional: rich only for the terminal table (not loaded when show=False)
    from rich.console import Console
    from rich.table import Table

    ref = result["reference"]
    title = f"domain gap: {result['data']}" + (f" vs {Path(ref['name']).name}" if ref else "")
    table = Table(title=f"{title} · {result['model']}")
    for col, just in (("signal", "left"), ("value", "right"), ("small · medium · large", "left")):
        table.add_column(col, justify=just)
    table.add_column("level")
    colors = {"small": "green", "medium": "yellow", "large": "red"}
    for s in result["signals"]:
        pct = s["name"] in PERCENT
        value = f"{s['value']:.2%}" if pct else f"{s['value']:.3f}"
        if s["name"] == "vocab_overlap_relative":
            v = result["vocabulary"]
            value += f" ({v['overlap']:.2f} / {v['baseline']:.2f}, top {v['k']})"
        if s["name"] == "mmd_excess":
            e = result["embedding"]
            value += f" (MMD² {e['mmd2']:.4f}, {e['ratio']:.1f}× baseline {e['baseline']:.4f})"
        table.add_row(s["label"], value, s["thresholds"], f"[{colors[s['level']]}]{s['level']}[/]")
    tok, frozen = result["tokenizer"], result["frozen_probe"]
    table.add_row(
        f"truncated at {result['max_length']} tokens", f"{tok['truncated_share']:.1%}", "not in verdict", "—"
    )
    table.add_row(
        "frozen probe (last layer, mean)",
        f"{frozen['dev_accuracy']:.3f} (majority {frozen['majority']:.3f})",
        "not in verdict",
        "—",
    )
    console = Console()
    console.print(table)
    lvl = result["verdict"]
    by = "every signal is small" if lvl == "small" else "set by " + ", ".join(result["verdict_by"])
    console.print(f"verdict: [bold {colors[lvl]}]{lvl} gap[/] ({by})")
    for note in result["notes"]:
        console.print(f"note: {note}")
