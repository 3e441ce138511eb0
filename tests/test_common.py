"""The common suite (scikit-learn's check_estimator, timm's registry tests): every registered task x
every strategy that applies to it, on the task's tiny fixture (`tasks/<name>/tiny.py`) and its variants
(`VARIANTS` there: text classification with feature columns). A new strategy file or task folder is
enrolled here with no edit; one that lacks what the suite needs (a tiny fixture, a trainable-parameter
formula) fails loudly.

Each case checks: the ladder run finishes with the task's metrics; export -> predict gives the run's
own outputs; the same seed gives the same metrics; the trainable-parameter count is the strategy's
declared formula; frozen weights stay bit-identical while trainable ones move and the loss falls; bad
--opt values are refused with one line; with --ewc and --replay (against forgetting) every strategy that
trains the backbone trains, exports and predicts, the others ignore or refuse them."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from conftest import (
    FIXTURES,
    applicable,
    fixture_names,
    ladder,
    make_rows,
    options_for,
    run_ladder,
    task_of,
    tiny_of,
)
from safetensors.numpy import load_file
from transformers import PreTrainedTokenizerBase

import tunebench
from tunebench.errors import TunebenchError
from tunebench.mitigation import forgetting_terms, trains_body
from tunebench.model import TaskModel, count_parameters
from tunebench.prediction import Predictor
from tunebench.runner import RunInputs, build_model
from tunebench.store import RunStore
from tunebench.strategies import STRATEGIES
from tunebench.tasks import get_task
from tunebench.training.config import TrainConfig
from tunebench.training.loop import fit

CASES = [(t, s) for t in fixture_names() for s in applicable(t)]
GRADIENT_CASES = [(t, s) for t, s in CASES if STRATEGIES.get(s).kind == "gradient"]


def case_id(case) -> str:
    return f"{case[0]}:{case[1]}"


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_run_finishes_with_the_tasks_metrics(case):
    task_name, name = case
    out, records, _ = ladder(task_name)
    record = records[name]
    assert record["status"] == "ok", record.get("traceback", record["status"])
    metric = get_task(task_of(task_name)).primary_metric
    for split in ("dev", "test"):
        assert isinstance(record[f"{split}_metrics"][metric], float)
    assert (out / "runs" / record["key"] / "manifest.json").is_file()
    assert set(record["times"]) == {"extraction", "training", "evaluation"}
    assert record["peak_memory_mb"] > 0 and record["artifact_bytes"] > 0
    assert 0 < record["trainable_params"] <= record["total_params"] and record["versions"]["torch"]
    if STRATEGIES.get(name).kind == "gradient":  # what predicting with it costs (training/inference.py)
        assert record["inference"]["latency_ms"] > 0 and record["inference"]["examples_per_second"] > 0
    for name in ("leaderboard.csv", "leaderboard.md", "results.json"):
        assert (out / name).is_file()


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_export_predicts_what_the_run_measured(case):
    """The export's outputs on the test split score exactly the run's test metrics, and equal the run's
    own outputs (head-only on token tasks trains on cached float16 word states, and is scored with the
    whole model, as its export predicts)."""
    task_name, name = case
    out, records, _ = ladder(task_name)
    run_dir = out / "runs" / records[name]["key"]
    task = get_task(task_of(task_name))
    bundle = task.load_bundle(tiny_of(task_name).data)
    predictor = Predictor(run_dir)
    outputs, enc, per_example = predictor.outputs(bundle.test)
    if per_example:
        enc = replace(enc, groups=None)
    assert task.score(outputs, enc, bundle.test, bundle.label_names) == records[name]["test_metrics"]
    if isinstance(outputs, list):  # per-row outputs of different lengths: stored end to end
        rows = predictor.predict_logits(bundle.test)  # the same rows, not pooled across windows
        assert len(rows) == len(outputs) and all(np.array_equal(a, b) for a, b in zip(rows, outputs))
        outputs = np.concatenate(outputs)
    saved = load_file(str(run_dir / "predictions.safetensors"))["test"]
    np.testing.assert_allclose(outputs, saved, rtol=0, atol=1e-5)
    if STRATEGIES.get(name).kind == "estimator":  # what the run reported is what the export holds
        assert predictor.estimator.n_trainable_ == records[name]["trainable_params"]


@pytest.mark.parametrize("task_name", fixture_names())
def test_same_seed_same_metrics(task_name, tmp_path):
    _, first, _ = ladder(task_name)
    run_ladder(task_name, tmp_path)
    again = {r["strategy"]: r for r in RunStore(tmp_path).all()}
    for name, record in first.items():
        assert again[name]["dev_metrics"] == record["dev_metrics"], name
        assert again[name]["test_metrics"] == record["test_metrics"], name
        assert again[name].get("history") == record.get("history"), name


def tiny_model(task_name: str, name: str):
    """(strategy, inputs, prepared model, formula) for one gradient case."""
    tiny, task = tiny_of(task_name), get_task(task_of(task_name))
    strategy = STRATEGIES.get(name).from_options(options_for(task_name, [name])[name])
    backbone = task.load_backbone(tiny.model)
    limit = min(tiny.max_length or backbone.max_length, backbone.max_length)
    inputs = RunInputs(task, backbone, task.load_bundle(tiny.data), None, limit)
    cfg = TrainConfig().replace(**task.train_defaults(name, strategy.train_defaults))
    torch.manual_seed(0)
    head = inputs.head(backbone.pooling, 0.0)
    module = backbone.random_model(0) if strategy.from_scratch else backbone.fresh_model()
    formula = strategy.trainable_formula(TaskModel(module, head))
    return strategy, inputs, cfg, build_model(inputs, strategy, cfg.replace(dropout=0.0), 0), formula


def _fit(strategy, inputs, cfg, model, extra_loss=None):
    """The training loop on the case's tiny train/dev splits, seed 0."""
    data = {s: inputs.task.batches(inputs.enc[s], inputs.backbone) for s in ("train", "dev")}
    return fit(
        model,
        strategy.param_groups(model, cfg),
        data["train"],
        data["dev"],
        inputs.task,
        lambda outputs: inputs.score("dev", outputs),
        cfg,
        0,
        strategy.epoch_hook(cfg),
        description=strategy.name,
        extra_loss=extra_loss,
    )


