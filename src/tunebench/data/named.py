"""Registry of named datasets: a name maps to files under a data directory plus column hints.

Adding a dataset is one `register_dataset(NamedDataset(...))` entry; task modules decide how to
read the files (the `task` field says which loader understands them). The data directory is
searched rather than fixed, so the same command works from the repo, from a checkout next to
`shared/data`, and on a machine where `TUNEBENCH_DATA_DIR` points elsewhere.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import TunebenchError

ENV_DATA_DIR = "TUNEBENCH_DATA_DIR"


@dataclass(frozen=True)
class NamedDataset:
    """Where a dataset's files live (relative to a data dir) and how to read them."""

    name: str
    task: str  # e.g. "text-classification"; the loader for that task reads `files`
    files: Mapping[str, str]  # split ("train", "dev", "test", ...) -> path relative to the data dir
    columns: Mapping[str, str] = field(default_factory=dict)  # role ("text", "label", ...) -> column
    description: str = ""
    read: Mapping[str, object] = field(default_factory=dict)  # load_table options (fmt, names)


DATASETS: dict[str, NamedDataset] = {}


def register_dataset(ds: NamedDataset) -> NamedDataset:
    """Add `ds` to the registry; a duplicate name is our bug, so it raises ValueError."""
    if ds.name in DATASETS:
        raise ValueError(f"dataset {ds.name!r} is already registered")
    if not ds.files:
        raise ValueError(f"dataset {ds.name!r} has no files")
    DATASETS[ds.name] = ds
    return ds


def dataset_names(task: str | None = None) -> list[str]:
    """Registered names, optionally only those for one task (for CLI listings and test matrices)."""
    return sorted(n for n, ds in DATASETS.items() if task is None or ds.task == task)


def get_dataset(name: str) -> NamedDataset:
    """Look up a registered dataset, or fail with the list of known names."""
    if name not in DATASETS:
        raise TunebenchError(f"unknown dataset '{name}'; known datasets: {', '.join(dataset_names())}")
    return DATASETS[name]


def _repo_root() -> Path | None:
    root = Path(__file__).resolve().parents[3]  # src/tunebench/data/named.py -> repo root
    return root if (root / "pyproject.toml").is_file() else None


def data_dir_candidates(data_dir: str | os.PathLike | None = None) -> list[Path]:
    """Directories searched for named datasets, in order; an explicit `data_dir` is the only one."""
    if data_dir is not None:
        return [Path(data_dir)]
    dirs: list[Path] = []
    if os.environ.get(ENV_DATA_DIR):
        dirs.append(Path(os.environ[ENV_DATA_DIR]))
    dirs.append(Path.cwd().parent / "shared" / "data")
    root = _repo_root()
    if root is not None:
        dirs.append(root.parent / "shared" / "data")
    dirs.append(Path.cwd() / "data")
    unique: list[Path] = []
    for d in dirs:
        if d.resolve() not in [u.resolve() for u in unique]:
            unique.append(d)
    return unique


def locate(ds: NamedDataset, data_dir: str | os.PathLike | None = None) -> dict[str, Path]:
    """Absolute paths of all of `ds`'s files in the first data dir that holds every one of them."""
    candidates = data_dir_candidates(data_dir)
    for d in candidates:
        paths = {split: d / rel for split, rel in ds.files.items()}
        if all(p.is_file() for p in paths.values()):
            return paths
    looked = ", ".join(str(d.resolve()) for d in candidates)
    wanted = ", ".join(ds.files.values())
    raise TunebenchError(
        f"dataset '{ds.name}': files not found ({wanted}); looked in: {looked}; "
        f"point at the folder that holds them with --data-dir DIR or {ENV_DATA_DIR}=DIR"
    )


register_dataset(
    NamedDataset(
        name="sst2",
        task="text-classification",
        files={"train": "sst2/train.tsv.gz", "dev": "sst2/dev.tsv", "test": "sst2/test_labeled.tsv"},
        columns={"text": "sentence", "label": "label"},
        description="SST-2 (GLUE) movie-review sentences, 2 classes; test labels from the original SST",
    )
)
register_dataset(
    NamedDataset(
        name="imdb",
        task="text-classification",
        files={"train": "imdb/train.jsonl.gz", "test": "imdb/test.jsonl.gz"},
        columns={"text": "text", "label": "label"},
        description="IMDB (aclImdb v1.0) full reviews, 2 classes; dev is split off train",
    )
)
register_dataset(
    NamedDataset(
        name="banking77",
        task="text-classification",
        files={"train": "banking77/train.csv", "test": "banking77/test.csv"},
        columns={"text": "text", "label": "category"},
        description="Banking77 customer-service queries, 77 intents (train 35-187 per class, test 40 each); "
        "dev is split off train",
    )
)
register_dataset(
    NamedDataset(
        name="stsb",
        task="text-regression",
        files={"train": "stsb/sts-train.csv", "dev": "stsb/sts-dev.csv", "test": "stsb/sts-test.csv"},
        columns={"text": "sentence1", "text_pair": "sentence2", "label": "score"},
        description="STS Benchmark sentence pairs, similarity 0-5 (original release, test scores included)",
        # tab-separated despite the .csv name, no header, no quoting; some lines carry extra
        # license/source columns, so only the first 7 fields are read
        read={"fmt": "tsv", "names": ["genre", "file", "year", "id", "score", "sentence1", "sentence2"]},
    )
)
register_dataset(
    NamedDataset(
        name="conll2003",
        task="token-classification",
        files={
            "train": "conll2003/train.txt.gz",
            "dev": "conll2003/valid.txt.gz",
            "test": "conll2003/test.txt.gz",
        },
        description="CoNLL-2003 English NER (PER, ORG, LOC, MISC), IOB2; Reuters text: keep internal",
    )
)
register_dataset(
    NamedDataset(
        name="xquad-en",
        task="question-answering",
        files={"train": "squad/xquad.en.json"},
        description="XQuAD English (SQuAD v1.1 format), 48 articles, 1190 questions; split by article: "
        "train 1-32, dev 33-36, test 37-48",
    )
)
register_dataset(
    NamedDataset(
        name="hymenoptera",
        task="image-classification",
        files={"images": "images/hymenoptera_data.zip"},
        description="ants vs bees (PyTorch transfer-learning tutorial), ImageFolder zip: train 245 · "
        "val 153 (dev); no test",
    )
)
register_dataset(
    NamedDataset(
        name="cifar10-subset",
        task="image-classification",
        files={"images": "images/cifar10_subset.zip"},
        description="CIFAR-10 as 32x32 JPEGs, 10 classes: train 5,000 (500 per class; dev split off) · "
        "test 10,000",
    )
)


def default_task(data) -> str:
    """The task of a named dataset (a DataConfig or a name); text classification for files."""
    name = data.data if hasattr(data, "data") else str(data)
    return DATASETS[name].task if name in DATASETS else "text-classification"
