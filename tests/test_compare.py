"""The main job end to end on the tiny model: run store, resume, determinism, export -> predict, CLI."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import ladder, run_ladder

import tunebench
from tunebench import comparison
from tunebench import worker as runner  # the worker loop calls runner.run_one through its own name
from tunebench.cli import main
from tunebench.data import DataConfig, load_text_classification
from tunebench.store import RunStore
from tunebench.strategies import STRATEGIES

# every registered strategy that runs on single-text classification (pair-only ones: test_pairs.py)
FAST = {"epochs": 2, "batch_size": 16}


def data_config(tiny_data) -> DataConfig:
    return DataConfig(data=tiny_data["train"], dev=tiny_data["dev"], test=tiny_data["test"])


def test_leaderboard_is_sorted_by_dev_metric():
    _, _, rows = ladder("text-classification")
    devs = [r["dev_mean"] for r in rows]
    assert devs == sorted(devs, reverse=True)


def test_resume_skips_finished_runs(monkeypatch):
    out, _, rows = ladder("text-classification")

    def boom(*a, **k):
        raise AssertionError("a finished run was repeated")

    monkeypatch.setattr(runner, "run_one", boom)
    again = run_ladder("text-classification", out)
    assert [r["dev_mean"] for r in again] == [r["dev_mean"] for r in rows]


def test_interrupted_compare_keeps_finished_runs_and_resumes(tiny_model, tiny_data, tmp_path, monkeypatch):
    real, calls = runner.run_one, []

    def interrupt_second(*args, **kwargs):
        calls.append(args[1].name)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(runner, "run_one", interrupt_second)
    with pytest.raises(KeyboardInterrupt):
        tunebench.compare(
            data_config(tiny_data),
            model=tiny_model,
            strategies=["features", "head"],
            out=tmp_path,
            show=False,
        )
    assert [r["strategy"] for r in RunStore(tmp_path).all()] == ["features"]
    assert (tmp_path / "leaderboard.csv").is_file()
    monkeypatch.setattr(runner, "run_one", real)
    calls.clear()
    rows = tunebench.compare(
        data_config(tiny_data), model=tiny_model, strategies=["features", "head"], out=tmp_path, show=False
    )
    assert {r["strategy"] for r in rows} == {"features", "head"}
    assert len(RunStore(tmp_path).all()) == 2


def test_seeds_aggregate_to_mean_and_std(tiny_model, tiny_data, tmp_path):
    rows = tunebench.compare(
        data_config(tiny_data),
        model=tiny_model,
        strategies=["head"],
        seeds=[0, 1],
        out=tmp_path,
        train=FAST,
        show=False,
    )
    (row,) = rows
    assert row["seeds"] == 2
    devs = [r["dev_metrics"]["accuracy"] for r in RunStore(tmp_path).all()]
    assert row["dev_mean"] == pytest.approx(np.mean(devs))
    assert row["dev_std"] == pytest.approx(np.std(devs, ddof=1))


def test_features_cache_is_reused(tiny_model, tiny_data, tmp_path):
    tunebench.compare(
        data_config(tiny_data), model=tiny_model, strategies=["features"], out=tmp_path, show=False
    )
    files = sorted((tmp_path / "cache" / "features").iterdir())
    assert len(files) == 3  # train, dev, test
    rows = tunebench.compare(
        data_config(tiny_data),
        model=tiny_model,
        strategies=["features", "head"],
        out=tmp_path,
        train=FAST,
        options={"features": {"layers": "mean-of-last-4", "classifier": "mlp"}},
        show=False,
    )
    assert sorted((tmp_path / "cache" / "features").iterdir()) == files
    rec = {r["strategy"]: r for r in RunStore(tmp_path).all() if r["settings"].get("layers") != "last"}
    assert rec["features"]["times"]["extraction"] == 0.0
    assert all(r["status"] == "ok" for r in rows)


def test_cli_compare_export_predict(tiny_model, tiny_data, tmp_path, capsys):
    out, exp, preds = tmp_path / "out", tmp_path / "exp", tmp_path / "preds.csv"
    argv = [
        "-q",
        "compare",
        "--data",
        tiny_data["train"],
        "--dev",
        tiny_data["dev"],
        "--test",
        tiny_data["test"],
        "--model",
        tiny_model,
        "--strategies",
        "features",
        "head",
        "--epochs",
        "2",
        "--out",
        str(out),
        "--export",
        str(exp),
    ]
    assert main(argv) == 0
    assert (exp / "manifest.json").is_file()
    assert main(["-q", "predict", "--model", str(exp), "--data", tiny_data["test"], "--out", str(preds)]) == 0
    lines = preds.read_text().splitlines()
    assert lines[0] == "row,label,prob_neg,prob_pos"
    assert len(lines) == 1 + len(load_text_classification(data_config(tiny_data)).test)


def test_cli_strategies_lists_the_registry(capsys):
    assert main(["strategies"]) == 0
    text = capsys.readouterr().out
    assert all(name in text for name in STRATEGIES.names())


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--strategies", "nope"], "unknown strategy 'nope'; choose from"),
        (["--opt", "lora.rank=4"], "--opt lora.rank: unknown option; lora takes its own: r, alpha"),
        (["--opt", "lora"], "--opt lora: expected STRATEGY.KEY=VALUE"),
        (["--opt", "last-k.k=x"], "--opt last-k.k=x: expected an integer"),
        (["--opt", "last-k.k=9", "--strategies", "last-k"], "last-k.k=9: the model has 2 layers"),
        (["--lr", "-1"], "--lr must be > 0"),
        (["--model", "/nonexistent/model"], "model '/nonexistent/model': no such folder"),
    ],
)
def test_cli_bad_input_gives_one_line(tiny_model, tiny_data, tmp_path, capsys, extra, message):
    argv = [
        "-q",
        "compare",
        "--data",
        tiny_data["train"],
        "--model",
        tiny_model,
        "--out",
        str(tmp_path),
        *extra,
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err
    assert len(err.splitlines()) == 1 and "Traceback" not in err


def test_cli_missing_data_file(tmp_path, capsys):
    assert main(["-q", "compare", "--data", str(tmp_path / "missing.csv")]) == 2
    assert "missing.csv" in capsys.readouterr().err


def test_predict_on_non_export_says_how_to_make_one(tmp_path, tiny_data, capsys):
    assert main(["-q", "predict", "--model", str(tmp_path), "--data", tiny_data["test"]]) == 2
    assert "not a tunebench export" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("make_out", "words"),
    [
        (lambda tmp: (tmp / "a-file").write_text("x") and tmp / "a-file", "is a file; give a folder"),
        (lambda tmp: (tmp / "f").write_text("x") and tmp / "f" / "under", "a part of this path is a file"),
    ],
    ids=["out-is-a-file", "out-under-a-file"],
)
def test_a_bad_out_folder_is_one_line_before_anything_loads(
    tiny_data, tmp_path, capsys, monkeypatch, make_out, words
):
    def no_loading(*a, **k):
        raise AssertionError("the data was read before --out was checked")

    monkeypatch.setattr(comparison, "get_task", no_loading)
    out = make_out(tmp_path)
    assert main(["compare", "--data", tiny_data["train"], "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and words in err[0] and str(out) in err[0]


def test_a_max_length_below_8_is_refused(tiny_data, tmp_path, capsys):
    assert main(["compare", "--data", tiny_data["train"], "--out", str(tmp_path), "--max-length", "-5"]) == 2
    assert "--max-length -5: must be >= 8" in capsys.readouterr().err


def test_compare_exits_non_zero_when_every_run_failed_and_says_why(
    tiny_model, tiny_data, tmp_path, capsys, monkeypatch
):
    def fail(inputs, strategy, cfg, seed, key, hooks=(), report=None):
        return {"key": key, "strategy": strategy.name, "seed": seed, "status": "error: RuntimeError: boom"}

    monkeypatch.setattr(runner, "run_one", fail)
    argv = ["compare", "--data", tiny_data["train"], "--dev", tiny_data["dev"], "--model", tiny_model]
    code = main([*argv, "--strategies", "features", "head", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 1
    assert "features: 1 failed: error: RuntimeError: boom" in err and "every run failed" in err
