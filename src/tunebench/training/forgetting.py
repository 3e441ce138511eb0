"""Terms against forgetting that a run adds to its task loss (`fit(extra_loss=...)`): EWC, a penalty
weighted by a diagonal Fisher, and replay of original-domain text. Pure torch: what the body's pooled
embedding is comes in as `embed(body, batch) -> (B, H)`, so nothing here knows a backbone;
mitigation.py builds these terms for a run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import torch
from torch import nn

from .batching import TokenBatches, pad_rows
from .loop import autocast

Embed = Callable[[nn.Module, dict[str, torch.Tensor]], torch.Tensor]  # (body, batch) -> (B, H)
Term = Callable[[nn.Module, int], torch.Tensor]  # (model, step) -> a scalar added to the loss


def diagonal_fisher(
    body: nn.Module, batches: Iterable[dict[str, torch.Tensor]], embed: Embed, draws: int = 4, seed: int = 0
) -> dict[str, torch.Tensor]:
    """diag(sum_x J_x^T J_x) / N over the N inputs of `batches`, J_x = d e(x) / d w the Jacobian of the
    pooled embedding: the Fisher of e under an isotropic Gaussian output model N(e(x), I).

    No per-example gradients: per batch, v_x ~ N(0, I) is drawn for each example independently and one
    backward of sum_x v_x . e(x) gives g = sum_x J_x^T v_x, whose square is an unbiased estimate of
    sum_x diag(J_x^T J_x) (E[v v^T] = I; the cross terms between examples and between output dimensions
    vanish in expectation). `draws` projections per batch (one forward, `draws` backwards), averaged.
    Runs in eval mode (no dropout) and fp32; the body's requires_grad flags are put back. Returns CPU
    float32 tensors keyed by the body's parameter names."""
    params = dict(body.named_parameters())
    flags = {n: p.requires_grad for n, p in params.items()}
    device = next(iter(params.values())).device
    generator = torch.Generator().manual_seed(seed)
    total = {n: torch.zeros_like(p, dtype=torch.float32) for n, p in params.items()}
    was_training, n_inputs = body.training, 0
    body.eval()
    try:
        for p in params.values():
            p.requires_grad_(True)
        for batch in batches:
            e = embed(body, {k: v.to(device) for k, v in batch.items()}).float()  # (B, H)
            n_inputs += len(e)
            for d in range(draws):
                v = torch.randn(e.shape, generator=generator).to(device)
                grads = torch.autograd.grad(
                    (v * e).sum(), list(params.values()), retain_graph=d < draws - 1, allow_unused=True
                )
                for n, g in zip(params, grads):
                    if g is not None:
                        total[n] += g.float().pow(2)
    finally:
        for n, p in params.items():
            p.requires_grad_(flags[n])
        body.train(was_training)
    return {n: (t / max(n_inputs * draws, 1)).cpu() for n, t in total.items()}


def pretrained_name(name: str) -> str:
    """A trained body's parameter name as the pre-trained body calls it: peft wraps the body in
    `base_model.model.` and a wrapped layer's own weights in `.base_layer.`."""
    return name.removeprefix("base_model.model.").replace(".base_layer.", ".")


class EWC:
    """Elastic Weight Consolidation (Kirkpatrick et al. 2017): lam/2 * sum_i F_i (w_i - w0_i)^2 over the
    body's weights that train now (`model.backbone`; not the head), w0 their values as training starts.
    A weight unfrozen later (gradual unfreezing) is anchored when it first trains: it has not moved
    before. `fisher`: F per pre-trained weight, keyed by the pre-trained body's names; a weight without
    one (new modules: LoRA's A and B, adapters, prefixes) gets F = 1 and is held at its initialisation,
    as L2-SP holds it."""

    def __init__(self, lam: float, fisher: dict[str, torch.Tensor]):
        self.lam = lam
        self.fisher = fisher
        self.anchor: dict[str, tuple[torch.Tensor, torch.Tensor | None]] = {}  # name -> (w0, F or None)

    def importance(self, name: str, p: torch.Tensor) -> torch.Tensor | None:
        """F of a body parameter (on its device), None where it has none (F = 1)."""
        f = self.fisher.get(pretrained_name(name))
        return f.to(p.device) if f is not None and f.shape == p.shape else None

    def __call__(self, model: nn.Module, step: int) -> torch.Tensor:
        terms = []
        for n, p in model.backbone.named_parameters():
            if not p.requires_grad:
                continue
            if n not in self.anchor:
                self.anchor[n] = (p.detach().float().clone(), self.importance(n, p))
            w0, f = self.anchor[n]
            moved = (p.float() - w0).pow(2)
            terms.append((moved if f is None else f * moved).sum())
        if not terms:
            return torch.zeros((), device=next(model.parameters()).device)
        return self.lam / 2 * torch.stack(terms).sum()


