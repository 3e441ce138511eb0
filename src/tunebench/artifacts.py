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
