"""--search on the tiny model: trials on Optuna, the default first, selection on dev only, the best
configuration on every seed, pruning, resuming an interrupted search, and each bad input's message."""

from __future__ import annotations

import json
from dataclasses import fields

import optuna
import pytest

import tunebench
from tunebench import worker
from tunebench.cli import main
from tunebench.data import DataConfig
from tunebench.errors import TunebenchError
from tunebench.runner import RunInputs, run_one
from tunebench.store import RunStore
from tunebench.strategies import STRATEGIES
from tunebench.tasks import get_task
from tunebench.training.config import TrainConfig

FAST = {"epochs": 2, "batch_size": 16}


def data_config(tiny_data) -> DataConfig:
    return DataConfig(data=tiny_data["train"], dev=tiny_data["dev"], test=tiny_data["test"])


def searched(tiny_model, tiny_data, out, **kw):
    kw = {"strategies": ["features", "lora"], "search": 3, "seeds": [0, 1], "train": FAST, **kw}
    return tunebench.compare(data_config(tiny_data), model=tiny_model, out=out, show=False, **kw)


@pytest.mark.parametrize("name", STRATEGIES.names())
def test_every_search_space_holds_the_defaults_and_names_real_settings(name):
    cls = STRATEGIES.get(name)
    strategy, cfg = cls(), TrainConfig().replace(**cls.train_defaults)
    space = strategy.search_space(cfg, num_layers=6)
    own = {f.name for f in fields(cls)} | {f.name for f in fields(TrainConfig)}
    if cls.kind == "gradient":
        assert "lr" in space and space["lr"][0] == "log"
    for key, (kind, *spec) in space.items():
        assert key in own
        value = getattr(strategy, key, getattr(cfg, key, None))
        if kind == "choice":
            assert value in spec[0]
        else:
            assert spec[0] <= value <= spec[1], (key, value, spec)


def test_search_runs_n_trials_default_first_then_the_best_on_every_seed(tiny_model, tiny_data, tmp_path):
    rows = searched(tiny_model, tiny_data, tmp_path)
    lora = next(r for r in rows if r["strategy"] == "lora")
    assert lora["trials"] == 3 and lora["seeds"] == 2
    assert next(r for r in rows if r["strategy"] == "features")["trials"] is None  # C is its own search

    results = json.loads((tmp_path / "results.json").read_text())
    history = results["search"]["lora"]
    assert [t["number"] for t in history] == [0, 1, 2]
    assert history[0]["default"] and history[0]["params"] == {"lr": 1e-3, "epochs": 2, "r": 8, "alpha": 16}
    best = max((t for t in history if t["state"] == "complete"), key=lambda t: (t["value"], -t["number"]))

    records = RunStore(tmp_path).all()
    trials = [r for r in records if r["strategy"] == "lora" and "test_metrics" not in r]
    finals = [r for r in results["runs"] if r["strategy"] == "lora"]
    assert len(trials) == 3  # search trials: scored on dev only, test never seen
    assert sorted(r["seed"] for r in finals) == [0, 1]
    for r in finals:  # the best trial's configuration, now scored on test too
        assert r["settings"]["r"] == best["params"]["r"] and r["settings"]["alpha"] == best["params"]["alpha"]
        assert r["train_config"]["lr"] == pytest.approx(best["params"]["lr"])
        assert "test_metrics" in r
    seed0 = next(r for r in finals if r["seed"] == 0)
    assert seed0["dev_metrics"]["accuracy"] == pytest.approx(best["value"])  # same run, deterministic


def test_a_finished_search_is_never_repeated(tiny_model, tiny_data, tmp_path, monkeypatch):
    rows = searched(tiny_model, tiny_data, tmp_path)

    def boom(*a, **k):
        raise AssertionError("a finished trial was trained again")

    monkeypatch.setattr(worker, "run_one", boom)
    again = searched(tiny_model, tiny_data, tmp_path)
    assert [(r["strategy"], r["dev_mean"], r["trials"]) for r in again] == [
        (r["strategy"], r["dev_mean"], r["trials"]) for r in rows
    ]


def test_an_interrupted_search_resumes_where_it_stopped(tiny_model, tiny_data, tmp_path, monkeypatch):
    real, calls = worker.run_one, []

    def interrupt_third(*args, **kwargs):
        calls.append(args[4])
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(worker, "run_one", interrupt_third)
    with pytest.raises(KeyboardInterrupt):
        searched(tiny_model, tiny_data, tmp_path, strategies=["lora"], seeds=[0])
    monkeypatch.setattr(worker, "run_one", lambda *a, **k: calls.append(a[4]) or real(*a, **k))
    rows = searched(tiny_model, tiny_data, tmp_path, strategies=["lora"], seeds=[0])
    assert rows[0]["trials"] == 3
    # the interrupted trial runs again with the same parameters; nothing finished runs twice
    assert calls[3] == calls[2] and len(set(calls)) == len(calls) - 1 == 4  # 3 trials + the final run


