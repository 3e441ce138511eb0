"""An export's files: every layout holds `manifest.json` (what rebuilding the run's model needs); the
strategy writes the rest (`Strategy.save`, `Features.save_estimator`) as safetensors + JSON, no pickle:

  features  classifier.safetensors                       + backbone reference
  default   trained.safetensors (only what trained)       + backbone reference   (head, last-k, bitfit, adapters)
  whole     backbone/ (save_pretrained + tokenizer), head.safetensors             (full, llrd, gradual, scratch)
  peft      adapter/ (peft save_pretrained), head.safetensors + backbone reference (lora, prefix)
"""

from __future__ import annotations

import json
from pathlib import Path

from ._version import __version__
from .errors import TunebenchError

MANIFEST = "manifest.json"


def dir_size(path: Path) -> int:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


def read_manifest(path: Path) -> dict:
    file = Path(path) / MANIFEST
    if not file.is_file():
        raise TunebenchError(
            f"{path}: not a tunebench export (no {MANIFEST}); export one with compare --export DIR"
        )
    return json.loads(file.read_text())


def manifest(inputs, strategy, cfg, pooling: str, layers: str = "last") -> dict:
    """What loading an export needs to rebuild the run's model and its inputs."""
    return {
        "tunebench_version": __version__,
        **({"selection": inputs.selection} if inputs.selection != inputs.task.primary_metric else {}),
        "task": inputs.task.name,
        "strategy": strategy.name,
        "strategy_settings": strategy.settings(),
        "backbone": inputs.backbone.name,
        "trust_remote_code": inputs.backbone.trust_remote_code,
        "pooling": pooling,
        "layers": layers,
        "max_length": inputs.max_length,
        "long_text": inputs.long_text,
        "dropout": cfg.dropout,
        "label_names": inputs.bundle.label_names,
        "num_outputs": inputs.task.num_outputs(inputs.bundle),
        # the feature columns' fitted parameters (JSON, no pickle): predict transforms its input with them
        **({"feature_columns": inputs.columns.to_json()} if inputs.columns is not None else {}),
    }


def write_artifact(out: Path, fields: dict, save) -> int:
    """`save(out)` writes the strategy's files and returns extra manifest fields; then the manifest.
    Returns the artifact's size in bytes."""
    out.mkdir(parents=True, exist_ok=True)
    extra = save(out) or {}
    (out / MANIFEST).write_text(json.dumps({**fields, **extra}, indent=2))
    return dir_size(out)
