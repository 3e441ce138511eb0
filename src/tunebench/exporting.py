"""`compare --export DIR`: the best run as a directory that stands on its own.

Text models of gradient strategies become a whole transformers model (standalone.py's layout): a
transformers class where one computes exactly what tunebench trained (BERT token classification and
QA heads are tunebench's), else `modeling_tunebench.py`'s classes shipped beside the weights and named
in config.json's `auto_map`. LoRA is merged into the weights; its peft adapter is kept in `adapter/`
too (with the hub id as its base), the small form. Every export is checked before it is written: the
transformers model's outputs must equal tunebench's on a batch, or the export fails.
Prefix tuning (no merged form), frozen features and image models keep tunebench's layout; their
peft adapter, if any, also names the hub id. Every export gets a model card (README.md).
"""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import torch
import transformers
from torch import nn

from . import modeling_tunebench
from .artifacts import MANIFEST, read_manifest
from .backbones.text import hub_id
from .errors import TunebenchError
from .export_card import model_card
from .prediction import Predictor
from .standalone import LAYOUT, renamed
from .strategies import STRATEGIES
from .tasks import get_task

TOLERANCE = 1e-4  # largest |difference| of outputs allowed between tunebench and the exported model


def export_run(src: Path, dest: Path, summary: dict | None = None) -> None:
    """Write run `src`'s model to `dest` (which must not exist)."""
    manifest = read_manifest(src)
    task = get_task(manifest["task"])
    predictor = Predictor(src) if has_whole_form(src, manifest, task) else None
    if predictor is None:
        shutil.copytree(src, dest)
        _point_adapter_at_hub(dest / "adapter", manifest)
        info = None
    else:
        dest.mkdir(parents=True)
        info = write_whole(predictor, task, manifest, dest)
        if (src / "adapter").is_dir():  # lora: the adapter as trained, for peft users
            shutil.copytree(src / "adapter", dest / "adapter")
            shutil.copy(src / "head.safetensors", dest / "adapter" / "head.safetensors")
            _point_adapter_at_hub(dest / "adapter", manifest)
        manifest = {**manifest, "layout": LAYOUT, LAYOUT: info}
        (dest / MANIFEST).write_text(json.dumps(manifest, indent=2))
    card = model_card(manifest, task, info, summary or {}, adapter=(dest / "adapter").is_dir())
    (dest / "README.md").write_text(card)


def has_whole_form(src: Path, manifest: dict, task) -> bool:
    """A text task's gradient-trained model, except prefix tuning (prompts fed to every layer: no
    weights to merge them into); not with feature columns (transformers models read text only)."""
    if task.auto_class is None or STRATEGIES.get(manifest["strategy"]).kind != "gradient":
        return False
    if "feature_columns" in manifest:
        return False
    config = src / "adapter" / "adapter_config.json"
    return not config.is_file() or json.loads(config.read_text()).get("peft_type") == "LORA"


def write_whole(predictor: Predictor, task, manifest: dict, dest: Path) -> dict:
    """The run's model as a transformers model in `dest`; returns the manifest's `standalone` entry."""
    ours = predictor.model.eval()
    bottleneck = adapter_width(ours)
    stock = None if bottleneck else stock_model(task, ours, manifest)
    if stock is not None:
        model, rename = stock
        info = {"form": "stock", "class": type(model).__name__, "rename": rename}
    else:
        model = custom_model(task, ours, manifest, bottleneck)
        shutil.copy(modeling_tunebench.__file__, dest / "modeling_tunebench.py")
        info = {"form": "custom", "class": type(model).__name__, "prepare": bool(bottleneck)}
    check_outputs(model, ours, task.token_level)
    model.save_pretrained(dest)
    tokenizer = copy.copy(predictor.backbone.tokenizer)
    tokenizer.model_max_length = manifest["max_length"]  # pipelines truncate where training did
    tokenizer.save_pretrained(dest)
    return info


