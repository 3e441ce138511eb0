"""The image-classification task end to end on a tiny CNN and a synthetic red-vs-blue ImageFolder.

The tiny CNN is registered through `register_image_backbone` (the same ImageBackbone record that
vision.py builds for EfficientNet-Lite0), so the runner, strategies, export and predict run their real
code paths in seconds. The slow test runs the packaged Lite0 on the real Hymenoptera zip.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import ladder as ladder_of
from safetensors.numpy import load_file
from torch import nn

import tunebench
from tunebench.backbones import embeddings_module, encoder_layers
from tunebench.cli import main
from tunebench.data import DataConfig
from tunebench.errors import TunebenchError
from tunebench.model import TaskModel
from tunebench.store import RunStore
from tunebench.strategies import STRATEGIES
from tunebench.tasks import get_task
from tunebench.tasks.image_classification import load_image_model, register_image_backbone
from tunebench.tasks.image_classification.batches import ImageBatches
from tunebench.tasks.image_classification.tiny import COLORS, save_image, tiny_backbone
from tunebench.tasks.image_classification.tiny import TINY_CNN as TINY
from tunebench.training.config import TrainConfig
from tunebench.training.loop import fit

IMG = get_task("image-classification")
ALL = [n for n in STRATEGIES.names() if IMG.applies(STRATEGIES.get(n)) is None]
FAST = {"epochs": 2, "batch_size": 8}
HYMENOPTERA = Path(__file__).resolve().parents[2] / "shared" / "data" / "images" / "hymenoptera_data.zip"


register_image_backbone(TINY, tiny_backbone)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """train/{red,blue}/ 12 each + one unreadable file, val/{red,blue}/ 6 each."""
    root = tmp_path_factory.mktemp("red-blue")
    rng = np.random.default_rng(0)
    for split, n in (("train", 12), ("val", 6)):
        for cls, color in COLORS.items():
            for i in range(n):
                save_image(root / split / cls / f"{cls}{i:02d}.png", color, rng)
    (root / "train" / "red" / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    return root


@pytest.fixture(scope="module")
def ladder():
    out, _, rows = ladder_of("image-classification")
    return out, rows


def _run_dir(out: Path, rows: list[dict], name: str) -> Path:
    return out / "runs" / next(r["best_key"] for r in rows if r["strategy"] == name)


# ----------------------------------------------------------------------------- the ladder


def test_image_ladder_is_the_text_methods_that_fit_a_cnn():
    assert {"features", "head", "last-k", "full", "llrd", "gradual", "bitfit", "lora", "scratch"} <= set(ALL)
    assert "adapters" not in ALL and "prefix" not in ALL
    assert IMG.default_model == "efficientnet-lite0"


def test_features_learns_red_vs_blue(ladder):
    _, rows = ladder
    assert next(r for r in rows if r["strategy"] == "features")["dev_mean"] == 1.0


def test_head_export_holds_only_the_head(ladder):
    out, rows = ladder
    trained = load_file(str(_run_dir(out, rows, "head") / "trained.safetensors"))
    assert trained and all(k.startswith("head.") for k in trained)


# ----------------------------------------------------------------------------- what trains


def _setup(folder):
    backbone = load_image_model(TINY)
    bundle = IMG.load(DataConfig(data=str(folder)))
    data = {s: IMG.batches(IMG.encode(backbone, getattr(bundle, s), 32), backbone) for s in ("train", "dev")}
    return backbone, bundle, data


@pytest.mark.parametrize("name", ["head", "last-k", "bitfit", "lora"])
def test_frozen_weights_and_batch_norm_statistics_stay_bit_identical(folder, name):
    backbone, bundle, data = _setup(folder)
    strategy = STRATEGIES.get(name)()
    torch.manual_seed(0)
    head = IMG.build_head(backbone.hidden_size, 2, "mean", 0.1)
    model = strategy.prepare(TaskModel(backbone.fresh_model(), head))
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    trainable = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    buffers = {n: b.clone() for n, b in model.named_buffers()}
    cfg = TrainConfig(epochs=1, batch_size=8, lr=1e-2, device="cpu")
    evaluate = lambda out: IMG.metrics(out, bundle.dev.labels, bundle.label_names)  # noqa: E731
    fit(model, strategy.param_groups(model, cfg), data["train"], data["dev"], IMG, evaluate, cfg, 0)
    params = dict(model.named_parameters())
    assert frozen and all(torch.equal(params[n], v) for n, v in frozen.items())
    assert all(torch.equal(b, buffers[n]) for n, b in model.named_buffers())  # BN statistics fixed
    moved = [n for n, v in trainable.items() if not torch.equal(params[n], v)]
    assert any(n.startswith("head.") for n in moved)
    if name != "head":
        assert any(n.startswith("backbone.") for n in moved)


def test_per_layer_strategies_see_stem_and_stages():
    backbone = load_image_model(TINY)
    blocks = backbone.model.image_blocks()
    assert len(blocks) == 4 and backbone.num_layers == 3
    layers = encoder_layers(backbone.model)
    assert [id(m) for m in layers] == [id(m) for m in blocks[1:]]
    assert embeddings_module(backbone.model) is blocks[0]
    model = backbone.model
    model.train()
    assert all(not m.training for m in model.modules() if isinstance(m, nn.BatchNorm2d))
    scratch = backbone.random_model(0).train()  # from random weights BN must learn its statistics
    assert all(m.training for m in scratch.modules() if isinstance(m, nn.BatchNorm2d))
    assert not torch.equal(scratch.net.stem[0].weight, model.net.stem[0].weight)


def test_train_batches_are_seeded_and_eval_batches_deterministic(folder):
    backbone, bundle, data = _setup(folder)
    train = data["train"]
    a = [b["pixel_values"] for b in train.train_batches(8, seed=3)]
    b = [b["pixel_values"] for b in train.train_batches(8, seed=3)]
    c = [b["pixel_values"] for b in train.train_batches(8, seed=4)]
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not all(torch.equal(x, y) for x, y in zip(a, c))
    assert a[0].shape == (8, 3, 32, 32) and a[0].dtype == torch.float32
    idx, batch = next(data["dev"].eval_batches(5))
    assert list(idx) == [0, 1, 2, 3, 4] and batch["pixel_values"].shape == (5, 3, 32, 32)
    assert torch.equal(batch["labels"], torch.as_tensor(bundle.dev.labels[:5]))
    again = ImageBatches(data["dev"].items, None, 32, backbone.mean, backbone.std)
    assert torch.equal(next(again.eval_batches(5))[1]["pixel_values"], batch["pixel_values"])


# ----------------------------------------------------------------------------- data


def test_unreadable_file_is_skipped_with_a_count(folder, caplog):
    with caplog.at_level(logging.WARNING, logger="tunebench"):
        bundle = IMG.load(DataConfig(data=str(folder)))
    assert bundle.label_names == ["blue", "red"]
    assert len(bundle.train) == 24 and bundle.train.skipped == 1
    assert bundle.dev is not None and len(bundle.dev) == 12 and bundle.test is None
    assert "1 unreadable files skipped" in caplog.text and "broken.jpg" in caplog.text
    assert "1 unreadable files skipped" in bundle.describe()


def test_subsamples_are_seeded_and_stratified(folder):
    cfg = DataConfig(data=str(folder / "train"), train_size=8, eval_size=4, dev_fraction=0.25, seed=1)
    bundle = IMG.load(cfg)  # no val/ folder: dev is split off train
    assert len(bundle.train) == 8 and np.bincount(bundle.train.labels).tolist() == [4, 4]
    assert len(bundle.dev) == 4 and np.bincount(bundle.dev.labels).tolist() == [2, 2]
    assert not set(bundle.train.names) & set(bundle.dev.names)
    assert IMG.load(cfg).fingerprint() == bundle.fingerprint()
    assert IMG.load(DataConfig(data=str(folder / "train"), train_size=8, seed=2)).fingerprint() != (
        bundle.fingerprint()
    )


def test_named_dataset_without_its_files_says_where_it_looked(tmp_path):
    with pytest.raises(TunebenchError, match="hymenoptera_data.zip"):
        IMG.load(DataConfig(data="hymenoptera", data_dir=str(tmp_path)))
    from tunebench.comparison import default_task

    assert default_task(DataConfig(data="cifar10-subset")) == "image-classification"


def test_features_other_than_the_pooled_last_stage_are_refused(folder, tmp_path):
    with pytest.raises(TunebenchError, match="layers=last"):
        tunebench.compare(
            DataConfig(data=str(folder)),
            task="image-classification",
            model=TINY,
            strategies=["features"],
            options={"features": {"layers": "second-last"}},
            out=tmp_path,
            show=False,
        )


# ----------------------------------------------------------------------------- CLI


def test_cli_predict_on_a_flat_folder_writes_file_label_probabilities(ladder, tmp_path, caplog):
    out, rows = ladder
    flat = tmp_path / "flat"
    rng = np.random.default_rng(7)
    for i in range(3):
        for cls, color in COLORS.items():
            save_image(flat / f"{cls}-{i}.png", color, rng)
    (flat / "notes.txt").write_text("not an image")
    preds = tmp_path / "preds.csv"
    model = str(_run_dir(out, rows, "features"))
    with caplog.at_level(logging.WARNING, logger="tunebench"):
        assert main(["-q", "predict", "--model", model, "--data", str(flat), "--out", str(preds)]) == 0
    assert "1 files skipped" in caplog.text and "notes.txt" in caplog.text
    with open(preds) as f:
        table = list(csv.DictReader(f))
    assert list(table[0]) == ["row", "file", "label", "prob_blue", "prob_red"]
    assert len(table) == 6
    for r in table:
        assert r["label"] == r["file"].split("-")[0]
        assert abs(float(r["prob_blue"]) + float(r["prob_red"]) - 1) < 1e-5


def test_cli_strategies_says_why_adapters_and_prefix_do_not_apply(capsys):
    assert main(["strategies", "--task", "image-classification"]) == 0
    text = capsys.readouterr().out
    assert "adapters: Houlsby adapters" in text and "prefix: prefix tuning" in text
    assert text.count("attention") >= 2


# ----------------------------------------------------------------------------- real data


@pytest.mark.slow
@pytest.mark.skipif(
    not HYMENOPTERA.is_file(), reason="../shared/data/images/hymenoptera_data.zip is not present"
)
def test_lite0_features_on_hymenoptera(tmp_path):
    tunebench.compare(
        DataConfig(data="hymenoptera", data_dir=str(HYMENOPTERA.parents[1])),
        strategies=["features"],
        out=tmp_path,
        show=False,
    )
    (record,) = RunStore(tmp_path).all()
    assert record["status"] == "ok" and record["model"] == "efficientnet-lite0"
    assert record["sizes"] == {"train": 245, "dev": 153}
    assert record["dev_metrics"]["accuracy"] > 0.85
