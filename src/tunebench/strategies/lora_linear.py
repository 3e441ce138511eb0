"""LoRA's training step on the CPU in one autograd function per wrapped linear layer.

peft computes `base(x) + B(A(dropout(x))) * scaling` as separate modules: under bf16 autocast the input
is cast twice, A and B are cast every call, the dropped-out input is kept in float32 for the backward
pass, and the scaling is one more pass over the output. `LoraLinear` is peft's `lora.Linear` (same
parameters, state dict, merge and export) whose CPU training forward is `_LoraStep`:

    y = x W^T + b + s' ((x * keep) A^T) B^T          (s' = scaling / (1 - p): dropout's scale folded in)

with the input cast once, the product with B accumulated into y in place, the frozen weight's bf16
copy kept between steps (it changes only when merged, which its version counter shows), and only the
dropped-out input, the uint8 mask and the r-wide `(x * keep) A^T` kept for the backward pass.
The dropout mask is `training.dropout.keep_mask`'s, drawn in the same order as the module path, so the
two give the same outputs and gradients (a test compares them). Anything else (merged, several
adapters, DoRA, a trainable base, a GPU) takes peft's own forward.
"""

from __future__ import annotations

import torch
from peft.tuners.lora.layer import Linear
from torch import nn

from ..training.dropout import keep_mask


class _LoraStep(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, a, b, keep, alpha):
        rows = x.reshape(-1, x.shape[-1])
        y = rows @ weight.t() if bias is None else torch.addmm(bias, rows, weight.t())
        dropped = rows if keep is None else rows * keep
        h = dropped @ a.t()
        y.addmm_(h, b.t(), alpha=alpha)
        ctx.save_for_backward(dropped, weight, a, b, keep, h)
        ctx.alpha, ctx.shape = alpha, x.shape
        return y.reshape(*x.shape[:-1], y.shape[-1])

    @staticmethod
    def backward(ctx, grad):
        dropped, weight, a, b, keep, h = ctx.saved_tensors
        dy = grad.reshape(-1, grad.shape[-1]).to(weight.dtype)
        g = (dy @ b).mul_(ctx.alpha)  # d loss / d h, scaled
        grad_b = (dy.t() @ h).mul_(ctx.alpha)
        grad_x = None
        if ctx.needs_input_grad[0]:  # not below the first trainable layer (frozen embeddings)
            through_a = g @ a
            if keep is not None:
                through_a.mul_(keep)
            grad_x = through_a.addmm_(dy, weight).reshape(ctx.shape)
        grad_a = g.t() @ dropped
        return grad_x, None, None, grad_a, grad_b, None, None


class LoraLinear(Linear):
    """peft's LoRA linear layer with `_LoraStep` as its CPU training forward."""

    def _plain(self) -> bool:
        adapters = self.active_adapters
        base = self.get_base_layer()
        return (
            not self.training
            or self.merged
            or self.disable_adapters
            or len(adapters) != 1
            or adapters[0] in self.lora_variant
            or self.lora_B[adapters[0]].bias is not None
            or type(base) is not nn.Linear
            or base.weight.requires_grad
            or (base.bias is not None and base.bias.requires_grad)
            or self.fan_in_fan_out
        )

    def forward(self, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        if args or kwargs or x.device.type != "cpu" or self._plain():
            return super().forward(x, *args, **kwargs)
        name = self.active_adapters[0]
        base = self.get_base_layer()
        dtype = torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else x.dtype
        with torch.autocast("cpu", enabled=False):
            dropout = self.lora_dropout[name]
            p = dropout.p if isinstance(dropout, nn.Dropout) else 0.0
            rows = (x.shape[:-1].numel(), x.shape[-1])
            keep, scale = keep_mask(rows, p, x.device) if p > 0 else (None, 1.0)
            return _LoraStep.apply(
                x.to(dtype),
                self._frozen("weight", base.weight, dtype),
                None if base.bias is None else self._frozen("bias", base.bias, dtype),
                self.lora_A[name].weight.to(dtype),
                self.lora_B[name].weight.to(dtype),
                keep,
                self.scaling[name] * scale,
            )

    def _frozen(self, role: str, tensor: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """The frozen `tensor` in `dtype`, cast once and kept while its storage and version are the same
        (merging for evaluation changes the version). Not a buffer: state dicts are unchanged."""
        if tensor.dtype == dtype:
            return tensor
        key = (tensor.data_ptr(), tensor._version, dtype)
        cache = self.__dict__.setdefault("_frozen_casts", {})
        if cache.get(role, (None,))[0] != key:
            cache[role] = (key, tensor.detach().to(dtype))
        return cache[role][1]