@pytest.mark.parametrize("case", GRADIENT_CASES, ids=case_id)
def test_trainable_parameters_are_the_declared_formula(case):
    _, _, _, model, formula = tiny_model(*case)
    trainable, total = count_parameters(model)
    assert trainable == formula
    assert 0 < trainable <= total


@pytest.mark.parametrize("case", GRADIENT_CASES, ids=case_id)
def test_frozen_weights_stay_trained_ones_move_and_loss_falls(case):
    task_name, name = case
    strategy, inputs, cfg, model, _ = tiny_model(task_name, name)
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    trained = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    # Few steps on a tiny random model: 10x each strategy's rate (at most 1e-2) shows the trend.
    steps = tiny_of(task_name).fit
    cfg = cfg.replace(
        **steps, patience=steps["epochs"], lr=min(10 * cfg.lr, 1e-2), dropout=0.0, warmup_ratio=0.0
    )
    result = _fit(strategy, inputs, cfg, model)
    after = dict(model.named_parameters())
    if strategy.epoch_hook(cfg) is None:  # gradual unfreezes more each epoch: nothing stays frozen
        changed = [n for n, before in frozen.items() if not torch.equal(after[n], before)]
        assert changed == [], f"{name}: frozen weights changed"
    assert any(not torch.equal(after[n], before) for n, before in trained.items()), f"{name}: nothing moved"
    losses = [h["train_loss"] for h in result.history]
    assert min(losses[-2:]) < losses[0] * 0.95, f"{name} on {task_name}: train loss {losses}"


@pytest.mark.parametrize("case", GRADIENT_CASES, ids=case_id)
def test_l2sp_trains_every_strategy_and_pays_for_moving(case):
    """One epoch with the L2-SP penalty (--l2sp) on every strategy: it trains (a finite loss) and the
    weights the strategy freezes stay frozen (the penalty adds no gradient to them)."""
    task_name, name = case
    strategy, inputs, cfg, model, _ = tiny_model(task_name, name)
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    cfg = cfg.replace(epochs=1, patience=1, l2sp=1.0, dropout=0.0)
    result = _fit(strategy, inputs, cfg, model)
    assert np.isfinite(result.history[0]["train_loss"])
    if strategy.epoch_hook(cfg) is None:
        after = dict(model.named_parameters())
        assert all(torch.equal(after[n], before) for n, before in frozen.items()), (
            f"{name}: frozen weights changed"
        )


