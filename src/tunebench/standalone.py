"""The standalone export layout: a directory plain transformers loads (`exporting.py` writes it).

  config.json, model.safetensors, tokenizer files          the whole model
  modeling_tunebench.py                                    when transformers has no class that computes it
  manifest.json                                            tunebench's own (layout "standalone")

Two forms of the weights. "stock": a transformers class (`AutoModelForTokenClassification` on BERT is
dropout + linear per token, exactly tunebench's head), its own key names (`bert.` -> `backbone.`,
`classifier.` -> `head.out.`: the manifest's `rename`). "custom": `modeling_tunebench.py`'s classes,
whose keys are tunebench's (`backbone.`, `head.out.`). Loading here never runs the export's code: the
encoder is rebuilt from its config and the tensors are read by name.
"""

from __future__ import annotations

import json
from pathlib import Path

from safetensors.torch import load_file
from torch import nn
from transformers import AutoConfig, AutoModel, AutoTokenizer

from .backbones import Backbone
from .backbones.text import drop_pooler
from .errors import TunebenchError
from .model import TaskModel

WEIGHTS = "model.safetensors"
LAYOUT = "standalone"


def is_standalone(manifest: dict) -> bool:
    return manifest.get("layout") == LAYOUT


def renamed(state: dict, rename: dict[str, str]) -> dict:
    """Keys with each prefix of `rename` replaced (stock names -> tunebench's, or back)."""
    out = {}
    for key, value in state.items():
        for old, new in rename.items():
            if key.startswith(old):
                key = new + key[len(old) :]
                break
        out[key] = value
    return out


def encoder_config(path: Path, info: dict):
    """The encoder's config: nested in a custom config, the config itself for a stock class."""
    config = json.loads((path / "config.json").read_text())
    inner = dict(config["backbone_config"]) if info["form"] == "custom" else config
    return AutoConfig.for_model(inner.pop("model_type"), **inner)


def load(path: Path, manifest: dict, task, strategy) -> tuple[Backbone, nn.Module]:
    """(backbone, model) of a standalone export, with tunebench's own classes."""
    info = manifest[LAYOUT]
    config = encoder_config(path, info)
    model = AutoModel.from_config(config)
    drop_pooler(model)
    tokenizer = AutoTokenizer.from_pretrained(path, config=config)  # config.json may name custom code
    backbone = Backbone(
        manifest["backbone"], str(path), model, tokenizer, manifest["max_length"], manifest["pooling"]
    )
    n_out = manifest.get("num_outputs", len(manifest["label_names"]))
    head = task.build_head(backbone.hidden_size, n_out, manifest["pooling"], manifest["dropout"])
    task_model = TaskModel(model, head)
    if info.get("prepare"):  # the strategy changes the architecture (adapters): rebuild it first
        task_model = strategy.prepare(task_model)
    state = renamed(load_file(str(path / WEIGHTS)), info.get("rename", {}))
    missing, unexpected = task_model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise TunebenchError(
            f"{path}: the weights do not fit the model ({len(missing)} missing, {len(unexpected)} unexpected); "
            "export it again with this tunebench version"
        )
    return backbone, task_model.eval()
