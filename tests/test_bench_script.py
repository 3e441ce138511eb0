"""scripts/bench_ladder.py: both sides train on the peer's exact sample, and the table's arithmetic.
(The benchmark itself is not run here.)"""

from __future__ import annotations

import importlib.util
import random
from pathlib import Path

import pytest

from tunebench.data import DataConfig, load_text_classification

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "bench_ladder.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_ladder", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_prepared_train_file_is_the_peers_sample_and_tunebench_reads_it_whole(bench, shared_data, tmp_path):
    sst2 = bench.prepare_data(shared_data / "sst2", tmp_path / "data", 2000)
    # the peer's own lines: read(train.tsv.gz), then random.Random(0).sample(train, 2000)
    expected = random.Random(0).sample(bench.read_sst2(shared_data / "sst2" / "train.tsv.gz"), 2000)
    assert bench.read_sst2(sst2 / "train.tsv.gz") == expected  # same sentences, same order, same labels
    assert (sst2 / "dev.tsv").resolve() == (shared_data / "sst2" / "dev.tsv").resolve()

    # tunebench, pointed at the folder with no --train-size: every row as train, dev.tsv as dev
    bundle = load_text_classification(DataConfig(data="sst2", data_dir=str(tmp_path / "data")))
    assert bundle.train.texts == [s for s, _ in expected]
    assert [bundle.label_names[i] for i in bundle.train.labels] == [str(y) for _, y in expected]
    assert bundle.dev.texts == [s for s, _ in bench.read_sst2(shared_data / "sst2" / "dev.tsv")]
    assert len(bundle.dev) == 872


def test_table_ratio_is_peer_over_tunebench_and_total_sums_the_five(bench):
    peer = {
        name: {"wall_s": 10.0 * (i + 1), "dev_acc": 0.8, "peak_mb": 1000.0 + i}
        for i, name in enumerate(["features", "head", "last-2", "full", "lora"])
    }
    tb = {
        name: {"status": "ok", "wall_s": 5.0, "dev_acc": 0.81, "peak_mb": 900.0, "ex_per_s": 100.0}
        for name in ["features", "head", "last-k", "full", "lora", "bitfit"]
    }
    tb["bitfit"]["wall_s"] = 99.0  # no peer column: must stay out of the total
    rows = {line.split(" | ")[0].lstrip("| "): line for line in bench.format_table(peer, tb).splitlines()}
    assert rows["features"].endswith("| 2.00× |")  # 10 / 5
    assert "| 30.0 |" in rows["last-k (peer: last-2)"] and rows["last-k (peer: last-2)"].endswith("| 6.00× |")
    assert rows["bitfit"].startswith("| bitfit | — | — | — | 99.0 |") and rows["bitfit"].endswith("| — |")
    total = rows["**total** (5 with a peer)"]
    assert "| 150.0 |" in total and "| 25.0 |" in total  # 10+20+30+40+50, 5 x 5
    assert total.endswith("| 6.00× |") and "max 1,004" in total and "max 900" in total


def test_table_shows_a_missing_side_and_a_failed_run(bench):
    tb = {"full": {"status": "error: diverged: loss is nan", "wall_s": 3.0, "dev_acc": None}}
    text = bench.format_table({}, tb)
    full = next(line for line in text.splitlines() if line.startswith("| full "))
    assert "error: diverged" in full and full.endswith("| — |")
    assert text.splitlines()[-1].endswith("| — |")  # no total ratio without both sides
