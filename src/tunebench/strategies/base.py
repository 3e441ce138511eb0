"""A strategy is a few hyperparameters (a dataclass) plus what it does to a model:
which parameters train, at which learning rates, and an optional per-epoch hook."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar

from torch import nn

from ..errors import TunebenchError
from ..registry import Registry
from ..training.config import TrainConfig
from ..training.optim import decay_groups


@dataclass
class Strategy:
    name: ClassVar[str]
    summary: ClassVar[str] = ""
    kind: ClassVar[str] = (
        "gradient"  # "gradient" (the training loop) or "features" (fit/predict on frozen features)
    )
    train_defaults: ClassVar[dict[str, Any]] = {}  # published-practice defaults, e.g. {"lr": 1e-3}
    save_mode: ClassVar[str] = (
        "delta"  # delta: trained tensors only | full: save_pretrained | peft: adapter dir
    )
    uses_cached_features: ClassVar[bool] = False  # head-only: train on cached frozen pooled features
    from_scratch: ClassVar[bool] = False  # start from random weights instead of the checkpoint

    # -- what the strategy does to the model -------------------------------------------------
    def prepare(self, model: nn.Module) -> nn.Module:
        """Freeze/unfreeze or inject modules; return the model to train. Default: head only."""
        freeze(model.backbone)
        return model

    def param_groups(self, model: nn.Module, cfg: TrainConfig) -> list[dict]:
        return decay_groups(model.named_parameters(), cfg.lr, cfg.weight_decay)

    def on_epoch_start(self, model: nn.Module, epoch: int, cfg: TrainConfig) -> list[dict] | None:
        """Return new param groups to rebuild the optimiser, or None to keep it."""
        return None

    def epoch_hook(self, cfg: TrainConfig):
        """The callable the training loop runs at each epoch start, or None if the strategy has none."""
        if type(self).on_epoch_start is Strategy.on_epoch_start:
            return None
        return lambda model, epoch: self.on_epoch_start(model, epoch, cfg)

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
                raise TunebenchError(
                    f"--opt {cls.name}.{key}: unknown option; {cls.name} takes: {', '.join(known) or 'none'}"
                )
            kwargs[key] = _convert(raw, known[key].default, f"{cls.name}.{key}")
        return cls(**kwargs)


def _convert(raw: str, default: Any, where: str) -> Any:
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
        raise TunebenchError(f"--opt {where}={raw}: expected a {type(default).__name__}") from None
    return raw


def freeze(module: nn.Module) -> None:
    for p in module.parameters():
        p.requires_grad_(False)


def unfreeze(module: nn.Module) -> None:
    for p in module.parameters():
        p.requires_grad_(True)


STRATEGIES: Registry[type[Strategy]] = Registry("strategy")
