"""The frozen-prefix cache: last-k (and head on token tasks) train on cached hidden states of the frozen
bottom blocks, and get what the whole model would have computed."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import options_for, tiny_of

from tunebench import extract, runner
from tunebench.backbones import prefix
from tunebench.runner import RunInputs, build_model, prefix_model, run_one
from tunebench.strategies import STRATEGIES
from tunebench.tasks import get_task
from tunebench.training.config import TrainConfig
from tunebench.training.loop import predict_logits

TEXT_TASKS = ["text-classification", "text-regression", "token-classification", "question-answering"]


def setup(task_name: str, name: str, out=None):
    tiny, task = tiny_of(task_name), get_task(task_name)
    strategy = STRATEGIES.get(name).from_options(options_for(task_name, [name])[name])
    backbone = task.load_backbone(tiny.model)
    limit = min(tiny.max_length or backbone.max_length, backbone.max_length)
    inputs = RunInputs(task, backbone, task.load(tiny.data), out, limit)
    cfg = TrainConfig(epochs=2, batch_size=16).replace(**task.train_defaults(name, strategy.train_defaults))
    return strategy, inputs, cfg


@pytest.mark.parametrize("task_name", TEXT_TASKS)
def test_cached_prefix_gives_the_whole_models_logits(task_name):
    strategy, inputs, cfg = setup(task_name, "last-k")
    model = build_model(inputs, strategy, cfg, 0)
    assert model.frozen_depth == 1  # the tiny BERT has 2 blocks; last-k.k=1
    top, data = prefix_model(inputs, model, inputs.source(cfg))
    whole = inputs.task.batches(inputs.enc["dev"], inputs.backbone)
    want = predict_logits(model, whole, cfg, torch.device("cpu"))
    got = predict_logits(top, data["dev"], cfg, torch.device("cpu"))
    for w, g in zip(want, got):
        np.testing.assert_allclose(g, w, atol=1e-5)


@pytest.mark.parametrize("task_name", ["text-classification", "token-classification"])
def test_training_on_the_cache_equals_training_the_whole_model(task_name, tmp_path, monkeypatch):
    """Same seed, same batches, same dropout draws in the trained blocks: the same run either way."""
    strategy, inputs, cfg = setup(task_name, "last-k", tmp_path / "cached")
    cached = run_one(inputs, strategy, cfg, 0, "k")
    assert cached["status"] == "ok" and cached["times"]["extraction"] > 0
    monkeypatch.setattr(runner, "prefix_model", lambda *a: None)
    strategy, inputs, cfg = setup(task_name, "last-k", tmp_path / "whole")
    whole = run_one(inputs, strategy, cfg, 0, "k")
    assert whole["status"] == "ok"
    assert cached["dev_metrics"] == whole["dev_metrics"]
    for a, b in zip(cached["history"], whole["history"]):
        assert a["train_loss"] == pytest.approx(b["train_loss"], abs=1e-5)


def test_head_on_token_tasks_trains_on_cached_last_states():
    strategy, inputs, cfg = setup("token-classification", "head")
    model = build_model(inputs, strategy, cfg, 0)
    assert model.frozen_depth == 2
    top, _ = prefix_model(inputs, model, inputs.source(cfg))
    assert len(top.top.blocks) == 0
    assert all(p.requires_grad for p in top.parameters())  # only the head is left to train


def test_frozen_blocks_stay_in_eval_mode_while_the_top_trains():
    strategy, inputs, cfg = setup("text-classification", "last-k")
    model = build_model(inputs, strategy, cfg, 0).train()
    blocks = list(model.backbone.encoder.layer)
    assert not model.backbone.embeddings.training and not blocks[0].training
    assert blocks[1].training and model.head.training


def test_prefix_states_are_cached_on_disk_and_reused(tmp_path):
    _, inputs, cfg = setup("text-classification", "last-k", tmp_path)
    rows = inputs.enc["train"].rows
    source = inputs.source(cfg)
    states, offsets = source.prefix(rows, 1)
    assert source.seconds > 0 and states.dtype == np.float32
    assert offsets[-1] == sum(len(r["input_ids"]) for r in rows) == len(states)
    again = inputs.source(cfg)
    states2, _ = again.prefix(rows, 1)
    assert again.seconds == 0.0  # read from <out>/cache/prefix, not recomputed
    np.testing.assert_array_equal(states, states2)
    assert list((tmp_path / "cache" / "prefix").glob("*.npy"))


def test_large_prefix_caches_are_float16(tmp_path, monkeypatch):
    _, inputs, cfg = setup("text-classification", "last-k")
    rows = inputs.enc["dev"].rows
    exact, _ = inputs.source(cfg).prefix(rows, 1)
    monkeypatch.setattr(extract, "PREFIX_FP32_LIMIT", 0)
    small, _ = inputs.source(cfg).prefix(rows, 1)
    assert small.dtype == np.float16
    np.testing.assert_allclose(small.astype(np.float32), exact, atol=1e-2, rtol=1e-2)


def test_an_encoder_that_cannot_be_cut_runs_whole(monkeypatch):
    """A mask that does not reproduce the model's output (here: one that hides each row's first token)
    is refused, and last-k falls back to running every block each step."""
    strategy, inputs, cfg = setup("text-classification", "last-k")
    model = build_model(inputs, strategy, cfg, 0)

    def hide_first(hidden, mask):
        bias = torch.zeros((len(mask), 1, 1, mask.shape[1]))
        bias[..., 0] = -1e4
        return bias

    monkeypatch.setattr(prefix, "_mask_builder", lambda base: [hide_first])
    assert prefix_model(inputs, model, inputs.source(cfg)) is None