def label_config(config, task, manifest: dict) -> None:
    names = manifest["label_names"]
    config.num_labels = manifest.get("num_outputs", len(names))
    if task.regression:
        config.problem_type = "regression"
    elif config.num_labels == len(names):
        config.id2label = dict(enumerate(names))
        config.label2id = {n: i for i, n in enumerate(names)}


def adapter_width(model: nn.Module) -> int:
    """The bottleneck of Houlsby adapters in the model (the `adapters` strategy), 0 if none."""
    for module in model.modules():
        if type(module).__name__ == "Adapted":
            return module.down.out_features
    return 0


def stock_model(task, ours: nn.Module, manifest: dict):
    """(transformers model, rename) when the task's stock class for this encoder holds exactly our
    tensors under other names (BERT token classification: `bert.*` + `classifier.*`), else None."""
    config = copy.deepcopy(ours.backbone.config)
    label_config(config, task, manifest)
    try:
        model = getattr(transformers, task.auto_class).from_config(config)
    except ValueError:  # no such head for this architecture
        return None
    prefix = model.base_model_prefix + "."
    theirs = model.state_dict()
    heads = {k.rsplit(".", 1)[0] for k in theirs if not k.startswith(prefix)}
    if len(heads) != 1:
        return None
    rename = {prefix: "backbone.", heads.pop() + ".": "head.out."}
    state = ours.state_dict()
    if set(renamed(theirs, rename)) != set(state):  # e.g. a pooler the stock head uses and we do not
        return None
    model.load_state_dict(renamed(state, {v: k for k, v in rename.items()}))
    return model.eval(), rename


def custom_model(task, ours: nn.Module, manifest: dict, bottleneck: int) -> nn.Module:
    """`modeling_tunebench`'s class for the task, holding our tensors under our names."""
    cls_name = task.auto_class.replace("AutoModel", "Tunebench")
    config = modeling_tunebench.TunebenchConfig(
        backbone_config=ours.backbone.config.to_dict(),
        pooling=manifest["pooling"],
        head_dropout=manifest["dropout"],
        adapter_bottleneck=bottleneck,
    )
    label_config(config, task, manifest)
    config.auto_map = {
        "AutoConfig": "modeling_tunebench.TunebenchConfig",
        task.auto_class: f"modeling_tunebench.{cls_name}",
    }
    model = getattr(modeling_tunebench, cls_name)(config)
    model.load_state_dict(ours.state_dict(), strict=True)
    return model.eval()


def check_outputs(model: nn.Module, ours: nn.Module, token_level: bool) -> None:
    """The exported model must compute what tunebench does: one batch (one row padded) through both."""
    config = ours.backbone.config
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(5, config.vocab_size, (2, 12), generator=gen)
    mask = torch.ones_like(ids)
    mask[1, 7:] = 0
    with torch.no_grad():
        expected = ours(input_ids=ids, attention_mask=mask)
        out = model(input_ids=ids, attention_mask=mask)
    got = (
        out.logits
        if getattr(out, "logits", None) is not None
        else torch.stack([out.start_logits, out.end_logits], -1)
    )
    if token_level:  # padded positions are not outputs (QA masks them; transformers does not)
        keep = mask.bool()
        expected, got = expected[keep], got[keep]
    diff = (expected - got).abs().max().item()
    if diff > TOLERANCE:
        raise TunebenchError(
            f"export: the transformers model's outputs differ from tunebench's by {diff:.2e}; "
            "this is a tunebench bug, please report it (the run's own artifact is intact)"
        )


def _point_adapter_at_hub(adapter: Path, manifest: dict) -> None:
    """peft records the absolute path the base model was loaded from; name its hub id when known."""
    config = adapter / "adapter_config.json"
    base = hub_id(manifest["backbone"])
    if config.is_file() and base:
        fields = json.loads(config.read_text())
        fields["base_model_name_or_path"] = base
        config.write_text(json.dumps(fields, indent=2))
