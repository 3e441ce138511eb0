"""The real named datasets (SST-2, IMDB from ../shared/data): their sizes, load time and seeded subsamples
(slow)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tunebench.data import DataConfig, load_text_classification

REAL_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.mark.slow
@pytest.mark.parametrize(
    "name, sizes",
    [("sst2", (67349, 872, 1821)), ("imdb", (22500, 2500, 25000))],
)
def test_real_named_datasets(name, sizes, monkeypatch):
    if not (REAL_DATA / name).is_dir():
        pytest.skip(f"{REAL_DATA / name} not present")
    monkeypatch.setenv("TUNEBENCH_DATA_DIR", str(REAL_DATA))
    start = time.perf_counter()
    b = load_text_classification(DataConfig(name))
    seconds = time.perf_counter() - start
    assert (len(b.train), len(b.dev), len(b.test)) == sizes and b.label_names == ["0", "1"]
    assert seconds < 10, f"loading {name} took {seconds:.1f} s"
    small = load_text_classification(DataConfig(name, train_size=200, eval_size=100, seed=1))
    assert small.describe() == f"{name}: train 200 · dev 100 · test 100 · 2 classes"
    assert (
        small.fingerprint()
        == load_text_classification(DataConfig(name, train_size=200, eval_size=100, seed=1)).fingerprint()
    )
    assert abs(small.train.labels.count(1) - 200 * b.train.labels.count(1) / len(b.train)) <= 1
    assert os.environ["TUNEBENCH_DATA_DIR"] == str(REAL_DATA)
