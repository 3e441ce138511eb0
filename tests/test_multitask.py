"""Multi-task (compare --tasks, the `multitask` strategy): batches mixed across tasks as documented, the
loss weighted equally or by uncertainty, one shared body with a head per task beside the single-task
runs on the same budget, an export holding every head that `predict --task` reads, one-line errors."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
import torch
from conftest import tiny_of

import tunebench
from tunebench.cli import main
from tunebench.errors import TunebenchError
from tunebench.model import count_parameters
from tunebench.prediction import Predictor, predict
from tunebench.strategies import STRATEGIES
from tunebench.tasks import get_task
from tunebench.tasks.mixture import Mixture
from tunebench.training.batching import TensorBatches
from tunebench.training.mixing import MixedBatches

TASKS = ("text-classification", "text-regression", "token-classification")
NAMES = {"text-classification": "reviews", "text-regression": "similarity", "token-classification": "ner"}


def entries(names=TASKS) -> list[dict]:
    out = []
    for task in names:
        data = tiny_of(task).data
        entry = {"data": data.data, "dev": data.dev, "test": data.test, "task": task, "name": NAMES[task]}
        out += [
            {
                **entry,
                **{
                    k: getattr(data, k)
                    for k in ("text_col", "label_col", "text_pair_col")
                    if getattr(data, k)
                },
            }
        ]
    return out


def parts(*sizes):
    return [TensorBatches(np.zeros((n, 2)), np.zeros(n, dtype=np.int64)) for n in sizes]


def test_proportional_mixing_is_every_tasks_epoch_shuffled_together():
    mixed = MixedBatches(parts(40, 10, 25), "proportional")
    batches = list(mixed.train_batches(8, seed=0))
    counts = Counter(int(b["task"]) for b in batches)
    assert counts == {0: 5, 1: 2, 2: 4} and len(batches) == mixed.batches_per_epoch(8) == 11
    rows = Counter()
    for b in batches:
        rows[int(b["task"])] += len(b["features"])
    assert rows == {0: 40, 1: 10, 2: 25}  # each row of each task once
    again = [int(b["task"]) for b in mixed.train_batches(8, seed=0)]
    assert (
        again == [int(b["task"]) for b in batches] != [int(b["task"]) for b in mixed.train_batches(8, seed=1)]
    )


def test_temperature_mixing_draws_tasks_by_size_to_the_one_over_t():
    mixed = MixedBatches(parts(900, 100), "temperature", temperature=2.0)
    np.testing.assert_allclose(mixed.shares(), [30 / 40, 10 / 40])  # sqrt(900) : sqrt(100)
    draws = Counter(int(b["task"]) for seed in range(20) for b in mixed.train_batches(10, seed))
    assert abs(draws[1] / sum(draws.values()) - 0.25) < 0.03  # 100 batches a seed, 2,000 draws


def test_uncertainty_weighting_is_kendalls_and_learns_the_log_variances():
    task = get_task("text-classification")
    logits, labels = torch.randn(4, 2), torch.tensor([0, 1, 1, 0])
    plain = task.loss(logits, labels)
    assert Mixture([task, task]).loss(logits, labels, task=torch.tensor(1)) == plain
    log_vars = torch.nn.Parameter(torch.tensor([0.0, 0.5]))
    weighted = Mixture([task, task], log_vars).loss(logits, labels, task=torch.tensor(1))
    assert torch.isclose(weighted, plain * torch.exp(torch.tensor(-0.5)) + 0.5)
    weighted.backward()
    assert log_vars.grad[1] != 0 and log_vars.grad[0] == 0


@pytest.fixture(scope="module")
def three(tmp_path_factory):
    """Text classification, regression (pairs) and NER on the tiny model: full per task and multitask."""
    out = tmp_path_factory.mktemp("three")
    train = {"epochs": 2, "batch_size": 16}
    kw = {"model": tiny_of(TASKS[0]).model, "out": out / "out", "train": train, "show": False}
    rows = tunebench.compare_tasks(entries(), strategies=["full", "multitask"], export=out / "export", **kw)
    return out, rows, kw


def test_one_body_and_a_head_per_task_beside_one_model_per_task_on_the_same_budget(three):
    out, rows, _ = three
    single, multi = rows
    assert single["strategy"] == "full (one model per task)" and multi["strategy"].startswith(
        "multitask (body full"
    )
    assert single["status"] == multi["status"] == "ok" and set(multi["tasks"]) == set(NAMES.values())
    assert multi["steps"] == single["steps"]  # the same epochs over the same batches
    record = json.loads((out / "out" / "tasks.json").read_text())["multitask_runs"][0]
    assert set(record["task_metrics"]) == set(NAMES.values())
    backbone = tiny_backbone_params()
    heads = record["trainable_params"] - backbone
    assert 0 < heads < backbone  # one body counted once, three small heads
    assert single["trainable_params"] == 3 * backbone + heads  # three bodies
    assert (out / "out" / "multitask" / "runs" / record["key"] / "backbone").is_dir()


def tiny_backbone_params() -> int:
    task = get_task(TASKS[0])
    return sum(p.numel() for p in task.load_backbone(tiny_of(TASKS[0]).model).model.parameters())


def test_the_export_holds_every_head_and_predict_task_picks_one(three, tmp_path):
    out, _, _ = three
    record = json.loads((out / "out" / "tasks.json").read_text())["multitask_runs"][0]
    for name, task_name in zip(record["tasks"], TASKS):
        task = get_task(task_name)
        bundle = task.load_bundle(
            tunebench.data.DataConfig(
                **{k: v for k, v in entries()[TASKS.index(task_name)].items() if k not in ("task", "name")}
            )
        )
        outputs, enc, _ = Predictor(out / "export", name).outputs(bundle.test)
        expected = record["task_metrics"][name]["test_metrics"]
        assert task.score(outputs, enc, bundle.test, bundle.label_names) == expected, name
    rows = predict(out / "export", tiny_of(TASKS[0]).data.test, task="reviews")
    assert {"label", "prob_neg", "prob_pos"} <= set(rows[0])


def test_a_rerun_reuses_the_stored_run_and_a_fresh_one_gives_the_same_metrics(three, tmp_path):
    out, rows, kw = three
    again = tunebench.compare_tasks(entries(), strategies=["multitask"], **kw)
    assert again[0]["tasks"] == rows[1]["tasks"] and again[0]["seconds"] == rows[1]["seconds"]
    fresh = tunebench.compare_tasks(entries(), strategies=["multitask"], **{**kw, "out": tmp_path / "fresh"})
    assert fresh[0]["tasks"] == rows[1]["tasks"]


@pytest.mark.parametrize(
    "body", [n for n, c in STRATEGIES.items() if c.kind == "gradient" and not c.from_scratch]
)
def test_every_gradient_strategy_trains_a_shared_body_that_exports_and_predicts(body, tmp_path):
    options = {"multitask": {"body": body}, body: STRATEGIES.get(body).tiny_options}
    kw = {"model": tiny_of(TASKS[0]).model, "out": tmp_path / "out", "show": False}
    rows = tunebench.compare_tasks(
        entries(TASKS[:2]),
        strategies=["multitask"],
        options=options,
        train={"epochs": 3, "batch_size": 16, "lr": 1e-3},
        export=tmp_path / "export",
        **kw,
    )
    record = json.loads((tmp_path / "out" / "tasks.json").read_text())["multitask_runs"][0]
    assert rows[0]["status"] == "ok", record.get("traceback", record["status"])
    losses = [h["train_loss"] for h in record["history"]]
    assert losses[-1] < losses[0], (body, losses)
    predictor = Predictor(tmp_path / "export", "similarity")
    bundle = get_task(TASKS[1]).load_bundle(tiny_of(TASKS[1]).data)
    outputs, enc, _ = predictor.outputs(bundle.test)
    expected = record["task_metrics"]["similarity"]["test_metrics"]
    got = get_task(TASKS[1]).score(outputs, enc, bundle.test, bundle.label_names)
    assert got == pytest.approx(expected, abs=1e-6), body
    trainable, _ = count_parameters(predictor.model)
    assert trainable > 0


def test_uncertainty_weighting_and_temperature_sampling_run_and_are_recorded(tmp_path):
    options = {"multitask": {"weighting": "uncertainty", "sampling": "temperature", "temperature": "3"}}
    kw = {"model": tiny_of(TASKS[0]).model, "out": tmp_path / "out", "show": False}
    rows = tunebench.compare_tasks(
        entries(TASKS[:2]), strategies=["multitask"], options=options, train={"epochs": 2}, **kw
    )
    record = json.loads((tmp_path / "out" / "tasks.json").read_text())["multitask_runs"][0]
    assert rows[0]["status"] == "ok" and "uncertainty" in rows[0]["strategy"]
    assert record["settings"]["temperature"] == 3.0 and sum(record["task_shares"].values()) == pytest.approx(
        1
    )


# -- bad input: one line each -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tasks", "words"),
    [
        ("sst2", "--tasks: give at least two datasets"),
        ("sst2,no-such-set", "unknown dataset 'no-such-set'"),
        (
            "sst2,hymenoptera",
            "--tasks: hymenoptera is an image-classification dataset; the tasks share one text",
        ),
        ("sst2,sst2", "--tasks: two datasets are named 'sst2'"),
    ],
    ids=["one", "unknown", "image", "twice"],
)
def test_bad_task_lists_are_one_line(tasks, words, shared_data, tmp_path, capsys):
    argv = ["compare", "--tasks", tasks, "--data-dir", str(shared_data), "--out", str(tmp_path / "out")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert words in err and len(err.splitlines()) == 1, err


def test_compare_needs_data_or_tasks_and_not_both(tmp_path, capsys):
    assert main(["compare", "--out", str(tmp_path / "o")]) == 2
    assert "give --data FILE_OR_NAME, or --tasks A,B,C" in capsys.readouterr().err
    assert main(["compare", "--data", "sst2", "--tasks", "sst2,stsb", "--out", str(tmp_path / "o")]) == 2
    assert "--data and --tasks: give one of them" in capsys.readouterr().err


def test_predict_on_a_multitask_export_asks_which_task(three, tmp_path, capsys):
    out, _, _ = three
    path = tiny_of(TASKS[0]).data.test
    code = main(["predict", "--model", str(out / "export"), "--data", path, "--out", str(tmp_path / "p.csv")])
    err = capsys.readouterr().err.strip()
    assert (
        code == 2
        and "this export holds several tasks (reviews, similarity, ner); choose one with --task NAME" in err
    )
    assert len(err.splitlines()) == 1
    with pytest.raises(TunebenchError, match="no task 'sentiment' in this export"):
        Predictor(out / "export", "sentiment")


def test_a_body_that_cannot_train_a_shared_model_is_refused():
    with pytest.raises(TunebenchError, match="--opt multitask.body=features: the body trains as a gradient"):
        STRATEGIES.get("multitask").from_options({"body": "features"})
    with pytest.raises(
        TunebenchError, match="--opt multitask.sampling=random: choose proportional or temperature"
    ):
        STRATEGIES.get("multitask").from_options({"sampling": "random"})
