"""A strategy is a few hyperparameters (a dataclass) plus what it does to a model:
which parameters train, at which learning rates, and an optional per-epoch hook."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from ..errors import TunebenchError
from ..registry import Registry
from ..training.config import TrainConfig
from ..training.optim import decay_groups


@dataclass(frozen=True)
class Hints:
    """What `tunebench recommend` knows of a strategy before anything runs. The rates were measured on
    this project's 2-core CPU with all-MiniLM-L6-v2 on SST-2 sentences (~25 tokens); `advice` gives the
    score each rule of report/rules.py adds to this strategy (rule id -> change; absent: 0)."""

    train_rate: float | None = None  # training examples/s of one epoch; None: fits on cached features
    advice: dict[str, float] = field(default_factory=dict)


@dataclass
class Strategy:
    name: ClassVar[str]
    summary: ClassVar[str] = ""
    # "gradient": trained by the training loop; "estimator": an estimator fitted on frozen inputs
    kind: ClassVar[str] = "gradient"
    train_defaults: ClassVar[dict[str, Any]] = {}  # published-practice defaults, e.g. {"lr": 1e-3}
    uses_cached_features: ClassVar[bool] = False  # head-only: train on cached frozen pooled features
    from_scratch: ClassVar[bool] = False  # start from random weights instead of the checkpoint
    hints: ClassVar[Hints | None] = None  # None: `tunebench recommend` does not propose it
    ladder: ClassVar[int | None] = None  # position in the default ladder (None: only when asked for)
    curve: ClassVar[bool] = False  # in `tunebench curve`'s default set (frozen vs fine-tuned, cheapest first)
    # what the task must offer (Task.capabilities) -> why the strategy needs it, shown when it does not apply
    requires: ClassVar[dict[str, str]] = {}
    # False: the strategy ignores --feature-cols (it embeds each text of a pair on its own), so it does not
    # run on data that has them
    reads_feature_columns: ClassVar[bool] = True
    reads_text: ClassVar[bool] = True  # False: the `metadata` baseline (the feature columns alone)
    # --opt values that keep the strategy small on the tests' 2-layer, 32-wide models (tests/test_common.py)
    tiny_options: ClassVar[dict[str, str]] = {}

    # -- what the strategy does to the model -------------------------------------------------
    def prepare(self, model: nn.Module) -> nn.Module:
        """Freeze/unfreeze or inject modules; return the model to train. Default: head only."""
        freeze(model.backbone)
        return model

    def trainable_formula(self, model: nn.Module) -> int:
        """How many parameters `prepare(model)` leaves trainable, counted from the model's structure
        (the common test suite checks it against what actually trains). Default: the head only."""
        if type(self).prepare is not Strategy.prepare:
            raise NotImplementedError(f"{self.name}: declare trainable_formula(model) for the common tests")
        return n_params(model.head)

    def frozen_blocks(self, model: nn.Module) -> int:
        """How many bottom blocks (with the embeddings) `prepare` leaves frozen for the whole run. The
        runner runs them once per compare and trains the rest on their cached output (last-k: L - k);
        0: none, the whole model runs every step."""
        return 0

    def search_space(self, cfg: TrainConfig, num_layers: int) -> dict[str, tuple]:
        """What `compare --search` tunes around the resolved defaults `cfg`: name (a training setting or
        one of the strategy's options) -> ("log" | "float" | "int", low, high) or ("choice", values).
        The defaults must lie inside (the search's first trial is the default configuration).
        Gradient strategies: the learning rate on a log scale, 4x either side of the default, and the
        epochs; an estimator (features) chooses its own C on dev and has nothing more to search."""
        if self.kind != "gradient":
            return {}
        return {
            "lr": ("log", cfg.lr / 4, cfg.lr * 4),
            "epochs": ("int", max(1, cfg.epochs - 1), cfg.epochs + 2),
        }

    def param_groups(self, model: nn.Module, cfg: TrainConfig) -> list[dict]:
        return decay_groups(model.named_parameters(), cfg.lr, cfg.weight_decay)

    def on_epoch_start(self, model: nn.Module, epoch: int, cfg: TrainConfig) -> list[dict] | None:
        """Return new param groups to rebuild the optimiser, or None to keep it."""
        return None

    def evaluating(self, model: nn.Module) -> AbstractContextManager:
        """The context the model is evaluated in (LoRA: adapters merged into the weights); default none."""
        return nullcontext()

    def epoch_hook(self, cfg: TrainConfig):
        """The callable the training loop runs at each epoch start, or None if the strategy has none."""
        if type(self).on_epoch_start is Strategy.on_epoch_start:
            return None
        return lambda model, epoch: self.on_epoch_start(model, epoch, cfg)

    # -- export: the default saves only the tensors that trained, beside a reference to the backbone --
    def save(self, out: Path, model: nn.Module, tokenizer) -> None:
        """Write what predicting needs besides the manifest into `out` (safetensors, no pickle)."""
        trained = {n: p.detach().cpu().contiguous() for n, p in model.named_parameters() if p.requires_grad}
        save_file(trained, str(out / "trained.safetensors"))

    def backbone_source(self, out: Path, manifest: dict) -> str:
        """Where an export's backbone loads from: the pre-trained reference unless the export holds one."""
        return manifest["backbone"]

    def load(self, out: Path, model: nn.Module) -> nn.Module:
        """The exported model: the pre-trained one prepared as in training, with the saved tensors."""
        model = self.prepare(model)
        state = load_file(str(out / "trained.safetensors"))
        missing = set(state) - {n for n, _ in model.named_parameters()}
        if missing:
            raise TunebenchError(f"{out}: weights {sorted(missing)[:3]} do not fit the model; re-export")
        model.load_state_dict(state, strict=False)
        return model

    # -- settings -----------------------------------------------------------------------------
    def settings(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_options(cls, options: dict[str, str]) -> Strategy:
        """Build from `--opt name.field=value` strings, converting to each field's type."""
        known = {f.name: f for f in fields(cls)}
        kwargs = {}
        for key, raw in options.items():
            if key not in known:
                train = sorted(set(TrainConfig.__dataclass_fields__) - set(known))
                ownership = f"its own: {', '.join(known)}" if known else "none of its own"
                raise TunebenchError(
                    f"--opt {cls.name}.{key}: unknown option; {cls.name} takes {ownership}; "
                    f"and the training settings: {', '.join(train)}"
                )
            kwargs[key] = convert_option(raw, known[key].default, f"{cls.name}.{key}")
        return cls(**kwargs)


def convert_option(raw: str, default: Any, where: str) -> Any:
    """An `--opt where=raw` string as the type of `default` (bools: true/false/1/0/yes/no)."""
    if not isinstance(raw, str):
        return raw
    try:
        if isinstance(default, bool):
            if raw.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError
            return raw.lower() in ("true", "1", "yes")
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
    except ValueError:
        kind = {"bool": "true or false", "int": "an integer", "float": "a number"}.get(type(default).__name__)
        raise TunebenchError(f"--opt {where}={raw}: expected {kind}") from None
    return raw


def n_params(*modules: nn.Module) -> int:
    """Parameters of the modules, each tensor counted once."""
    seen = {id(p): p.numel() for m in modules for p in m.parameters()}
    return sum(seen.values())


def freeze(module: nn.Module) -> None:
    for p in module.parameters():
        p.requires_grad_(False)


def unfreeze(module: nn.Module) -> None:
    for p in module.parameters():
        p.requires_grad_(True)


STRATEGIES: Registry[type[Strategy]] = Registry("strategy")


def head_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().contiguous() for k, v in model.head.state_dict().items()}
