"""The frozen-prefix cache: last-k (and head on token tasks) train on cached hidden states of the frozen
bottom blocks, and get what the whole model would have computed."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import options_for, tiny_of

import tunebench
from tunebench import extract, runner
from tunebench.backbones import prefix
from tunebench.run_inputs import frozen_inputs
from tunebench.runner import RunInputs, build_model, prefix_model, run_one
from tunebench.store import RunStore
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


def test_prefix_depths_are_those_later_runs_read_from_the_cache():
    _, inputs, cfg = setup("text-classification", "last-k")
    layers = inputs.backbone.model.config.num_hidden_layers
    plans = [
        (STRATEGIES.get(n).from_options(options_for("text-classification", [n])[n]), cfg)
        for n in STRATEGIES.names()
    ]
    k = next(s for s, _ in plans if s.name == "last-k").k
    assert runner.prefix_depths(inputs, plans) == {layers - k}  # head reads pooled features, full no prefix
    last_k = next(p for p in plans if p[0].name == "last-k")
    assert runner.prefix_depths(inputs, [(last_k[0], cfg.replace(ewc=1.0))]) == set()  # EWC runs the body


@pytest.mark.parametrize("task_name", TEXT_TASKS)
def test_the_features_pass_writes_last_ks_prefix_states_bit_for_bit(task_name, tmp_path):
    """Sentence tasks pool every layer, NER and QA keep token states: either pass writes the prefix."""
    strategy, inputs, cfg = setup(task_name, "last-k", tmp_path)
    depth = inputs.backbone.model.config.num_hidden_layers - strategy.k
    inputs.prefetch = runner.prefix_depths(inputs, [(strategy, cfg)])
    assert inputs.prefetch == {depth}
    features = STRATEGIES.get("features").from_options(options_for(task_name, ["features"])["features"])
    rows = inputs.enc["train"].rows
    frozen_inputs(
        inputs.task, features, inputs.source(cfg), inputs.enc["train"], inputs.split("train"), "mean"
    )
    later = inputs.source(cfg, prefetch=False)
    states, offsets = later.prefix(rows, depth)
    assert later.seconds == 0.0  # written by the features pass, not computed again
    fresh, fresh_offsets = (
        RunInputs(inputs.task, inputs.backbone, inputs.bundle, None, inputs.max_length)
        .source(cfg)
        .prefix(rows, depth)
    )
    np.testing.assert_array_equal(offsets, fresh_offsets)
    np.testing.assert_array_equal(states, fresh)


def test_an_interrupted_features_pass_leaves_no_prefix_entry(tmp_path, monkeypatch):
    strategy, inputs, cfg = setup("text-classification", "last-k", tmp_path)
    inputs.prefetch = runner.prefix_depths(inputs, [(strategy, cfg)])

    def interrupted(self, idx, hidden):
        raise KeyboardInterrupt

    monkeypatch.setattr(extract.PrefixFile, "put_batch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        inputs.source(cfg).pools(inputs.enc["train"].rows)
    assert not list((tmp_path / "cache").rglob("*.npy"))  # neither an entry nor a temporary file


def test_a_compare_runs_last_ks_frozen_blocks_with_the_features_pass(tmp_path):
    """The last-k run of a ladder with `features` computes nothing frozen itself and measures exactly
    what it measures alone."""
    tiny = tiny_of("text-classification")
    options = options_for("text-classification", ["features", "last-k"])

    def compare(names, out):
        tunebench.compare(
            tiny.data,
            model=tiny.model,
            strategies=names,
            out=out,
            train=tiny.train,
            options=options,
            show=False,
        )
        return {r["strategy"]: r for r in RunStore(out).all()}

    both = compare(["features", "last-k"], tmp_path / "both")
    alone = compare(["last-k"], tmp_path / "alone")
    assert both["last-k"]["times"]["extraction"] == 0.0 < alone["last-k"]["times"]["extraction"]
    for split in ("dev", "test"):
        assert both["last-k"][f"{split}_metrics"] == alone["last-k"][f"{split}_metrics"]


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_pooling_each_block_as_the_pass_makes_it_gives_the_hidden_states_pools(
    precision, tmp_path, monkeypatch
):
    """The hooked pass (nothing kept to the end of a batch) against pooling `hidden_states`, with the
    prefix states it writes: bit for bit; an encoder the hooks do not see whole takes the plain path."""
    strategy, inputs, cfg = setup("text-classification", "last-k")
    model, rows, depth = inputs.backbone.model, inputs.enc["train"].rows, 1
    pad = inputs.backbone.tokenizer.pad_token_id

    def run(path):
        file = extract.PrefixFile(path, *inputs.source(cfg)._prefix_layout(rows))
        pools = extract.all_layer_pools(model, rows, pad, 8, "cpu", precision, {depth: file})
        file.close()
        return pools, np.load(path)

    hooked, hooked_states = run(tmp_path / "hooked.npy")
    monkeypatch.setattr(extract.BlockPools, "see_hidden_states", lambda self, model, probe: False)
    plain, plain_states = run(tmp_path / "plain.npy")
    assert hooked.shape == (len(rows), model.config.num_hidden_layers + 1, 2, model.config.hidden_size)
    np.testing.assert_array_equal(hooked, plain)
    np.testing.assert_array_equal(hooked_states, plain_states)
    hooks = [h for m in model.modules() for h in m._forward_hooks.values()]
    assert not any(isinstance(getattr(h, "__self__", None), extract.BlockPools) for h in hooks)


def test_the_hooks_see_the_models_hidden_states():
    _, inputs, _ = setup("text-classification", "last-k")
    model = inputs.backbone.model.eval()
    rows = inputs.enc["dev"].rows[:2]
    _, probe = next(extract.TokenBatches(rows, None, 0).eval_batches(2))
    hooks = extract.BlockPools(model, {})
    try:
        with torch.no_grad():
            assert hooks.see_hidden_states(model, probe)
    finally:
        hooks.remove()
    hooks = extract.BlockPools(torch.nn.Linear(2, 2), {})  # no blocks to hook there
    assert not hooks.hooks and not hooks.see_hidden_states(model, probe)


def test_no_rows_extract_nothing():
    _, inputs, _ = setup("text-classification", "last-k")
    assert extract.all_layer_pools(inputs.backbone.model, [], 0, 8, "cpu", "fp32") is None


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_prefix_states_read_row_ranges_of_the_file_without_mapping_it(dtype, tmp_path):
    """What `np.load` gives, by row range, with plain reads: the process maps no page of the file (a
    map's touched pages count in its memory); a truncated file says so."""
    from tunebench.prefix_files import PrefixStates

    array = np.random.default_rng(0).normal(size=(50, 8)).astype(dtype)
    np.save(tmp_path / "entry.npy", array)
    states = PrefixStates(tmp_path / "entry.npy")
    assert len(states) == 50 and states.shape == (50, 8) and states.dtype == dtype
    np.testing.assert_array_equal(states[3:17], array[3:17])
    assert states[3:17].flags.writeable and states[10:10].shape == (0, 8)
    np.testing.assert_array_equal(np.asarray(states), array)
    assert str(tmp_path / "entry.npy") not in open("/proc/self/maps").read()
    with open(tmp_path / "entry.npy", "r+b") as f:
        f.truncate(200)
    with pytest.raises(OSError, match="shorter than its header"):
        PrefixStates(tmp_path / "entry.npy")[40:50]


def test_last_k_reads_its_cached_prefix_from_disk_as_from_memory(tmp_path):
    """The same batches whether the prefix entry is on disk (read by row range) or in memory."""
    strategy, inputs, cfg = setup("text-classification", "last-k", tmp_path)
    model = build_model(inputs, strategy, cfg, 0)
    _, on_disk = prefix_model(inputs, model, inputs.source(cfg))
    memory_inputs = RunInputs(inputs.task, inputs.backbone, inputs.bundle, None, inputs.max_length)
    _, in_memory = prefix_model(memory_inputs, model, memory_inputs.source(cfg))
    assert type(on_disk["train"].states).__name__ == "PrefixStates"
    for split in ("train", "dev"):
        for (_, a), (_, b) in zip(
            on_disk[split].eval_batches(8), in_memory[split].eval_batches(8), strict=True
        ):
            torch.testing.assert_close(a, b, rtol=0, atol=0)
