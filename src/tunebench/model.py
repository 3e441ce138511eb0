"""The model every gradient strategy trains: a backbone plus a task head."""

from __future__ import annotations

import tempfile
from contextlib import contextmanager
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from .backbones import embeddings_module, encoder_layers, pool


class TaskModel(nn.Module):
    """backbone(input_ids, ...) -> hidden states (B, T, H) -> head -> logits; for images
    backbone(pixel_values) -> pooled features (B, D) -> head.from_pooled -> logits."""

    def __init__(self, backbone: nn.Module, head: nn.Module):
        super().__init__()
        self.backbone = backbone
        self.head = head
        # embeddings + this many bottom blocks stay frozen for the whole run (last-k: L - k): they stay
        # in eval mode while the rest trains, so they compute what the frozen-prefix cache holds
        self.frozen_depth = 0

    def train(self, mode: bool = True) -> TaskModel:
        super().train(mode)
        if mode and self.frozen_depth:
            embeddings_module(self.backbone).eval()
            for block in encoder_layers(self.backbone)[: self.frozen_depth]:
                block.eval()
        return self

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        pixel_values: torch.Tensor | None = None,
        extra: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """`extra`: the rows' feature columns (--feature-cols), read by the fusion head."""
        if pixel_values is not None:  # image backbones pool inside the network
            return self.head.from_pooled(self.backbone(pixel_values))
        kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            kwargs["token_type_ids"] = token_type_ids
        out = self.backbone(**kwargs)
        return _head(self.head, out.last_hidden_state, attention_mask, extra)


class HeadOnFeatures(nn.Module):
    """Head-only training on cached frozen features: the backbone's forward pass ran once, not per epoch."""

    def __init__(self, head: nn.Module):
        super().__init__()
        self.head = head

    def forward(self, features: torch.Tensor, **window) -> torch.Tensor:  # (B, H) -> (B, C)
        """`window`: what sequence heads also need (QA: attention_mask, segments of cached windows)."""
        return self.head.from_pooled(features, **window)


class PrefixModel(nn.Module):
    """The trainable top of a TaskModel on cached hidden states of its frozen bottom blocks
    (backbones/prefix.py): `top` and `head` are the TaskModel's own modules, so training this trains it."""

    def __init__(self, top: nn.Module, head: nn.Module):
        super().__init__()
        self.top = top
        self.head = head

    def forward(
        self, hidden_states: torch.Tensor, attention_mask: torch.Tensor, extra: torch.Tensor | None = None
    ) -> torch.Tensor:
        return _head(self.head, self.top(hidden_states, attention_mask), attention_mask, extra)


def _head(head: nn.Module, hidden: torch.Tensor, mask: torch.Tensor, extra: torch.Tensor | None):
    """The head on hidden states; with feature columns (the fusion head) on those as well."""
    return head(hidden, mask) if extra is None else head(hidden, mask, extra)


def pooled_embedding(backbone: nn.Module, batch: dict[str, torch.Tensor], pooling: str) -> torch.Tensor:
    """(B, H) fp32: what the body makes of a batch, as TaskModel's heads read it: the last hidden state
    pooled by `pooling` (mean or cls); image backbones pool inside the network. EWC's Fisher and
    replay's distillation are taken of this embedding (mitigation.py)."""
    if "pixel_values" in batch:
        return backbone(batch["pixel_values"]).float()
    kwargs = {k: batch[k] for k in ("input_ids", "attention_mask", "token_type_ids") if k in batch}
    hidden = backbone(**kwargs).last_hidden_state  # (B, T, H)
    return pool(hidden.float(), batch["attention_mask"], pooling)


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(trainable, total), counting shared tensors once."""
    seen: set[int] = set()
    trainable = total = 0
    for p in model.parameters():
        if id(p) in seen:
            continue
        seen.add(id(p))
        total += p.numel()
        if p.requires_grad:
            trainable += p.numel()
    return trainable, total


@contextmanager
def parked(module: nn.Module):
    """Hold an idle module's weights in a temporary file for the duration and free their memory: the
    pre-trained backbone waits on disk while a copy of it trains, instead of doubling the run's
    peak memory (on a GPU too, where extraction left it). Put back bit for bit on exit."""
    tensors = {**dict(module.named_parameters()), **dict(module.named_buffers())}
    if not tensors:
        yield module
        return
    device = next(iter(tensors.values())).device
    with tempfile.TemporaryDirectory(prefix="tunebench-parked-") as tmp:
        path = str(Path(tmp) / "weights.safetensors")
        save_file({n: t.detach().cpu().contiguous() for n, t in tensors.items()}, path)
        for t in tensors.values():
            t.data = torch.empty(0, dtype=t.dtype, device=t.device)
        try:
            yield module
        finally:
            for n, value in load_file(path).items():
                tensors[n].data = value.to(device)


class MultiTaskModel(TaskModel):
    """One backbone shared by several tasks, one head per task (`head`, a ModuleList in task order: what
    strategies leave trainable and save beside the body). A batch holds one task's rows; `task` (a 0-d
    tensor) says which. `log_vars`: the learned log-variances of uncertainty weighting (Kendall et al.
    2018), one per task, or None."""

    def __init__(self, backbone: nn.Module, heads: list[nn.Module], uncertainty: bool = False):
        super().__init__(backbone, nn.ModuleList(heads))
        self.log_vars = nn.Parameter(torch.zeros(len(heads))) if uncertainty else None

    def forward(self, task: torch.Tensor, **inputs) -> torch.Tensor:
        return self.view(int(task))(**inputs)

    def view(self, index: int) -> TaskModel:
        """Task `index` alone: the shared backbone and its head (the same modules, not copies)."""
        return TaskModel(self.backbone, self.head[index])
