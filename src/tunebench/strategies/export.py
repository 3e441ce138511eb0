"""The two export layouts besides the default (trained tensors only, in `base.Strategy.save`): the whole
backbone (`WholeModelExport`) and a peft adapter directory (`PeftExport`), each with the head beside it."""

from __future__ import annotations

from pathlib import Path

from peft import PeftModel
from safetensors.torch import load_file, save_file
from torch import nn

from .base import head_state


class WholeModelExport:
    """Strategies that change every weight: backbone/ (save_pretrained + tokenizer) and head.safetensors."""

    def save(self, out: Path, model: nn.Module, tokenizer) -> None:
        model.backbone.save_pretrained(out / "backbone", safe_serialization=True)
        if tokenizer is not None:
            tokenizer.save_pretrained(out / "backbone")
        save_file(head_state(model), str(out / "head.safetensors"))

    def backbone_source(self, out: Path, manifest: dict) -> str:
        return str(Path(out) / "backbone")

    def load(self, out: Path, model: nn.Module) -> nn.Module:
        model.head.load_state_dict(load_file(str(Path(out) / "head.safetensors")))
        return model


class PeftExport:
    """peft strategies: adapter/ (peft save_pretrained) and head.safetensors, backbone by reference."""

    def save(self, out: Path, model: nn.Module, tokenizer) -> None:
        model.backbone.save_pretrained(out / "adapter")
        save_file(head_state(model), str(out / "head.safetensors"))

    def load(self, out: Path, model: nn.Module) -> nn.Module:
        model.backbone = PeftModel.from_pretrained(model.backbone, str(Path(out) / "adapter"))
        model.head.load_state_dict(load_file(str(Path(out) / "head.safetensors")))
        return model
