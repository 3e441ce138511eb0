"""LoRA's fused CPU training step gives what peft's module path gives (same masks, same outputs and
gradients), keeps peft's parameters and state dict, and steps aside where it does not apply."""

from __future__ import annotations

import copy

import pytest
import torch
from conftest import options_for, tiny_of
from peft.tuners.lora.layer import Linear

from tunebench.runner import RunInputs, build_model
from tunebench.strategies import STRATEGIES
from tunebench.strategies.lora_linear import LoraLinear
from tunebench.tasks import get_task
from tunebench.training.config import TrainConfig
from tunebench.training.dropout import cheap_dropout


def lora_model(dropout: str = "0.1"):
    tiny, task = tiny_of("text-classification"), get_task("text-classification")
    options = {**options_for("text-classification", ["lora"])["lora"], "dropout": dropout}
    strategy = STRATEGIES.get("lora").from_options(options)
    backbone = task.load_backbone(tiny.model)
    inputs = RunInputs(task, backbone, task.load(tiny.data), None, backbone.max_length)
    cfg = TrainConfig(epochs=1, batch_size=8, precision="fp32").replace(**strategy.train_defaults)
    model = build_model(inputs, strategy, cfg, 0)
    with torch.no_grad():  # a trained-looking adapter: B is zero at initialisation
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)
    cheap_dropout(model)
    batch = next(iter(task.batches(inputs.enc["train"], backbone).train_batches(8, 0)))
    batch.pop("labels")
    return model, batch


def as_peft(model):
    """The same model with peft's own forward in every LoRA layer."""
    plain = copy.deepcopy(model)
    for m in plain.modules():
        if type(m) is LoraLinear:
            m.__class__ = Linear
    return plain


def outputs_and_grads(model, batch, seed: int, precision=None):
    model.train()
    model.zero_grad(set_to_none=True)
    torch.manual_seed(seed)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
        out = model(**batch)
    out.float().pow(2).sum().backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return out.detach().float(), grads


def test_every_wrapped_linear_layer_takes_the_fused_step_and_the_state_dict_is_peft_s():
    model, _ = lora_model()
    fused = [m for m in model.modules() if isinstance(m, Linear)]
    assert fused and all(type(m) is LoraLinear for m in fused)
    assert list(model.state_dict()) == list(as_peft(model).state_dict())


@pytest.mark.parametrize("dropout", ["0.1", "0"])
def test_outputs_and_gradients_equal_peft_s_module_path(dropout):
    model, batch = lora_model(dropout)
    out, grads = outputs_and_grads(model, batch, seed=5)
    ref_out, ref_grads = outputs_and_grads(as_peft(model), batch, seed=5)
    torch.testing.assert_close(out, ref_out, rtol=1e-5, atol=1e-5)
    assert grads.keys() == ref_grads.keys() and any("lora_A" in n for n in grads)
    for name, grad in grads.items():
        torch.testing.assert_close(grad, ref_grads[name], rtol=1e-4, atol=1e-5, msg=name)


def test_under_bf16_autocast_it_is_as_accurate_as_peft_s_path():
    """Both against the float32 result with the same masks: the fused step's error is no larger."""
    model, batch = lora_model()
    exact_out, exact = outputs_and_grads(as_peft(model), batch, seed=2)
    out, grads = outputs_and_grads(model, batch, seed=2, precision="bf16")
    ref_out, ref_grads = outputs_and_grads(as_peft(model), batch, seed=2, precision="bf16")

    def error(a, b):
        return ((a - b).norm() / b.norm()).item()

    def stacked(grads):
        return torch.cat([grads[name].flatten() for name in sorted(exact)])

    assert error(out, exact_out) <= 1.5 * error(ref_out, exact_out) + 1e-3
    assert error(stacked(grads), stacked(exact)) <= 1.5 * error(stacked(ref_grads), stacked(exact))


def test_the_frozen_weights_bf16_copy_is_made_again_once_the_weight_changes():
    model, batch = lora_model()
    layer = next(m for m in model.modules() if type(m) is LoraLinear)
    outputs_and_grads(model, batch, seed=0, precision="bf16")
    first = layer._frozen_casts["weight"][1]
    outputs_and_grads(model, batch, seed=0, precision="bf16")
    assert layer._frozen_casts["weight"][1] is first  # kept between steps
    with torch.no_grad():
        layer.get_base_layer().weight.add_(1.0)
    outputs_and_grads(model, batch, seed=0, precision="bf16")
    torch.testing.assert_close(
        layer._frozen_casts["weight"][1], layer.get_base_layer().weight.detach().bfloat16()
    )


def test_evaluation_and_merged_weights_take_peft_s_forward():
    model, batch = lora_model()
    layer = next(m for m in model.modules() if type(m) is LoraLinear)
    model.eval()
    assert layer._plain()
    model.train()
    assert not layer._plain()
    layer.merge()
    assert layer._plain()
    layer.unmerge()
    layer.get_base_layer().weight.requires_grad_(True)  # a trainable base: peft's path
    assert layer._plain()
