"""The tables and columns of a text dataset: a registered name, the user's files or a Hugging Face Hub
id resolved to train / dev / test `Table`s, and the text and label columns picked out of them with a
one-line `TunebenchError` for anything missing. Shared by the classification and regression loaders."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import TunebenchError
from .config import DataConfig
from .named import DATASETS, dataset_names, get_dataset, locate
from .readers import FORMATS, Table, describe_path, load_table

TEXT_COLUMNS = ("sentence", "text", "review", "content")
LABEL_COLUMNS = ("label", "labels", "class", "target")

_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


@dataclass
class Sources:
    """The tables of one text dataset, before its columns are picked."""

    name: str
    train: Table
    dev: Table | None
    test: Table | None
    columns: Mapping[str, str] = field(default_factory=dict)  # defaults from a named dataset
    hub_test: bool = False  # test split came from the Hub: may be unlabeled (GLUE uses label -1)


# ----------------------------------------------------------------------------- finding the files


def _looks_like_path(data: str) -> bool:
    name = data.lower().removesuffix(".gz")
    return os.path.exists(data) or Path(name).suffix in FORMATS or data.startswith((".", "/", "~"))


def resolve_sources(cfg: DataConfig, task: str = "text-classification") -> Sources:
    data = cfg.data
    if data in DATASETS and not os.path.isfile(data):
        ds = get_dataset(data)
        if ds.task != task:
            raise TunebenchError(f"dataset '{data}' is for {ds.task}, not {task}; pass --task {ds.task}")
        paths = locate(ds, cfg.data_dir)
        src = Sources(ds.name, load_table(paths["train"], **ds.read), None, None, ds.columns)
        default_dev, default_test = paths.get("dev"), paths.get("test")
        read = dict(ds.read)
    elif _looks_like_path(data):
        name = Path(re.sub(r"\.gz$", "", data, flags=re.I)).stem
        src = Sources(name, load_table(data), None, None)
        default_dev = default_test = None
        read = {}
    elif _HUB_ID.fullmatch(data):
        return _hub_sources(data, cfg)
    else:
        names = ", ".join(dataset_names(task))
        raise TunebenchError(
            f"unknown dataset '{data}': not a registered name ({names}) and no file {describe_path(data)}; "
            "give one of the names or the path of a data file"
        )
    src.dev = load_table(cfg.dev) if cfg.dev else load_table(default_dev, **read) if default_dev else None
    src.test = (
        load_table(cfg.test) if cfg.test else load_table(default_test, **read) if default_test else None
    )
    return src


def _hub_sources(hub_id: str, cfg: DataConfig) -> Sources:
    """Fallback for ids like "stanfordnlp/sst2": the optional `datasets` package, if it can reach the Hub."""
    try:
        import datasets  # the optional `hub` extra (slow to import): only for a Hub id
    except ImportError:
        raise TunebenchError(
            f"'{hub_id}' is not a local file, so it was taken as a Hugging Face Hub id, but the `datasets` "
            "package is not installed (pip install 'tunebench[hub]'); or give the path of a local data file"
        ) from None
    try:
        dd = datasets.load_dataset(hub_id)
    except Exception as e:  # network, auth, missing repo: all the same to the user
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise TunebenchError(
            f"could not load '{hub_id}' from the Hugging Face Hub ({first}); if you are offline, "
            "download the files and give their path"
        ) from None

    def table(split: str) -> Table:
        return Table(f"{hub_id}[{split}]", dd[split].to_dict(), len(dd[split]))

    splits = list(dd.keys())
    if "train" not in splits:
        raise TunebenchError(f"'{hub_id}' has no train split (it has: {', '.join(splits)})")
    dev_split = next((s for s in ("validation", "dev", "valid") if s in splits), None)
    dev = load_table(cfg.dev) if cfg.dev else (table(dev_split) if dev_split else None)
    test = load_table(cfg.test) if cfg.test else (table("test") if "test" in splits else None)
    src = Sources(hub_id.split("/")[-1], table("train"), dev, test)
    src.hub_test = cfg.test is None and test is not None
    return src


# ----------------------------------------------------------------------------- columns and values


def pick_column(table: Table, name: str | None, candidates: tuple[str, ...], role: str) -> str:
    available = list(table.columns)
    if name is not None and name in table.columns:
        return name
    if name is None:
        for cand in candidates:
            if cand in table.columns:
                return cand
        lower = {c.lower(): c for c in available}
        for cand in candidates:
            if cand in lower:
                return lower[cand]
    if table.n_rows == 0 and not available:
        raise TunebenchError(f"{table.source}: no rows; the file needs data rows")
    wanted = f"no column '{name}'" if name else f"no {role} column (looked for {', '.join(candidates)})"
    raise TunebenchError(
        f"{table.source}: {wanted}; columns are: {', '.join(available) or '(none)'}; "
        f"choose one with --{role}-col NAME"
    )


def text_values(table: Table, col: str) -> list[str]:
    out = []
    for i, v in enumerate(table.columns[col]):
        if not isinstance(v, str):
            if v is not None and not isinstance(v, (int, float)):
                raise TunebenchError(
                    f"{table.source} {table.where(i)}: column '{col}' holds a {type(v).__name__}, not text"
                )
            v = "" if v is None else str(v)
        if "\r" in v:
            v = v.replace("\r", "")
        if not v.strip():
            raise TunebenchError(
                f"{table.source} {table.where(i)}: empty text in column '{col}'; fill it in or remove the row"
            )
        out.append(v)
    return out
