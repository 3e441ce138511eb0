"""Where partial fine-tuning should start, read off a layer probe's dev curve (`suggest`).

Layers up to the probe's peak already hold what the task needs; the blocks above it were specialised
for the pre-training objective, and they are the ones fine-tuning changes most. Differences smaller
than the dev set's standard error (sqrt(p(1-p)/n), ±1.4 points at 80% on SST-2's 872 sentences) are
noise, so the curve (best pooling, dev) is read at its *plateau*: the first layer p within one standard
error of the best.
- The best layer does not beat the majority class by more than two standard errors: frozen features
  give nothing to build on; fine-tune the whole model.
- p is the last layer (the features still improve at the top): the frozen top is the best feature
  set (`features`/`head` are the cheap baseline), and fine-tuning starts at the top: last-k with k=2
  (or LoRA).
- p < L: last-k with k = L - p fine-tunes the blocks that add nothing measurable to the frozen
  features (those above the best layer when the curve falls after its peak); when that is more than
  half the model, full fine-tuning or LoRA cost about the same.
"""

from __future__ import annotations

import math

import numpy as np


def suggest(
    curve: list[float], majority: float, n_dev: int, metric: str = "accuracy", se: float | None = None
) -> tuple[int | None, int, str]:
    """(k for last-k or None, plateau layer, one plain sentence) from the dev curve (index = layer).

    The plateau layer is the first layer within one dev standard error of the best: the blocks above
    it add nothing measurable to the frozen features. See the module docstring for the rule.
    """
    L = len(curve) - 1
    b = int(np.argmax(curve))
    top, last = curve[b], curve[L]
    if se is None:  # binomial standard error of a dev score in [0, 1]
        se = math.sqrt(max(top * (1 - top), 1e-4) / max(n_dev, 1))
    p = next(i for i, s in enumerate(curve) if s >= top - se)
    if top - majority <= 2 * se:
        return (
            None,
            p,
            (
                f"no layer's frozen features clearly beat the majority class (best dev {metric} {top:.3f} "
                f"at layer {b} vs {majority:.3f}, dev noise ±{se:.3f}): fine-tune the whole model "
                "(full, llrd or lora), not part of it"
            ),
        )
    if p == L:
        k = min(2, L)
        return (
            k,
            p,
            (
                f"features improve up to the last layer (dev {metric} {top:.3f} at layer {L} of {L}): the "
                f"frozen top is the best feature set, so features/head are the cheap baseline; to fine-tune, "
                f"start at the top: last-k with k={k} (or lora)"
            ),
        )
    k = L - p
    where = "the embeddings (layer 0)" if p == 0 else f"layer {p} of {L}"
    if p < b:
        text = (
            f"features reach dev {metric} {curve[p]:.3f} at {where} and gain no more than dev noise "
            f"(±{se:.3f}) above it (best {top:.3f} at layer {b}): last-k with k={k} fine-tunes the "
            "blocks that add nothing measurable to the frozen features"
        )
    else:
        trend = (
            f"fall to {last:.3f} at layer {L}"
            if top - last > se
            else f"stay within dev noise (±{se:.3f}) up to layer {L} ({last:.3f})"
        )
        text = (
            f"features peak at {where} (dev {metric} {top:.3f}) and {trend}: last-k with k={k} "
            "fine-tunes the blocks above the best frozen layer"
        )
    if k > L / 2:
        text += "; that is most of the model, so full fine-tuning or lora cost about the same"
    return k, p, text