def test_search_budget_stops_asking_for_trials(tiny_model, tiny_data, tmp_path):
    rows = searched(
        tiny_model, tiny_data, tmp_path, strategies=["lora"], seeds=[0], search=None, search_budget=1e-6
    )
    assert rows[0]["trials"] == 1  # the default configuration, then the budget is spent


def test_a_pruned_run_is_recorded_with_its_epochs_and_leaves_no_artifact(tiny_model, tiny_data, tmp_path):
    task = get_task("text-classification")
    backbone = task.load_backbone(tiny_model, False, "auto")
    inputs = RunInputs(task, backbone, task.load(data_config(tiny_data)), tmp_path, 64).dev_only()
    asked = []
    record = run_one(
        inputs,
        STRATEGIES.get("full")(),
        TrainConfig(epochs=3, batch_size=16),
        0,
        "k",
        report=lambda epoch, score: asked.append((epoch, score)) or epoch == 2,
    )
    assert record["status"] == "pruned" and record["best_epoch"] == 2
    assert [e for e, _ in asked] == [1, 2] and len(record["history"]) == 2
    assert not (tmp_path / "runs" / "k").exists()
    assert not list((tmp_path / "runs").glob(".k.*"))  # nor a half-written one
    assert "test" not in inputs.splits


def test_search_trials_report_every_epoch_and_pruned_ones_are_counted(
    tiny_model, tiny_data, tmp_path, monkeypatch
):
    rows = searched(tiny_model, tiny_data, tmp_path, strategies=["full"], seeds=[0], search=3)
    url = f"sqlite:///{tmp_path / 'runs.sqlite'}"
    name = next(s.study_name for s in optuna.get_all_study_summaries(url) if ":search:full:" in s.study_name)
    for trial in optuna.load_study(study_name=name, storage=url).trials:  # the pruner saw every epoch
        steps = sorted(trial.intermediate_values)  # every epoch but the last (patience may end it sooner)
        assert steps == list(range(1, len(steps) + 1)) and len(steps) < trial.params["epochs"]

    # a pruner that stops every trial after its first epoch: each is recorded as pruned, none is final
    monkeypatch.setattr(worker, "_pruner", lambda name: optuna.pruners.ThresholdPruner(lower=1.01))
    three = {"epochs": 3, "batch_size": 16}  # searched epochs 2-5: every trial reaches a report
    rows = searched(
        tiny_model, tiny_data, tmp_path / "all-pruned", strategies=["full"], seeds=[0], search=3, train=three
    )
    history = json.loads((tmp_path / "all-pruned" / "results.json").read_text())["search"]["full"]
    assert [(t["state"], t["epochs"]) for t in history] == [("pruned", 1)] * 3
    assert rows[0]["trials"] == 3 and rows[0]["seeds"] == 0 and "pruned" in rows[0]["status"]


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--search", "0"], "--search 0: give the number of trials per strategy"),
        (["--search-budget", "-1"], "--search-budget -1.0: give minutes"),
        (["--workers", "0"], "--workers 0: must be >= 1"),
        (["--storage", "mysql://u@h/db"], "--storage mysql://u@h/db: mysql is not supported"),
        (["--storage", "not a url"], "--storage not a url: not a database URL"),
        (
            ["--storage", "postgresql://u@127.0.0.1:1/db"],
            "--storage postgresql://u@127.0.0.1:1/db: cannot connect",
        ),
    ],
    ids=["search-0", "budget-negative", "workers-0", "mysql", "not-a-url", "no-server"],
)
def test_bad_search_and_storage_flags_are_one_line(tiny_model, tiny_data, tmp_path, capsys, argv, words):
    code = main(
        ["compare", "--data", tiny_data["train"], "--model", tiny_model, "--out", str(tmp_path), *argv]
    )
    err = capsys.readouterr().err
    assert code == 2 and words in err and len(err.strip().splitlines()) == 1, err


def test_device_accepts_one_gpu_of_several():
    assert TrainConfig(device="cuda:1").device == "cuda:1"
    with pytest.raises(TunebenchError, match="--device cuda:x: auto, cpu, cuda or cuda:N"):
        TrainConfig(device="cuda:x")


def test_trials_are_optuna_trials_in_the_output_folder(tiny_model, tiny_data, tmp_path):
    searched(tiny_model, tiny_data, tmp_path, strategies=["lora"], seeds=[0])
    url = f"sqlite:///{tmp_path / 'runs.sqlite'}"
    names = [s.study_name for s in optuna.get_all_study_summaries(url)]
    assert any(n.endswith(":runs") for n in names) and any(":search:lora:" in n for n in names)
    search = optuna.load_study(study_name=next(n for n in names if ":search:lora:" in n), storage=url)
    assert len(search.trials) == 3 and search.best_trial.user_attrs["key"]
