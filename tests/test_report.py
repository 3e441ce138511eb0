"""Diagnostics and recommendations on synthetic records, one per rule (the HTML report, the CLI and the
browser on a real tiny compare: test_report_output.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tunebench.errors import TunebenchError
from tunebench.report.cost import FORWARD_RATE, estimate_minutes, train_rate
from tunebench.report.diagnostics import diagnose
from tunebench.report.leaderboard_checks import diagnose_leaderboard, diagnose_output
from tunebench.report.recommend import analyse, pareto_set
from tunebench.report.rules import advise
from tunebench.strategies import STRATEGIES
from tunebench.tasks import TASKS

XSS = "<script>alert(1)</script>"
CHROMIUM = Path("/usr/bin/chromium")


# -- synthetic records --------------------------------------------------------------------------------


def record(strategy="full", losses=(0.6, 0.4, 0.3), devs=(0.80, 0.84, 0.86), **over) -> dict:
    history = [
        {"epoch": i + 1, "train_loss": l, "dev": {"accuracy": d, "macro_f1": d}, "lr": [1e-4]}
        for i, (l, d) in enumerate(zip(losses, devs))
    ]
    best = max(range(len(devs)), key=lambda i: devs[i])
    r = {
        "key": f"k-{strategy}-{over.get('seed', 0)}",
        "strategy": strategy,
        "seed": 0,
        "status": "ok",
        "train_config": {"lr": 1e-4, "epochs": len(losses)},
        "max_length": 128,
        "sizes": {"train": 2000, "dev": 500, "test": 500},
        "device": "cpu",
        "newly_initialized_weights": [],
        "dev_metrics": {
            "accuracy": devs[best],
            "macro_f1": devs[best],
            "per_class_f1": {"neg": devs[best], "pos": devs[best]},
        },
        "test_metrics": {
            "accuracy": devs[best],
            "macro_f1": devs[best],
            "per_class_f1": {"neg": 0.8, "pos": 0.8},
        },
        "best_epoch": best + 1,
        "history": history,
        "trainable_params": 1000,
        "total_params": 100000,
        "wall_seconds": 10.0,
        "peak_memory_mb": 900.0,
        "times": {"extraction": 0.0, "training": 8.0, "evaluation": 2.0},
    }
    r.update(over)
    return r


def codes(warnings) -> list[str]:
    return [w.code for w in warnings]


def test_healthy_run_has_no_warnings():
    assert diagnose(record()) == []


def test_overfitting_late_drop_and_falling_tail():
    found = diagnose(record(losses=(0.6, 0.3, 0.2, 0.1), devs=(0.85, 0.88, 0.85, 0.84)))
    assert codes(found) == ["overfitting"]
    w = found[0]
    assert "0.8800" in w.message and "epoch 2" in w.message and w.fix and w.severity == "warning"
    assert (
        codes(diagnose(record(losses=(0.6, 0.5, 0.4, 0.3), devs=(0.80, 0.86, 0.855, 0.852)))) == []
    )  # drop < 0.02
    tail = record(losses=(0.6, 0.5, 0.4, 0.3, 0.2), devs=(0.80, 0.87, 0.865, 0.858, 0.853))
    assert codes(diagnose(tail)) == ["overfitting"]


def test_still_improving_when_the_epochs_ran_out():
    found = diagnose(record(losses=(0.9, 0.3, 0.2), devs=(0.495, 0.676, 0.703)))  # +4% in the last epoch
    assert codes(found) == ["still-improving"] and "--opt full.epochs=6" in found[0].fix
    assert diagnose(record(losses=(0.9, 0.3, 0.2), devs=(0.50, 0.70, 0.71))) == []  # +1.4%: levelling off
    early = record(losses=(0.9, 0.3, 0.2), devs=(0.495, 0.676, 0.703), train_config={"lr": 1e-4, "epochs": 5})
    assert diagnose(early) == []  # stopped early by patience, not by the epoch budget


def test_divergence_from_status_and_rising_loss():
    diverged = record(status="error: diverged: loss became nan at epoch 1, step 3: lower --lr")
    (w,) = diagnose(diverged)
    assert (w.code, w.severity) == ("divergence", "error") and "learning rate too high" in w.fix
    rising = diagnose(record(losses=(0.6, 0.7, 0.9), devs=(0.5, 0.5, 0.5)))
    assert "divergence" in codes(rising) and "learning rate too high" in rising[0].fix
    failed = diagnose(record(status="error: RuntimeError: boom"))
    assert codes(failed) == ["run-failed"] and "boom" in failed[0].message


def test_underfitting_and_near_chance():
    found = diagnose(record(losses=(0.693, 0.692, 0.690), devs=(0.50, 0.51, 0.505)))
    assert set(codes(found)) == {"underfitting", "near-chance"}
    chance = next(w for w in found if w.code == "near-chance")
    assert "0.5100" in chance.message and "1/2" in chance.message
    # with label counts in the record, chance is the majority share
    counted = record(devs=(0.70, 0.71, 0.72), label_counts={"dev": {"a": 360, "b": 140}})
    assert "near-chance" in codes(diagnose(counted))


def test_collapsed_predictions_from_stored_logits(tmp_path):
    from safetensors.numpy import save_file

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    logits = np.zeros((100, 2), dtype=np.float32)
    logits[:97, 1] = 1.0  # 97% predicted as class 1
    save_file({"dev": logits}, str(run_dir / "predictions.safetensors"))
    (run_dir / "manifest.json").write_text(json.dumps({"label_names": ["neg", XSS]}))
    found = diagnose(record(), run_dir)
    (w,) = [w for w in found if w.code == "collapsed-predictions"]
    assert "97.0%" in w.message and XSS in w.message  # escaping is the report's job, not the message's
    assert diagnose(record(), tmp_path / "missing") == []


def test_no_trainable_params_truncation_imbalance_random_weights():
    assert "no-trainable-params" in codes(diagnose(record(trainable_params=0)))
    trunc = diagnose(record(truncated_share=0.4))
    assert codes(trunc) == ["truncation"] and "40%" in trunc[0].message and "128" in trunc[0].message
    imbalanced = diagnose(record(label_counts={"dev": {"a": 450, "b": 50}}))
    assert "class-imbalance" in codes(imbalanced)
    uneven = record()
    uneven["dev_metrics"] = {"accuracy": 0.9, "macro_f1": 0.7, "per_class_f1": {"a": 0.95, "b": 0.45}}
    (w,) = [w for w in diagnose(uneven) if w.code == "uneven-classes"]
    assert "0.450" in w.message and "inferred" in w.message
    assert "random-weights" in codes(diagnose(record(newly_initialized_weights=["pooler.dense.weight"])))


def test_seed_variance_over_the_leaderboard():
    rows = [
        {"strategy": "lora", "dev_mean": 0.86, "dev_std": 0.015, "seeds": 3},
        {"strategy": "full", "dev_mean": 0.85, "dev_std": 0.004, "seeds": 3},
        {"strategy": "head", "dev_mean": 0.80, "dev_std": 0.002, "seeds": 3},
    ]
    (w,) = diagnose_leaderboard(rows)
    assert (
        w.code == "seed-variance" and w.strategy == "lora" and "0.0150" in w.message and "0.0100" in w.message
    )
    single = [dict(r, seeds=1, dev_std=0.0) for r in rows]
    (info,) = diagnose_leaderboard(single, n_dev=500)
    assert info.code == "single-seed" and "full" in info.message  # 0.01 < 2 x SE(0.86, 500) = 0.031


def test_shared_feature_cache_reads_the_registry():
    def run(strategy, extraction):
        return record(strategy, times={"extraction": extraction, "training": 1.0, "evaluation": 1.0})

    def cache_note(records):
        return [w for w in diagnose_output(records, []) if w.code == "shared-feature-cache"]

    cached = [n for n, c in STRATEGIES.items() if c.kind != "gradient" or c.uses_cached_features]
    trained = [n for n, c in STRATEGIES.items() if n not in cached]
    assert cached and trained
    records = [run(cached[0], 5.0), *(run(n, 0.0) for n in cached[1:] + trained), run("not-registered", 0.0)]
    (w,) = cache_note(records)
    named = w.message.split("the time of ")[1].split(" leaves out")[0].split(", ")
    assert sorted(named) == sorted(cached[1:])  # never a trained strategy, nor an unknown name
    assert cache_note([run(trained[0], 5.0), run(trained[1], 0.0)]) == []


def test_collapse_is_checked_only_for_one_class_per_example_tasks(tmp_path):
    from safetensors.numpy import save_file

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    logits = np.zeros((100, 2), dtype=np.float32)
    logits[:, 1] = 1.0
    save_file({"dev": logits}, str(run_dir / "predictions.safetensors"))
    for task, cls in [(None, None), *TASKS.items(), ("not-registered", None)]:
        r = record() if task is None else record(task=task)
        collapsed = "collapsed-predictions" in codes(diagnose(r, run_dir))
        expected = task is None or (cls is not None and not cls.regression and not cls.token_level)
        assert collapsed == expected, task


# -- recommendation ---------------------------------------------------------------------------------


def test_advice_few_labels_prefers_frozen_and_every_reason_names_an_input():
    advice = advise(50, device="cpu", budget_minutes=10)
    assert advice.try_first[0].strategy == "features"
    for pick in advice.try_first + advice.later:
        for reason in pick.reasons:
            assert reason.input in advice.inputs and str(advice.inputs[reason.input]) in (
                reason.value,
                reason.value + ".0",
            )


def test_advice_follows_task_gap_budget_and_memory():
    pair = [p.strategy for p in advise(5000, task="text-pair").try_first]
    assert "full" in pair and "features" not in pair and "head" not in pair
    large = [p.strategy for p in advise(5000, gap="large").try_first]
    assert large[0] == "full" and "features" not in large
    tight = advise(50000, device="cpu", budget_minutes=5)
    assert all(p.minutes <= 5 for p in tight.try_first) and "full" not in [
        p.strategy for p in tight.try_first
    ]
    assert any(r.input == "budget_minutes" for p in tight.later for r in p.reasons)
    none_fit = advise(100000, budget_minutes=1)
    assert [p.strategy for p in none_fit.try_first] == ["features"] and "nothing fits" in none_fit.notes[
        0
    ].text
    small_gpu = [p.strategy for p in advise(20000, device="cuda", memory_gb=0.5).try_first]
    assert "lora" in small_gpu and "full" not in small_gpu


@pytest.mark.parametrize(
    "kwargs",
    [
        {"train_size": 0},
        {"train_size": 10, "task": "nope"},
        {"train_size": 10, "gap": "huge"},
        {"train_size": 10, "budget_minutes": -1},
    ],
)
def test_advice_rejects_bad_inputs(kwargs):
    with pytest.raises(TunebenchError):
        advise(**kwargs)


def test_estimate_minutes_uses_each_strategys_train_defaults_epochs(monkeypatch):
    n, dev = 900, 200  # dev: a 10% split, at least 200
    for name, cls in STRATEGIES.items():
        rate = train_rate(name)
        if rate is None:  # one cached forward pass: no epochs
            assert estimate_minutes(name, n) == pytest.approx(((n + 2 * dev) / FORWARD_RATE + 2) / 60)
            continue
        epochs = cls.train_defaults.get("epochs", 3)
        expected = (epochs * n / rate + (epochs + 2) * dev / FORWARD_RATE) / 60
        assert estimate_minutes(name, n) == pytest.approx(expected), name
        longer = {**cls.train_defaults, "epochs": epochs + 7}
        monkeypatch.setattr(cls, "train_defaults", longer)
        assert estimate_minutes(name, n) == pytest.approx(expected + 7 * (n / rate + dev / FORWARD_RATE) / 60)
        monkeypatch.undo()


def test_pareto_and_cheapest_within_one_std():
    rows = [
        {
            "strategy": "lora",
            "dev_mean": 0.86,
            "dev_std": 0.02,
            "seeds": 3,
            "time_s": 100,
            "peak_mem_mb": 1900,
        },
        {
            "strategy": "full",
            "dev_mean": 0.85,
            "dev_std": 0.01,
            "seeds": 3,
            "time_s": 90,
            "peak_mem_mb": 1700,
        },
        {
            "strategy": "last-k",
            "dev_mean": 0.845,
            "dev_std": 0.01,
            "seeds": 3,
            "time_s": 50,
            "peak_mem_mb": 1000,
        },
        {
            "strategy": "bitfit",
            "dev_mean": 0.80,
            "dev_std": 0.01,
            "seeds": 3,
            "time_s": 95,
            "peak_mem_mb": 1200,
        },
        {"strategy": "head", "dev_mean": 0.79, "dev_std": 0.01, "seeds": 3, "time_s": 1, "peak_mem_mb": 800},
    ]
    assert pareto_set(rows) == ["lora", "full", "last-k", "head"]  # bitfit: last-k is better on all three
    a = analyse([record("lora")], rows, "accuracy")
    assert a.winner["strategy"] == "lora" and a.cheapest["strategy"] == "last-k" and a.band == 0.02
    assert "records" in a.agreement and ("agreed" in a.agreement or "disagreed" in a.agreement)
