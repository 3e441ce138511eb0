"""Saving a finished run so it predicts later, and loading it back. Safetensors + JSON, no pickle.

Layouts (all with manifest.json):
  features  classifier.safetensors                       + backbone reference
  delta     trained.safetensors (only what trained)       + backbone reference   (head, last-k, bitfit, adapters)
  full      backbone/ (save_pretrained + tokenizer), head.safetensors             (full, llrd, gradual, scratch)
  peft      adapter/ (peft save_pretrained), head.safetensors + backbone reference (lora, prefix)
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import load_file as load_np
from safetensors.numpy import save_file as save_np
from safetensors.torch import load_file, save_file

from .errors import TunebenchError

MANIFEST = "manifest.json"


def dir_size(path: Path) -> int:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


def _head_state(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().contiguous() for k, v in model.head.state_dict().items()}


def save_artifact(out: Path, manifest: dict, strategy, model=None, backbone=None) -> int:
    """Write the run's artifact into `out`; returns its size in bytes."""
    out.mkdir(parents=True, exist_ok=True)
    mode = "features" if strategy.kind == "features" else strategy.save_mode
    manifest = {**manifest, "save_mode": mode}
    if mode == "features":
        save_np(
            {k: np.ascontiguousarray(v) for k, v in strategy.state().items()},
            str(out / "classifier.safetensors"),
        )
        manifest["C"] = float(strategy.C_)
    elif mode == "delta":
        trained = {n: p.detach().cpu().contiguous() for n, p in model.named_parameters() if p.requires_grad}
        save_file(trained, str(out / "trained.safetensors"))
    elif mode == "full":
        model.backbone.save_pretrained(out / "backbone", safe_serialization=True)
        backbone.tokenizer.save_pretrained(out / "backbone")
        save_file(_head_state(model), str(out / "head.safetensors"))
    elif mode == "peft":
        model.backbone.save_pretrained(out / "adapter")
        save_file(_head_state(model), str(out / "head.safetensors"))
    else:
        raise ValueError(f"unknown save mode {mode}")
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2))
    return dir_size(out)


def read_manifest(path: Path) -> dict:
    file = Path(path) / MANIFEST
    if not file.is_file():
        raise TunebenchError(
            f"{path}: not a tunebench export (no {MANIFEST}); export one with compare --export DIR"
        )
    return json.loads(file.read_text())


class Predictor:
    """A loaded export: `predict_logits(split)` for any strategy."""

    def __init__(self, path: str | Path):
        from .strategies import STRATEGIES
        from .tasks import get_task

        self.path = Path(path)
        m = self.manifest = read_manifest(self.path)
        self.task = get_task(m["task"])
        self.label_names: list[str] = m["label_names"]
        self.strategy = STRATEGIES.get(m["strategy"]).from_options(m["strategy_settings"])
        mode = m["save_mode"]
        trust = m.get("trust_remote_code", False)
        if mode == "full":
            self.backbone = self.task.load_backbone(str(self.path / "backbone"), trust, m["pooling"])
        else:
            self.backbone = self.task.load_backbone(m["backbone"], trust, m["pooling"])
        self.model = None
        if mode == "features":
            self.strategy.load_state(load_np(str(self.path / "classifier.safetensors")), m["C"])
            return
        from .model import TaskModel

        n_out = m.get("num_outputs", len(self.label_names))
        head = self.task.build_head(self.backbone.hidden_size, n_out, m["pooling"], m["dropout"])
        model = TaskModel(self.backbone.model, head)
        if mode == "delta":
            model = self.strategy.prepare(model)
            state = load_file(str(self.path / "trained.safetensors"))
            missing = set(state) - {n for n, _ in model.named_parameters()}
            if missing:
                raise TunebenchError(
                    f"{self.path}: weights {sorted(missing)[:3]} do not fit the model; re-export"
                )
            model.load_state_dict(state, strict=False)
        elif mode == "peft":
            from peft import PeftModel

            model.backbone = PeftModel.from_pretrained(self.backbone.model, str(self.path / "adapter"))
            head.load_state_dict(load_file(str(self.path / "head.safetensors")))
        else:  # full
            head.load_state_dict(load_file(str(self.path / "head.safetensors")))
        self.model = model.eval()

    def outputs(self, split, batch_size: int = 128, device: str = "auto"):
        """(outputs, encoded split, per_example) for a split without labels: the model's raw outputs per
        row (per example for bi-encoder strategies), and the encoding the task needs to decode them."""
        from types import SimpleNamespace

        from .runner import Context
        from .training.config import TrainConfig
        from .training.loop import predict_logits, resolve_device

        m = self.manifest
        bundle = SimpleNamespace(
            name="predict", train=None, dev=None, test=split, label_names=self.label_names
        )
        ctx = Context(self.task, self.backbone, bundle, None, m["max_length"], m.get("long_text", "truncate"))
        cfg = TrainConfig(eval_batch_size=batch_size, device=device)
        if self.model is None:  # features: the strategy reads frozen features and applies its arrays
            X = self.strategy.inputs(ctx, "test", cfg, m["pooling"])
            return self.strategy.decision(X), ctx.enc["test"], self.strategy.per_example_inputs
        return (
            predict_logits(self.model, ctx.batches("test"), cfg, resolve_device(device)),
            ctx.enc["test"],
            False,
        )

    def predict_logits(self, split, batch_size: int = 128, device: str = "auto") -> np.ndarray:
        """Per-example outputs (chunk outputs pooled per text)."""
        from .tasks.base import pool_groups

        out, enc, per_example = self.outputs(split, batch_size, device)
        return out if per_example else pool_groups(out, enc.groups)
