"""The training loop's parts: schedules, batching, decay groups, best-epoch restore, divergence."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import tunebench
from tunebench.data import DataConfig
from tunebench.store import RunStore
from tunebench.training.batching import TensorBatches, length_grouped_order, pad_rows
from tunebench.training.config import TrainConfig
from tunebench.training.loop import fit
from tunebench.training.optim import clip_gradients, decay_groups, lr_lambda


def test_linear_schedule_warms_up_then_decays_to_zero():
    f = lr_lambda("linear", total_steps=100, warmup_ratio=0.1)
    assert f(0) == pytest.approx(0.1) and f(9) == pytest.approx(1.0)
    assert f(10) == pytest.approx(1.0) and f(55) == pytest.approx(0.5) and f(100) == 0.0


def test_slanted_triangular_matches_ulmfit():
    f = lr_lambda("slanted", total_steps=1000, warmup_ratio=0.0)
    cut = 100  # cut_frac 0.1
    assert f(0) == pytest.approx(1 / 32)  # starts at lr / ratio
    assert f(cut) == pytest.approx(1.0)  # peaks at cut
    assert f(cut // 2) == pytest.approx((1 + 0.5 * 31) / 32)
    assert f(999) < 0.05 and all(f(s) >= f(s + 1) for s in range(cut, 999))


def test_length_grouped_batches_cover_every_index_once_with_similar_lengths():
    rng = np.random.default_rng(0)
    lengths = rng.integers(5, 200, size=1000)
    batches = length_grouped_order(lengths, 16, np.random.default_rng(1))
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(1000))
    spread = np.mean([lengths[b].max() - lengths[b].min() for b in batches])
    assert spread < 30  # random batches would spread ~170 tokens


def test_dynamic_padding_pads_to_the_batch_longest_rounded_to_8_for_gpus():
    batch = pad_rows([{"input_ids": [1, 2, 3]}, {"input_ids": list(range(1, 11))}], pad_id=0, multiple=8)
    assert batch["input_ids"].shape == (2, 16)
    assert batch["attention_mask"].sum().item() == 13
    assert batch["input_ids"][0, 3:].eq(0).all()


def test_without_a_gpu_batches_are_padded_to_their_longest_row_only(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    batch = pad_rows([{"input_ids": [1, 2, 3]}, {"input_ids": list(range(1, 11))}], pad_id=0)
    assert batch["input_ids"].shape == (2, 10)


def test_no_weight_decay_on_biases_and_layernorm():
    model = nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4))
    groups = decay_groups(model.named_parameters(), 1e-3, 0.01)
    decayed = {id(p) for g in groups if g["weight_decay"] > 0 for p in g["params"]}
    assert decayed == {id(model[0].weight)}


class _Task:
    primary_metric = "accuracy"

    def loss(self, logits, labels):
        return nn.functional.cross_entropy(logits, labels)

    def metrics(self, logits, labels, names):
        return {"accuracy": float((logits.argmax(-1) == labels).mean())}


class _Head(nn.Module):
    def __init__(self):
        super().__init__()
        self.head = nn.Linear(2, 2)

    def forward(self, features):
        return self.head(features)


def test_best_epoch_is_restored_when_dev_gets_worse(monkeypatch):
    X = np.random.default_rng(0).normal(size=(64, 2)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    model = _Head()
    cfg = TrainConfig(lr=0.5, epochs=6, batch_size=8, patience=6, warmup_ratio=0.0)
    task = _Task()
    scores = iter([0.5, 0.9, 0.6, 0.6, 0.6, 0.6])
    snapshots = []

    def fake_metrics(logits, labels, names):
        snapshots.append(model.head.weight.detach().clone())
        return {"accuracy": next(scores)}

    monkeypatch.setattr(task, "metrics", fake_metrics)
    result = fit(
        model,
        decay_groups(model.named_parameters(), cfg.lr, 0.0),
        TensorBatches(X, y),
        TensorBatches(X, y),
        task,
        lambda out: task.metrics(out, y, ["a", "b"]),
        cfg,
        0,
    )
    assert result.best_epoch == 2
    assert torch.equal(model.head.weight, snapshots[1])


def test_early_stopping_after_patience_epochs(monkeypatch):
    X = np.zeros((16, 2), dtype=np.float32)
    y = np.zeros(16, dtype=int)
    task = _Task()
    monkeypatch.setattr(task, "metrics", lambda *a: {"accuracy": 0.5})
    model = _Head()
    cfg = TrainConfig(lr=1e-2, epochs=10, batch_size=8, patience=2)
    result = fit(
        model,
        decay_groups(model.named_parameters(), cfg.lr, 0.0),
        TensorBatches(X, y),
        TensorBatches(X, y),
        task,
        lambda out: task.metrics(out, y, ["a", "b"]),
        cfg,
        0,
    )
    assert len(result.history) == 3 and result.best_epoch == 1


def test_divergence_is_recorded_and_the_ladder_goes_on(tiny_model, tiny_data, tmp_path):
    data = DataConfig(data=tiny_data["train"], dev=tiny_data["dev"])
    rows = tunebench.compare(
        data,
        model=tiny_model,
        strategies=["features", "full"],
        out=tmp_path,
        options={"full": {"lr": "1e6"}},
        train={"epochs": 1},
        show=False,
    )
    status = {r["strategy"]: r["status"] for r in RunStore(tmp_path).all()}
    assert status["features"] == "ok"
    assert status["full"].startswith("error: diverged") and "lower --lr" in status["full"]
    assert [r["strategy"] for r in rows][0] == "features"


def test_per_strategy_options_override_global_training_flags():
    from tunebench.comparison import resolve_strategy

    strategy, cfg = resolve_strategy("full", {"lr": "3e-5"}, {"lr": 1e-4, "epochs": 2}, max_length=128)
    assert cfg.lr == 3e-5 and cfg.epochs == 2 and cfg.max_length == 128
    _, head_cfg = resolve_strategy("head", {}, {}, max_length=128)
    assert head_cfg.lr == 1e-3 and head_cfg.epochs == 20  # the strategy's own defaults


def test_a_strategys_own_option_wins_over_the_training_setting_of_that_name():
    """--opt lora.dropout is LoRA's dropout (it used to set the head's and leave LoRA's at its default)."""
    from tunebench.comparison import resolve_strategy

    strategy, cfg = resolve_strategy("lora", {"dropout": "0.05"}, {"dropout": 0.2}, max_length=128)
    assert strategy.dropout == 0.05 and cfg.dropout == 0.2
    _, full_cfg = resolve_strategy("full", {"dropout": "0.3"}, {}, max_length=128)
    assert full_cfg.dropout == 0.3  # strategies without a field of that name: the training setting


