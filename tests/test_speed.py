"""What the speed work must not change: LoRA evaluated merged gives the unmerged outputs and leaves the
weights bit for bit; the precision `auto` picks; the best epoch's dev outputs are what the restored model
gives again."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import options_for, tiny_of
from peft.tuners.lora import LoraLayer

from tunebench.runner import RunInputs, build_model
from tunebench.strategies import STRATEGIES
from tunebench.tasks import get_task
from tunebench.training import inference, loop
from tunebench.training.config import TrainConfig
from tunebench.training.loop import fit, predict_logits, resolve_precision


def prepared(name: str, task_name: str = "text-classification"):
    tiny, task = tiny_of(task_name), get_task(task_name)
    strategy = STRATEGIES.get(name).from_options(options_for(task_name, [name])[name])
    backbone = task.load_backbone(tiny.model)
    inputs = RunInputs(task, backbone, task.load(tiny.data), None, backbone.max_length)
    cfg = TrainConfig(epochs=2, batch_size=16, precision="fp32").replace(**strategy.train_defaults)
    return strategy, inputs, cfg, build_model(inputs, strategy, cfg, 0)


def test_lora_evaluates_merged_and_restores_the_weights_bit_for_bit():
    strategy, inputs, cfg, model = prepared("lora")
    with torch.no_grad():  # a trained-looking adapter: B is zero at initialisation
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    modules = [n for n, _ in model.named_modules()]
    dev = inputs.task.batches(inputs.enc["dev"], inputs.backbone)
    plain = predict_logits(model, dev, cfg, torch.device("cpu"))
    with strategy.evaluating(model):
        assert not any(isinstance(m, LoraLayer) for m in model.modules())  # what the export runs
        merged = predict_logits(model, dev, cfg, torch.device("cpu"))
    np.testing.assert_allclose(merged, plain, atol=1e-4)
    for n, p in model.named_parameters():
        assert torch.equal(p, before[n]), n
    assert not any(getattr(m, "merged", False) for m in model.modules())
    assert [n for n, _ in model.named_modules()] == modules  # the wrappers are back where they were


@pytest.mark.parametrize(
    ("device", "asked", "native", "want"),
    [
        ("cpu", "auto", True, "bf16"),
        ("cpu", "auto", False, "fp32"),
        ("cpu", "fp32", True, "fp32"),
        ("cpu", "bf16", False, "bf16"),
        ("cuda", "auto", False, "bf16"),
    ],
)
def test_auto_precision_is_bf16_where_the_hardware_has_it(monkeypatch, device, asked, native, want):
    monkeypatch.setattr(loop, "cpu_has_native_bf16", lambda: native)
    assert resolve_precision(torch.device(device), asked) == want


def test_bf16_features_are_cached_apart_from_fp32(monkeypatch):
    _, inputs, cfg, _ = prepared("full")
    monkeypatch.setattr(loop, "cpu_has_native_bf16", lambda: True)
    bf16 = inputs.source(cfg.replace(precision="auto")).model_ref
    fp32 = inputs.source(cfg.replace(precision="fp32")).model_ref
    assert bf16 != fp32 and bf16.endswith("|bf16")


def test_the_best_epochs_dev_outputs_are_what_the_restored_model_gives():
    strategy, inputs, cfg, model = prepared("full")
    data = {s: inputs.task.batches(inputs.enc[s], inputs.backbone) for s in ("train", "dev")}
    cfg = cfg.replace(epochs=3, patience=3, lr=1e-2)
    result = fit(
        model,
        strategy.param_groups(model, cfg),
        data["train"],
        data["dev"],
        inputs.task,
        lambda out: inputs.score("dev", out),
        cfg,
        0,
    )
    again = predict_logits(model, data["dev"], cfg, torch.device("cpu"))
    np.testing.assert_array_equal(result.best_outputs, again)


def test_cpu_bf16_switch(monkeypatch):
    loop.cpu_has_native_bf16.cache_clear()
    monkeypatch.setenv("TUNEBENCH_CPU_BF16", "0")
    assert loop.cpu_has_native_bf16() is False
    loop.cpu_has_native_bf16.cache_clear()


def test_a_bf16_ladder_on_cpu_exports_what_it_measured(tmp_path):
    """The bf16 CPU path end to end (the rest of the suite runs fp32): every run ok, and each export
    scores the run's own test metrics."""
    import tunebench
    from tunebench.prediction import Predictor
    from tunebench.store import RunStore

    tiny = tiny_of("text-classification")
    names = ["features", "head", "last-k", "full", "lora"]
    tunebench.compare(
        tiny.data,
        model=tiny.model,
        strategies=names,
        out=tmp_path,
        train={**tiny.train, "precision": "bf16"},
        options=options_for("text-classification", names),
        show=False,
    )
    task = get_task("text-classification")
    bundle = task.load(tiny.data)
    for record in RunStore(tmp_path).all():
        assert record["status"] == "ok" and record["precision"] == "bf16", record["strategy"]
        predictor = Predictor(tmp_path / "runs" / record["key"])
        outputs, enc, _ = predictor.outputs(bundle.test)
        assert task.score(outputs, enc, bundle.test, bundle.label_names) == record["test_metrics"]


