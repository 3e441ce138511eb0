"""What a compare left in its output folder: the run records, the leaderboard and facts from other tools."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from .. import leaderboard
from ..errors import TunebenchError


@dataclass
class Output:
    """What a compare left in `out_dir`: its run records, the leaderboard rows and the metric."""

    out_dir: Path
    metric: str
    records: list[dict]
    rows: list[dict]
    source: str  # the file the records came from
    facts: dict  # what other tools measured on the same data: {"gap": "small"|..., "truncated_share": x}
    search: dict = field(default_factory=dict)  # each searched strategy's trials: {name: [trial, ...]}


def load_output(out_dir: str | Path) -> Output:
    """Records from `OUT/results.json` (the last compare), else every run in `OUT/runs.sqlite`."""
    out = Path(out_dir)
    results, db = out / "results.json", out / "runs.sqlite"
    search: dict = {}
    if results.is_file():
        try:
            data = json.loads(results.read_text())
            records, metric = list(data["runs"]), str(data.get("metric") or "accuracy")
        except (ValueError, KeyError, TypeError) as err:
            raise TunebenchError(
                f"{results}: not a tunebench results file ({err}); rerun compare to rewrite it"
            ) from None
        source, search = results, _search(data.get("search"))
    elif db.is_file():
        try:  # read-only: a report never changes the folder it reads
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
                rows = con.execute("SELECT record FROM runs ORDER BY finished").fetchall()
        except sqlite3.Error as err:
            raise TunebenchError(f"{db}: cannot read the run store ({err})") from None
        records, metric, source = [json.loads(r[0]) for r in rows], "accuracy", db
    else:
        raise TunebenchError(
            f"{out}: no results.json or runs.sqlite here; run `tunebench compare --out {out}` first"
        )
    if not records:
        raise TunebenchError(f"{source}: no runs recorded yet; wait for the compare to finish a run")
    return Output(
        out,
        metric,
        records,
        leaderboard.build(records, metric),
        str(source),
        folder_facts(out, records),
        search,
    )


def _search(value) -> dict:
    """results.json's "search" ({strategy: [trial, ...]}), less anything malformed; {} if absent."""
    if not isinstance(value, dict):
        return {}
    return {
        str(name): [t for t in trials if isinstance(t, dict)]
        for name, trials in value.items()
        if isinstance(trials, list) and any(isinstance(t, dict) for t in trials)
    }


def folder_facts(out_dir: Path, records: list[dict]) -> dict:
    """The domain-gap verdict and truncated share from `OUT/gap.json`, if it describes the same data."""
    try:
        gap = json.loads((Path(out_dir) / "gap.json").read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(gap, dict):
        return {}
    ref = next((r for r in records if r.get("status") == "ok"), records[0] if records else {})
    if (
        gap.get("data_fingerprint")
        and ref.get("data_fingerprint")
        and gap["data_fingerprint"] != ref["data_fingerprint"]
    ):
        return {}
    facts = {}
    if gap.get("verdict") in ("small", "medium", "large"):
        facts["gap"] = gap["verdict"]
    share = (
        (gap.get("tokenizer") or {}).get("truncated_share")
        if isinstance(gap.get("tokenizer"), dict)
        else None
    )
    if isinstance(share, (int, float)) and gap.get("max_length") in (None, ref.get("max_length")):
        facts["truncated_share"] = float(share)
    return facts
