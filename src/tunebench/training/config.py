"""Hyperparameters shared by every gradient strategy: one typed, validated dataclass."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from ..errors import TunebenchError


@dataclass
class TrainConfig:
    lr: float = 5e-5
    epochs: int = 3
    batch_size: int = 32
    eval_batch_size: int = 128
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    schedule: str = "linear"  # linear (warmup + linear decay) | slanted (ULMFiT STLR) | constant
    max_grad_norm: float = 1.0
    patience: int = 2  # epochs without dev improvement before stopping
    dropout: float = 0.1  # head dropout
    max_length: int | None = None  # None: the model's own maximum
    device: str = "auto"  # auto | cpu | cuda
    precision: str = "auto"  # auto (bf16 autocast on CUDA and CPUs with native bf16) | fp32 | bf16
    compile: bool = False  # torch.compile the model for training and evaluation (pays off on long GPU runs)
    # imbalance (tasks with classes): the loss's class weights ("none", "balanced": n / (C * count_c),
    # or a JSON/CSV file of label -> weight), label smoothing, and the order examples are drawn in
    # ("random", or "balanced": every class equally often, drawn with replacement)
    class_weights: str = "none"
    label_smoothing: float = 0.0
    sampler: str = "random"
    # forgetting: L2-SP (Li et al. 2018), l2sp/2 * |w - w0|^2 over every weight but the head's, w0 its
    # value when training started (the pre-trained one; a new module's initialisation: LoRA's B = 0)
    l2sp: float = 0.0

    def __post_init__(self) -> None:
        checks = [
            (self.lr > 0, "--lr must be > 0"),
            (self.epochs >= 1, "--epochs must be >= 1"),
            (self.batch_size >= 1, "--batch-size must be >= 1"),
            (0 <= self.warmup_ratio < 1, "--warmup-ratio must be in [0, 1)"),
            (self.weight_decay >= 0, "--weight-decay must be >= 0"),
            (self.schedule in ("linear", "slanted", "constant"), "--schedule: linear, slanted or constant"),
            (self.patience >= 1, "--patience must be >= 1"),
            (0 <= self.dropout < 1, "--dropout must be in [0, 1)"),
            (self.max_length is None or self.max_length >= 8, "--max-length must be >= 8"),
            (
                self.device in ("auto", "cpu", "cuda") or _cuda_index(self.device),
                f"--device {self.device}: auto, cpu, cuda or cuda:N",
            ),
            (self.precision in ("auto", "fp32", "bf16"), "--precision: auto, fp32 or bf16"),
            (0 <= self.label_smoothing < 1, "--label-smoothing must be in [0, 1)"),
            (self.l2sp >= 0, "--l2sp must be >= 0"),
            (self.sampler in ("random", "balanced"), f"--sampler {self.sampler}: random or balanced"),
            (
                self.class_weights in ("none", "balanced") or Path(self.class_weights).is_file(),
                f"--class-weights {self.class_weights}: none, balanced, or a JSON/CSV file of label -> weight "
                "(no such file)",
            ),
        ]
        for ok, msg in checks:
            if not ok:
                raise TunebenchError(msg)

    def replace(self, **overrides) -> TrainConfig:
        known = {f.name for f in fields(self)}
        return TrainConfig(**{**asdict(self), **{k: v for k, v in overrides.items() if k in known}})

    def as_dict(self) -> dict:
        return asdict(self)

    def identity(self) -> dict:
        """The settings as part of a run key: fields added after runs were stored are left out at their
        defaults (those runs keep their keys); a class-weights file is named with a hash of its content."""
        fields_ = asdict(self)
        for name, default in LATER_FIELDS.items():
            if fields_[name] == default:
                del fields_[name]
        if self.class_weights not in ("none", "balanced"):
            digest = hashlib.sha256(Path(self.class_weights).read_bytes()).hexdigest()[:12]
            fields_["class_weights"] = f"{self.class_weights}#{digest}"
        return fields_


LATER_FIELDS = {"class_weights": "none", "label_smoothing": 0.0, "sampler": "random", "l2sp": 0.0}


def _cuda_index(device: str) -> bool:
    """`cuda:N`: one GPU of several (a worker per GPU)."""
    kind, _, index = device.partition(":")
    return kind == "cuda" and index.isdigit()
