"""Shared fixtures: the tiny random BERT with an offline word-level tokenizer and learnable data
(tunebench.testing), and every task's tiny fixture and ladder (each task package's tiny.py)."""

from __future__ import annotations

import importlib
import os
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before transformers / huggingface_hub are imported
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# `auto` precision stays fp32 on CPUs with native bf16 too: the suite's exact equalities (cached = uncached,
# export = run) hold on every machine; tests/test_speed.py runs the bf16 CPU path on purpose
os.environ.setdefault("TUNEBENCH_CPU_BF16", "0")

from pg_server import postgres_url  # noqa: E402, F401  (a throwaway PostgreSQL server, for the worker tests)

import tunebench  # noqa: E402
from tunebench.store import RunStore  # noqa: E402
from tunebench.strategies import STRATEGIES  # noqa: E402
from tunebench.tasks import TASKS, get_task  # noqa: E402
from tunebench.testing import FILLER, NEGATIVE, POSITIVE, make_rows, write_tsv  # noqa: E402, F401
from tunebench.testing import make_tiny_bert as make_tiny_model  # noqa: E402

SHARED_DIR = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> str:
    return str(make_tiny_model(tmp_path_factory.mktemp("tiny-bert")))


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("tiny-data")
    return {
        "train": str(write_tsv(root / "train.tsv", make_rows(96, 1))),
        "dev": str(write_tsv(root / "dev.tsv", make_rows(48, 2))),
        "test": str(write_tsv(root / "test.tsv", make_rows(48, 3))),
    }


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DIR / "sst2").is_dir():
        pytest.skip("../shared/data is not present")
    return SHARED_DIR


# -- every task's tiny fixture and ladder (tests/test_common.py and the task tests share them) ----------

FIXTURES = Path(tempfile.mkdtemp(prefix="tunebench-common-"))


def _tiny_module(task_name: str):
    package = TASKS.get(task_name).__module__.rsplit(".", 1)[0]
    try:
        return importlib.import_module(f"{package}.tiny")
    except ModuleNotFoundError:
        pytest.fail(f"task {task_name}: no fixture factory; add {package}/tiny.py with tiny(root) -> Tiny")


def fixture_names() -> list[str]:
    """Every task's tiny fixture, then the variants its tiny.py offers (`VARIANTS`: name -> factory),
    named "task[variant]": text classification with feature columns is "text-classification[columns]"."""
    names = list(TASKS.names())
    for task_name in TASKS.names():
        names += [f"{task_name}[{v}]" for v in getattr(_tiny_module(task_name), "VARIANTS", {})]
    return names


def task_of(fixture: str) -> str:
    """The task of a fixture name ("text-classification[columns]" -> "text-classification")."""
    return fixture.split("[", 1)[0]


def tiny_of(task_name: str):
    """The task's tiny fixture (or a variant, "task[variant]"), built once per test session under FIXTURES."""
    if task_name not in _TINY:
        module = _tiny_module(task_of(task_name))
        variant = task_name[len(task_of(task_name)) + 1 : -1]
        factory = module.VARIANTS[variant] if variant else module.tiny
        root = FIXTURES / task_name.replace("[", "-").rstrip("]")
        root.mkdir(parents=True, exist_ok=True)
        _TINY[task_name] = factory(root)
    return _TINY[task_name]


_TINY: dict = {}


def applicable(task_name: str) -> list[str]:
    task = get_task(task_of(task_name))
    bundle = task.load_bundle(tiny_of(task_name).data)
    return [n for n, cls in STRATEGIES.items() if task.applies(cls, bundle) is None]


def options_for(task_name: str, names) -> dict[str, dict[str, str]]:
    extra = tiny_of(task_name).options
    return {n: {**STRATEGIES.get(n).tiny_options, **extra.get(n, {})} for n in names}


def run_ladder(task_name: str, out: Path) -> list[dict]:
    tiny, names = tiny_of(task_name), applicable(task_name)
    return tunebench.compare(
        tiny.data,
        model=tiny.model,
        task=task_of(task_name),
        strategies=names,
        out=out,
        train=tiny.train,
        options=options_for(task_name, names),
        max_length=tiny.max_length,
        show=False,
    )


_LADDERS: dict = {}


def ladder(task_name: str) -> tuple[Path, dict[str, dict], list[dict]]:
    """(output folder, strategy -> run record, leaderboard rows) of the task's ladder on its tiny
    fixture (every strategy that applies), run once per test session and shared by the common suite
    and the task's own tests."""
    if task_name not in _LADDERS:
        out = FIXTURES / f"{task_name}-ladder"
        rows = run_ladder(task_name, out)
        _LADDERS[task_name] = (out, {r["strategy"]: r for r in RunStore(out).all()}, rows)
    return _LADDERS[task_name]