def test_large_best_epoch_snapshots_go_to_disk_and_come_back_exactly(monkeypatch):
    tensors = {"w": torch.randn(64, 64), "b": torch.randn(64), "steps": torch.arange(5)}
    small = loop.snapshot(tensors)
    assert isinstance(small, dict)
    monkeypatch.setattr(loop, "SNAPSHOT_IN_MEMORY", 0)
    big = loop.snapshot(tensors)
    assert not isinstance(big, dict) and len(big) == 3
    tensors["w"].add_(1.0)  # training goes on; the snapshot keeps the old values
    back = dict(big.items())
    assert torch.equal(back["b"], tensors["b"]) and torch.equal(back["steps"], tensors["steps"])
    assert torch.equal(back["w"] + 1.0, tensors["w"])


def test_a_parked_module_frees_its_weights_and_gets_them_back_bit_for_bit():
    from tunebench.model import parked

    module = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.BatchNorm1d(8))
    module[1].running_mean.add_(0.5)
    before = {n: t.clone() for n, t in module.state_dict().items()}
    with parked(module):
        assert all(p.numel() == 0 for p in module.parameters())
    after = module.state_dict()
    assert all(torch.equal(after[n], t) for n, t in before.items())
    assert all(p.requires_grad for p in module.parameters())


def test_importing_tunebench_bounds_the_cpu_kernel_caches_unless_the_user_set_them():
    code = "import os, tunebench; print(os.environ['ONEDNN_PRIMITIVE_CACHE_CAPACITY'], os.environ['LRU_CACHE_CAPACITY'])"
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "LRU_CACHE_CAPACITY")
    }
    ours = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert ours.stdout.split() == ["64", "64"]
    theirs = subprocess.run(
        [sys.executable, "-c", code],
        env={**env, "LRU_CACHE_CAPACITY": "500"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert theirs.stdout.split() == ["64", "500"]


def test_predictors_of_one_architecture_are_timed_once_per_compare():
    _, inputs, cfg, full = prepared("full")
    _, _, _, head = prepared("head")
    lora_strategy, _, _, lora = prepared("lora")
    with torch.no_grad():  # trained weights and a train-mode dropout change nothing it costs
        for p in full.parameters():
            p.add_(1.0)
    full.train()
    assert inference.architecture(full) == inference.architecture(head)
    assert inference.architecture(lora) != inference.architecture(full)
    wider = build_model(inputs, STRATEGIES.get("full").from_options({}), cfg, 0)
    wider.head.pooling = "cls" if wider.head.pooling != "cls" else "mean"
    assert inference.architecture(wider) != inference.architecture(full)

    memo, timed = {}, []

    def batches_of(n):
        timed.append(n)
        return inputs.dev_batches(n)

    cpu = torch.device("cpu")
    first = inference.inference_cost(full, batches_of, cfg, cpu, memo=memo)
    assert timed and first["latency_ms"] > 0 and first["examples_per_second"] > 0
    timed.clear()
    assert inference.inference_cost(head, batches_of, cfg, cpu, memo=memo) == first
    assert not timed  # the same architecture: not run again
    inference.inference_cost(lora, batches_of, cfg, cpu, memo=memo)
    assert timed  # another architecture: timed
    timed.clear()
    # evaluated as its export predicts (merged, the peft wrappers set aside): full's network
    assert inference.inference_cost(lora, batches_of, cfg, cpu, lora_strategy.evaluating, memo=memo) == first
    assert not timed
    inference.inference_cost(head, batches_of, cfg.replace(precision="bf16"), cpu, memo=memo)
    assert len(memo) == 3  # another precision: timed apart


def test_an_evaluation_pass_casts_each_weight_to_bf16_once_and_predicts_the_same():
    from torch.utils._python_dispatch import TorchDispatchMode

    strategy, inputs, cfg, model = prepared("last-k")  # frozen and trainable weights both
    cfg = cfg.replace(precision="bf16", eval_batch_size=4)
    dev = inputs.task.batches(inputs.enc["dev"], inputs.backbone)
    weights = {m.weight.data_ptr() for m in model.modules() if isinstance(m, torch.nn.Linear)}
    frozen = [n for n, p in model.named_parameters() if not p.requires_grad]

    class WeightCasts(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.count = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if func is torch.ops.aten._to_copy.default and args[0].data_ptr() in weights:
                self.count += 1
            return func(*args, **(kwargs or {}))

    def per_batch(model, data, cfg, device):  # the old way: autocast entered and left per batch
        out = np.zeros((len(data), 2), dtype=np.float32)
        with torch.no_grad():
            for idx, batch in data.eval_batches(cfg.eval_batch_size):
                batch.pop("labels", None)
                with loop.autocast(device, cfg.precision):
                    out[idx] = model(**batch).float().numpy()
        return out

    cpu = torch.device("cpu")
    with WeightCasts() as once:
        kept = predict_logits(model, dev, cfg, cpu)
    with WeightCasts() as each:
        plain = per_batch(model, dev, cfg, cpu)
    batches = -(-len(dev) // 4)
    assert batches > 2 and once.count == len(weights) and each.count == batches * len(weights)
    np.testing.assert_array_equal(kept, plain)  # the same bf16 values, so the same outputs
    assert [n for n, p in model.named_parameters() if not p.requires_grad] == frozen