def test_task_schedule_raises_epochs_and_sets_rates_below_user_flags():
    """A task's schedule sits between the strategy's defaults and the user's flags: epochs and patience
    are raised to its minimum (never lowered), other fields are replaced."""
    from tunebench.comparison import resolve_strategy
    from tunebench.tasks import get_task
    from tunebench.tasks.base import Task

    class Long(Task):
        schedule = {"*": {"epochs": 10, "patience": 3}, "full": {"lr": 1e-4}}

    task = Long()
    _, full = resolve_strategy("full", {}, {}, 128, task)
    assert (full.epochs, full.patience, full.lr) == (10, 3, 1e-4)
    _, head = resolve_strategy("head", {}, {}, 128, task)
    assert (head.epochs, head.patience, head.lr) == (20, 4, 1e-3)  # already longer: kept
    _, feats = resolve_strategy("features", {}, {}, 128, task)
    assert feats.epochs == 3  # no training loop: its settings (and stored run keys) are untouched
    _, user = resolve_strategy("full", {"epochs": "4"}, {"lr": 3e-5}, 128, task)
    assert (user.epochs, user.lr) == (4, 3e-5)  # the user's flags win
    _, plain = resolve_strategy("full", {}, {}, 128, get_task("text-classification"))
    assert (plain.epochs, plain.lr) == (3, 5e-5)  # sentence classification: the published defaults


def test_rebuilt_optimizer_keeps_the_schedule_position():
    """Gradual unfreezing rebuilds the optimiser each epoch; the LR must continue, not restart warmup."""
    model = _Head()
    X = np.random.default_rng(0).normal(size=(32, 2)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    cfg = TrainConfig(lr=1e-2, epochs=3, batch_size=8, patience=3, warmup_ratio=0.25)

    def hook(m, epoch):
        return decay_groups(m.named_parameters(), cfg.lr, 0.0) if epoch > 0 else None

    result = fit(
        model,
        decay_groups(model.named_parameters(), cfg.lr, 0.0),
        TensorBatches(X, y),
        TensorBatches(X, y),
        _Task(),
        lambda out: _Task().metrics(out, y, ["a", "b"]),
        cfg,
        0,
        hook,
    )
    rates = [h["lr"][0] for h in result.history]
    f = lr_lambda("linear", 12, 0.25)
    assert rates == pytest.approx([1e-2 * f(4), 1e-2 * f(8), 1e-2 * f(12)])


@pytest.mark.parametrize("scale", [0.01, 100.0])  # gradients under the limit, and over it
def test_gradient_clipping_is_torchs_bit_for_bit(scale):
    gen = torch.Generator().manual_seed(0)
    ours = [nn.Parameter(torch.randn(n, 7, generator=gen)) for n in (3, 50, 1)]
    theirs = [nn.Parameter(p.detach().clone()) for p in ours]
    for a, b in zip(ours, theirs):
        a.grad = torch.randn(a.shape, generator=gen) * scale
        b.grad = a.grad.clone()
    before = float(torch.linalg.vector_norm(torch.cat([p.grad.flatten() for p in ours])))
    clip_gradients(ours, 1.0, torch.device("cpu"))
    torch.nn.utils.clip_grad_norm_(theirs, 1.0)
    for a, b in zip(ours, theirs):
        assert torch.equal(a.grad, b.grad)
    total = torch.linalg.vector_norm(torch.cat([p.grad.flatten() for p in ours]))
    assert float(total) == pytest.approx(min(before, 1.0), rel=1e-5)  # scaled down only when over