@pytest.mark.parametrize("name", STRATEGIES.names())
def test_bad_options_are_refused_with_one_line(name):
    cls = STRATEGIES.get(name)
    with pytest.raises(TunebenchError, match=f"--opt {name}.no_such_option: unknown option") as err:
        cls.from_options({"no_such_option": "1"})
    assert "\n" not in str(err.value)
    for field, value in cls().settings().items():
        if isinstance(value, (bool, int, float)):
            with pytest.raises(TunebenchError, match=f"--opt {name}.{field}=not-a-number") as err:
                cls.from_options({field: "not-a-number"})
            assert "\n" not in str(err.value)


# -- against forgetting: --ewc and --replay on every strategy ---------------------------------------

CORPUS = FIXTURES / "original-domain.txt"  # the replay (and reference) corpus of the text fixtures


def corpus() -> str:
    if not CORPUS.is_file():
        CORPUS.write_text("\n".join(text for text, _ in make_rows(64, 11)) + "\n")
    return str(CORPUS)


def reads_text(backbone) -> bool:
    """Replay texts need a text backbone; an image backbone takes EWC alone (its Fisher on the images)."""
    return isinstance(getattr(backbone, "tokenizer", None), PreTrainedTokenizerBase)


@pytest.mark.parametrize("case", GRADIENT_CASES, ids=case_id)
def test_ewc_and_replay_train_every_strategy(case):
    """One epoch with --ewc and --replay on every gradient strategy: it trains (a finite loss) and the
    weights the strategy freezes stay frozen; a strategy that trains no backbone weight ignores them,
    one that starts from random weights refuses them."""
    task_name, name = case
    strategy, inputs, cfg, model, _ = tiny_model(task_name, name)
    replay = corpus() if reads_text(inputs.backbone) else ""
    cfg = cfg.replace(epochs=1, patience=1, ewc=1.0, replay=replay, dropout=0.0)
    if strategy.from_scratch:
        with pytest.raises(TunebenchError, match="no pre-trained weights to keep"):
            forgetting_terms(inputs, strategy, model, cfg, 0)
        return
    extra_loss, kept = forgetting_terms(inputs, strategy, model, cfg, 0)
    assert (extra_loss is not None) == trains_body(strategy) == bool(kept)
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    result = _fit(strategy, inputs, cfg, model, extra_loss)
    assert np.isfinite(result.history[0]["train_loss"])
    if strategy.epoch_hook(cfg) is None:
        after = dict(model.named_parameters())
        assert all(torch.equal(after[n], before) for n, before in frozen.items()), (
            f"{name}: frozen weights changed"
        )


MITIGATED_CASES = [
    (t, s) for t, s in GRADIENT_CASES if trains_body(STRATEGIES.get(s)) and not STRATEGIES.get(s).from_scratch
]
_MITIGATED: dict = {}


def mitigated_ladder(task_name: str) -> dict[str, dict]:
    """The fixture's ladder of the strategies that train the backbone, with --ewc and --replay (EWC
    alone on images), run once per session: strategy -> record."""
    if task_name not in _MITIGATED:
        tiny = tiny_of(task_name)
        names = [s for t, s in MITIGATED_CASES if t == task_name]
        text = reads_text(get_task(task_of(task_name)).load_backbone(tiny.model))
        out = FIXTURES / f"{task_name}-mitigated"
        rows = tunebench.compare(
            tiny.data,
            model=tiny.model,
            task=task_of(task_name),
            strategies=names,
            out=out,
            train={**tiny.train, "ewc": 1.0, **({"replay": corpus()} if text else {})},
            options=options_for(task_name, names),
            max_length=tiny.max_length,
            show=False,
        )
        _MITIGATED[task_name] = (out, {r["strategy"]: r for r in rows.records})
    return _MITIGATED[task_name]


@pytest.mark.parametrize("case", MITIGATED_CASES, ids=case_id)
def test_ewc_and_replay_runs_export_and_predict_like_the_others(case):
    task_name, name = case
    out, records = mitigated_ladder(task_name)
    record = records[name]
    assert record["status"] == "ok", record.get("traceback", record["status"])
    assert all(np.isfinite(h["train_loss"]) for h in record["history"])
    assert record["mitigation"]["ewc"]["lambda"] == 1.0
    task = get_task(task_of(task_name))
    bundle = task.load_bundle(tiny_of(task_name).data)
    outputs, enc, _ = Predictor(out / "runs" / record["key"]).outputs(bundle.test)
    assert task.score(outputs, enc, bundle.test, bundle.label_names) == record["test_metrics"]