class Replay:
    """A replay objective: `loss(model, step)` is the loss of step `step`'s replay batch through `model`
    itself (the model the task trains: LoRA, adapter, BitFit and prefix deltas count). Objectives sit
    side by side as subclasses: `EmbeddingReplay` for embedding models; a masked-language-model objective
    for checkpoints with an MLM head would be another, chosen by mitigation.py."""

    def __call__(self, model: nn.Module, step: int) -> torch.Tensor:
        raise NotImplementedError


class EmbeddingReplay(Replay):
    """Distillation toward the original body's pooled embeddings e0 of the replay texts (computed once,
    before training): each step takes the next m = ceil(r * batch size) texts of a seeded permutation
    (cycling), embeds them with the current body (no dropout, so the term is 0 until the weights move)
    and returns

        weight * MSE(e, e0) / mean_x(|e0(x)|^2 / d)

    MSE averaged over the m texts and the d dimensions, the denominator over all replay texts: the
    squared error relative to the embeddings' mean squared coordinate, so the term does not depend on
    the model's scale. `targets`: (N, d) e0, in `rows`' order."""

    def __init__(
        self,
        rows: list[dict],
        targets: torch.Tensor,
        per_step: int,
        weight: float,
        embed: Embed,
        pad_id: int,
        precision: str = "fp32",
        seed: int = 0,
    ):
        self.rows, self.targets = rows, targets.float()
        self.per_step, self.weight, self.embed = per_step, weight, embed
        self.pad_id, self.precision = pad_id, precision
        self.order = np.random.default_rng(seed).permutation(len(rows))
        self.scale = float(self.targets.pow(2).sum(1).mean()) / self.targets.shape[1]

    def indices(self, step: int) -> np.ndarray:
        """The replay texts of step `step`: the next `per_step` of the permutation, cycling."""
        return self.order[(step * self.per_step + np.arange(self.per_step)) % len(self.order)]

    def __call__(self, model: nn.Module, step: int) -> torch.Tensor:
        idx = self.indices(step)
        device = next(model.parameters()).device
        batch = {k: v.to(device) for k, v in pad_rows([self.rows[i] for i in idx], self.pad_id).items()}
        training = model.training
        model.eval()  # no dropout: the embeddings the original gave, until the weights move
        try:
            with autocast(device, self.precision):
                e = self.embed(model.backbone, batch).float()  # (m, d)
        finally:
            model.train(training)
        e0 = self.targets[torch.as_tensor(idx)].to(device)
        return self.weight * (e - e0).pow(2).mean() / max(self.scale, 1e-12)


@torch.no_grad()
def embeddings(
    body: nn.Module, rows: list[dict], embed: Embed, pad_id: int, batch_size: int, precision: str = "fp32"
) -> torch.Tensor:
    """(N, H) fp32 on the CPU: `embed` of every token row, in eval mode (replay's targets e0)."""
    device = next(body.parameters()).device
    out = torch.zeros((0,))
    was_training = body.training
    body.eval()
    try:
        for idx, batch in TokenBatches(rows, None, pad_id).eval_batches(batch_size):
            with autocast(device, precision):
                e = embed(body, {k: v.to(device) for k, v in batch.items()}).float().cpu()
            if out.numel() == 0:
                out = torch.zeros((len(rows), e.shape[1]))
            out[torch.as_tensor(idx)] = e
    finally:
        body.train(was_training)
    return out


def summed(terms: list[Term]) -> Term | None:
    """One `extra_loss` for `fit` from several terms (None for none)."""
    if not terms:
        return None
    if len(terms) == 1:
        return terms[0]
    return lambda model, step: torch.stack([t(model, step) for t in terms]).sum()
