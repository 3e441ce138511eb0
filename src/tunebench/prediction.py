"""Loading an export (`Predictor`) and `tunebench predict`: predictions for a file from any exported
strategy, in the task's own form (label + class probabilities, a score, word/tag pairs, answer + score)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file as load_np

from . import multitask_run, standalone
from .artifacts import read_manifest
from .data.columns import FeatureColumns
from .data.readers import load_table
from .errors import TunebenchError
from .extract import FrozenSource
from .model import TaskModel
from .run_inputs import RunInputs, frozen_inputs
from .strategies import STRATEGIES
from .strategies.features import ESTIMATOR_FILE
from .tasks import get_task
from .tasks.base import pool_groups
from .training.config import TrainConfig
from .training.loop import predict_logits, resolve_device


class Predictor:
    """A loaded export: `outputs(split)` / `predict_logits(split)` for any strategy. A multitask export
    (compare --tasks) holds several tasks: `task` names the one to predict (its head on the shared body)."""

    def __init__(self, path: str | Path, task: str | None = None):
        self.path = Path(path)
        m = self.manifest = read_manifest(self.path)
        if m.get("layout") == multitask_run.LAYOUT:
            self.manifest, self.backbone, self.model = multitask_run.load_multitask(self.path, m, task)
            self.task = get_task(self.manifest["task"])
            self.label_names = self.manifest["label_names"]
            self.strategy = STRATEGIES.get(m["strategy"]).from_options(m["strategy_settings"])
            self.estimator = None
            self.columns = _columns(self.manifest)
            return
        self.task = get_task(m["task"])
        self.label_names: list[str] = m["label_names"]
        self.strategy = STRATEGIES.get(m["strategy"]).from_options(m["strategy_settings"])
        trust = m.get("trust_remote_code", False)
        self.model = self.estimator = None
        # the feature columns the model reads beside the text, as fitted on its training data
        self.columns = _columns(m)
        if self.strategy.kind == "estimator":
            self.backbone = self.task.load_backbone(m["backbone"], trust, m["pooling"])
            n_classes = None if self.task.regression else len(self.label_names)
            self.estimator = self.task.frozen_estimator(self.strategy, n_classes, 0, "cpu")
            self.estimator.load_state(load_np(str(self.path / ESTIMATOR_FILE)), m.get("C", 0.0))
            return
        if standalone.is_standalone(m):  # a whole transformers model (compare --export)
            self.backbone, self.model = standalone.load(self.path, m, self.task, self.strategy)
            return
        source = self.strategy.backbone_source(self.path, m)
        self.backbone = self.task.load_backbone(source, trust, m["pooling"])
        n_out = m.get("num_outputs", len(self.label_names))
        head = self.task.head_for(self.backbone.hidden_size, n_out, m["pooling"], m["dropout"], self.columns)
        self.model = self.strategy.load(self.path, TaskModel(self.backbone.model, head)).eval()

    def outputs(self, split, batch_size: int = 128, device: str = "auto"):
        """(outputs, encoded split, per_example) for a split without labels: the model's raw outputs per
        row (per example for bi-encoder strategies), and the encoding the task needs to decode them."""
        m = self.manifest
        if self.columns is not None and getattr(split, "extra", None) is None:
            names = ", ".join(c.name for c in self.columns.columns)
            raise TunebenchError(
                f"{self.path}: this model also reads the feature columns {names}; give a split whose `extra` "
                "is Predictor.columns.transform(...) of them (tunebench predict reads them from the file)"
            )
        bundle = _Unlabelled(split, self.label_names)
        inputs = RunInputs(
            self.task, self.backbone, bundle, None, m["max_length"], m.get("long_text", "truncate")
        )
        enc = inputs.enc["test"]
        if self.estimator is not None:  # features: frozen inputs -> the fitted estimator
            source = FrozenSource(self.backbone, None, m["max_length"], batch_size, device)
            X = frozen_inputs(self.task, self.strategy, source, enc, split, m["pooling"], self.columns)
            return self.estimator.decision_function(X), enc, self.strategy.pairwise
        cfg = TrainConfig(eval_batch_size=batch_size, device=device)
        data = self.task.batches(enc, self.backbone)
        return predict_logits(self.model, data, cfg, resolve_device(device)), enc, False

    def predict_logits(self, split, batch_size: int = 128, device: str = "auto") -> np.ndarray | list:
        """Per-example outputs (chunk outputs pooled per text); token-level outputs (NER, QA) one
        (tokens, C) array per row, as `outputs` gives them (a QA context's windows are decoded
        together by the task, not averaged)."""
        out, enc, per_example = self.outputs(split, batch_size, device)
        return out if per_example or isinstance(out, list) else pool_groups(out, enc.groups)


def _columns(m: dict) -> FeatureColumns | None:
    return FeatureColumns.from_json(m["feature_columns"]) if "feature_columns" in m else None


class _Unlabelled:
    """A data bundle of one split to predict."""

    name = "predict"
    train = dev = None

    def __init__(self, split, label_names: list[str]):
        self.test = split
        self.label_names = label_names


def predict(
    model: str | Path,
    data: str,
    out: str | Path | None = None,
    text_col: str | None = None,
    text_pair_col: str | None = None,
    batch_size: int = 128,
    device: str = "auto",
    task: str | None = None,
) -> list[dict]:
    """One dict per input example (the task decides the fields: label + prob_<class>, score, tokens/tags,
    answer + score); written as CSV to `out` if given. `task`: which task of a multitask export."""
    manifest = read_manifest(Path(model))
    if manifest.get("layout") == multitask_run.LAYOUT:  # that task's part of the export (checked first)
        manifest = multitask_run.task_manifest(Path(model), manifest, task)
    task_name = task
    task = get_task(manifest["task"])
    try:  # the input first: a wrong file costs nothing, not a model load
        inputs = task.read_inputs(data, text_col=text_col, text_pair_col=text_pair_col)
        if "feature_columns" in manifest:  # transformed as in training, from the fitted parameters
            columns = FeatureColumns.from_json(manifest["feature_columns"])
            inputs.extra = columns.transform(columns.read(load_table(data)))
    except TunebenchError as err:  # say what the export expects: a tagger wants words, QA questions ...
        raise TunebenchError(f"{err} (the export in {model} is a {task.name} model)") from None
    predictor = Predictor(model, task_name)
    outputs, enc, per_example = predictor.outputs(inputs, batch_size, device)
    rows = task.predictions(outputs, enc if not per_example else None, inputs, predictor.label_names)
    if out is not None:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        with open(out, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=["row", *rows[0]] if rows else ["row"])
            w.writeheader()
            for i, r in enumerate(rows, 1):
                w.writerow({"row": i, **r})
    return rows
