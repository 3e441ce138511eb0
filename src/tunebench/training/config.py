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
    # EWC (Kirkpatrick et al. 2017), ewc/2 * sum_i F_i (w_i - w0_i)^2 over the body's weights, F the diagonal
    # Fisher of the pooled embedding on `reference` (a corpus file; "": the training inputs), normalised to
    # mean 1 over the anchored pre-trained weights (training/forgetting.py; mitigation.py builds it)
    ewc: float = 0.0
    reference: str = ""
    # replay: `replay` (a corpus file) joins training, ceil(replay_ratio * batch_size) of its texts a step,
    # with weight replay_ratio: distilled toward the original body's pooled embeddings, or the masked-LM
    # loss through the checkpoint's own MLM head when it has one (mitigation.py)
    replay: str = ""
    replay_ratio: float = 0.5

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
            (self.ewc >= 0, "--ewc must be >= 0"),
            (
                0 < self.replay_ratio <= 4,
                "--replay-ratio must be in (0, 4] (replay texts per training example)",
            ),
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
        for flag, path in (("--reference", self.reference), ("--replay", self.replay)):
            _check_corpus(flag, path)

    def replace(self, **overrides) -> TrainConfig:
        known = {f.name for f in fields(self)}
        return TrainConfig(**{**asdict(self), **{k: v for k, v in overrides.items() if k in known}})

    def as_dict(self) -> dict:
        return asdict(self)

    def identity(self) -> dict:
        """The settings as part of a run key: fields added after runs were stored are left out at their
        defaults (those runs keep their keys), and so are settings that do nothing (a --reference without
        --ewc, a --replay-ratio without --replay); a class-weights, reference or replay file is named
        with a hash of its content."""
        fields_ = asdict(self)
        if not self.ewc:
            fields_["reference"] = ""
        if not self.replay:
            fields_["replay_ratio"] = LATER_FIELDS["replay_ratio"]
        for name, default in LATER_FIELDS.items():
            if fields_[name] == default:
                del fields_[name]
        for name in ("class_weights", "reference", "replay"):
            path = fields_.get(name)
            if path and path not in ("none", "balanced"):
                fields_[name] = f"{path}#{content_digest(path)}"
        return fields_


LATER_FIELDS = {
    "class_weights": "none",
    "label_smoothing": 0.0,
    "sampler": "random",
    "l2sp": 0.0,
    "ewc": 0.0,
    "reference": "",
    "replay": "",
    "replay_ratio": 0.5,
}


def content_digest(path: str) -> str:
    """12 hex digits of the SHA-256 of a file's bytes: a file named in a run key stands for its content."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12]


def _check_corpus(flag: str, path: str) -> None:
    """A --reference / --replay corpus must be a file with something in it (its texts are read later)."""
    if not path:
        return
    what = "give a text file (one text per line) or a CSV/TSV/JSONL/Parquet table with a text column"
    if not Path(path).is_file():
        raise TunebenchError(f"{flag} {path}: no such file; {what}")
    if Path(path).stat().st_size == 0:
        raise TunebenchError(f"{flag} {path}: the file is empty; {what}")


def _cuda_index(device: str) -> bool:
    """`cuda:N`: one GPU of several (a worker per GPU)."""
    kind, _, index = device.partition(":")
    return kind == "cuda" and index.isdigit()
