"""Many workers, one comparison: processes started with the same command and storage (the output folder's
SQLite file, or a real PostgreSQL server) share the runs, each run trained exactly once; a worker killed
mid-run (kill -9) leaves its run to be retried by another; every worker writes the same leaderboard."""

from __future__ import annotations

import collections
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

import optuna
import pytest
import sqlalchemy

from tunebench.cli import main
from tunebench.store import RunStore

ENV = {
    **os.environ,
    "TUNEBENCH_CPU_BF16": "0",
    "HF_HUB_OFFLINE": "1",
    "TUNEBENCH_HEARTBEAT": "1",  # a dead worker's run is retried after 3 s
    "TUNEBENCH_POLL": "0.2",
    "OMP_NUM_THREADS": "1",
}


@pytest.fixture(params=["sqlite", "postgresql"])
def storage(request, tmp_path) -> list[str]:
    """--storage flags: none (OUT/runs.sqlite) or a throwaway PostgreSQL server's database."""
    if request.param == "sqlite":
        return []
    url = request.getfixturevalue("postgres_url")
    with optuna.storages.RDBStorage(url).engine.begin() as db:  # a fresh database per test
        db.exec_driver_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    return ["--storage", url]


def worker(argv: list[str]) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "tunebench.cli", "compare", *argv]
    return subprocess.Popen(cmd, env=ENV, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)


def tiny_argv(tiny_model, tiny_data, out, *extra) -> list[str]:
    data = ["--data", tiny_data["train"], "--dev", tiny_data["dev"], "--test", tiny_data["test"]]
    return [*data, "--model", tiny_model, "--out", str(out), "--epochs", "2", "--batch-size", "16", *extra]


def queue_trials(url: str) -> list:
    name = next(s.study_name for s in optuna.get_all_study_summaries(url) if s.study_name.endswith(":runs"))
    return optuna.load_study(study_name=name, storage=url).trials


def url_of(storage: list[str], out) -> str:
    return storage[1] if storage else f"sqlite:///{out / 'runs.sqlite'}"


def started(log: str) -> collections.Counter:
    return collections.Counter(re.findall(r"(\S+ seed \d+): running", log))


def test_two_workers_train_every_run_exactly_once(tiny_model, tiny_data, tmp_path, storage):
    argv = tiny_argv(tiny_model, tiny_data, tmp_path, "--strategies", "features", "head", "full", "lora")
    procs = [worker([*argv, "--seeds", "0", "1", *storage]) for _ in range(2)]
    logs = [p.communicate(timeout=300)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], logs
    runs = started("".join(logs))
    assert len(runs) == 8 and set(runs.values()) == {1}, runs  # 4 strategies x 2 seeds, each once
    assert all(started(log) for log in logs)  # both took work
    url = url_of(storage, tmp_path)
    done = [t.user_attrs["key"] for t in queue_trials(url) if t.state.name == "COMPLETE"]
    assert len(done) == len(set(done)) == 8
    assert {r["key"] for r in RunStore(url=url).all()} == set(done)
    board = json.loads((tmp_path / "results.json").read_text())["leaderboard"]
    assert sorted(r["strategy"] for r in board) == ["features", "full", "head", "lora"]
    assert all(r["seeds"] == 2 for r in board)


def test_a_worker_killed_mid_run_leaves_its_run_to_another(tiny_model, tiny_data, tmp_path, storage):
    slow = ["--strategies", "full", "--seeds", "0", "1", "2", "--epochs", "150", "--patience", "200"]
    argv = [*tiny_argv(tiny_model, tiny_data, tmp_path), *slow, *storage]
    victim, survivor = worker(argv), worker(argv)
    killed, deadline = None, time.monotonic() + 120
    while killed is None and time.monotonic() < deadline:
        line = victim.stderr.readline()
        if match := re.search(r"(full seed \d+): running", line):
            victim.send_signal(signal.SIGKILL)  # mid-run: no chance to clean up
            killed = match.group(1)
    assert killed, "the first worker never started a run"
    victim.wait(timeout=30)
    log = survivor.communicate(timeout=300)[1]
    assert survivor.returncode == 0, log
    assert started(log)[killed] == 1, log  # the survivor retried the dead worker's run
    url = url_of(storage, tmp_path)
    states = collections.Counter(t.state.name for t in queue_trials(url))
    assert states == {"COMPLETE": 3, "FAIL": 1}  # the dead one failed by heartbeat, its retry done
    assert [r["status"] for r in RunStore(url=url).all()] == ["ok"] * 3
    assert not list((tmp_path / "runs").glob(".*.tmp"))  # the killed run's half-written folder is gone
    assert json.loads((tmp_path / "results.json").read_text())["leaderboard"][0]["seeds"] == 3


def test_workers_flag_starts_that_many_processes_here(tiny_model, tiny_data, tmp_path, monkeypatch, capfd):
    for k, v in ENV.items():
        monkeypatch.setenv(k, v)
    argv = tiny_argv(tiny_model, tiny_data, tmp_path, "--strategies", "features", "head", "--seeds", "0", "1")
    assert main(["compare", *argv, "--workers", "2"]) == 0
    err = capfd.readouterr().err
    by_worker = {w: started("\n".join(re.findall(rf"\[{w}\] (.*)", err))) for w in ("w1", "w2")}
    assert sum(by_worker.values(), collections.Counter()) == {
        f"{s} seed {n}": 1 for s in ("features", "head") for n in (0, 1)
    }
    assert len(RunStore(tmp_path).all()) == 4


def test_workers_starting_together_create_the_run_store_once(postgres_url):
    """PostgreSQL's CREATE TABLE IF NOT EXISTS is not safe against a concurrent twin (unique violation
    in pg_type); the store takes an advisory lock around it."""
    engine = sqlalchemy.create_engine(postgres_url)
    errors = []

    def create(barrier):
        barrier.wait()
        try:
            RunStore(url=postgres_url)
        except Exception as err:  # what a worker would have died of
            errors.append(err)

    for _ in range(15):
        with engine.begin() as db:
            db.exec_driver_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
        barrier = threading.Barrier(3)
        threads = [threading.Thread(target=create, args=(barrier,)) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []
