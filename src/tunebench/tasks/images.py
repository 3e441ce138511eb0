"""Image classification: an ImageFolder (directory or .zip) -> a pre-trained CNN -> dropout -> linear.

The data side reuses `data/images.py` (load-time checks of every file, PIL transforms) and the model
side `vision.py` (EfficientNet-Lite0 by default, whose `model(images)` gives pooled (B, D) features),
adapted to what the runner, the training loop and the strategies expect of a backbone in
`tasks/image_model.py`. This module holds the data bundle, the batches and the task.

Batch norm: a pre-trained backbone keeps its BN layers in inference mode while fine-tuning (running
statistics fixed, as the Keras transfer-learning guide recommends for small data). That keeps
frozen parts of the network exactly frozen, and the delta / peft exports (which store only trained
parameters, not BN statistics) predict exactly what the run measured. `scratch` starts from random
weights, so there BN trains normally.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import TunebenchError
from .base import TASKS, Encoded, Task
from .classification import TextClassification
from .image_model import (  # noqa: F401  (register_image_backbone: the public hook, re-exported)
    load_image_model,
    register_image_backbone,
)

log = logging.getLogger("tunebench")

MAX_DECODE_THREADS = 8
IMAGE_LADDER = ["features", "head", "last-k", "full", "llrd", "gradual", "bitfit", "lora", "scratch"]


# ----------------------------------------------------------------------------- data


@dataclass
class ImageItems:
    """One split: image references, their labels (None for prediction inputs) and display names."""

    items: list  # ImageRef: a file path or (zip path, member)
    labels: np.ndarray | None
    names: list[str]  # relative to the folder / inside the zip: fingerprint and prediction output
    source: str = ""
    skipped: int = 0

    def __len__(self) -> int:
        return len(self.items)

    def subset(self, idx) -> ImageItems:
        labels = None if self.labels is None else self.labels[np.asarray(idx, dtype=np.int64)]
        return ImageItems(
            [self.items[i] for i in idx], labels, [self.names[i] for i in idx], self.source, self.skipped
        )


@dataclass
class ImageBundle:
    name: str
    train: ImageItems
    dev: ImageItems
    test: ImageItems | None
    label_names: list[str]
    regression: bool = False

    @property
    def num_labels(self) -> int:
        return len(self.label_names)

    def fingerprint(self) -> str:
        """Hash of the class names and each split's item names and labels (not where the data lives)."""
        h = hashlib.sha256(json.dumps(self.label_names).encode())
        for name in ("train", "dev", "test"):
            s = getattr(self, name)
            h.update(json.dumps([name, None if s is None else [s.names, s.labels.tolist()]]).encode())
        return h.hexdigest()[:16]

    def describe(self) -> str:
        parts = [f"{n} {len(getattr(self, n))}" for n in ("train", "dev", "test") if getattr(self, n)]
        skipped = sum(getattr(self, n).skipped for n in ("train", "dev", "test") if getattr(self, n))
        note = f" · {skipped} unreadable files skipped" if skipped else ""
        return f"{self.name}: " + " · ".join(parts) + f" images · {self.num_labels} classes{note}"


def _display_name(ref, root: str) -> str:
    if isinstance(ref, tuple):
        return ref[1]
    return Path(os.path.relpath(ref, root)).as_posix() if os.path.isdir(root) else Path(ref).name


def _items(split, class_names: list[str], root: str, source: str, names_of=None) -> ImageItems:
    """An ImageSplit from data/images.py -> ImageItems, labels mapped onto `class_names`."""
    labels = np.asarray(split.labels, dtype=np.int64)
    if names_of is not None:  # a separate --dev/--test folder: its own class list, remapped onto train's
        index = {n: i for i, n in enumerate(class_names)}
        unknown = sorted({names_of[i] for i in labels} - set(index))
        if unknown:
            raise TunebenchError(
                f"{source}: classes not in train: {', '.join(unknown)}; add train images for them or "
                "remove those folders"
            )
        labels = np.asarray([index[names_of[i]] for i in labels], dtype=np.int64)
    names = [_display_name(r, root) for r in split.items]
    return ImageItems(list(split.items), labels, names, source, split.skipped)


def _warn_skipped(source: str, split_name: str, split) -> None:
    if split.skipped:
        log.warning(
            "%s: %d unreadable files skipped in %s (e.g. %s)",
            source,
            split.skipped,
            split_name,
            ", ".join(split.skipped_examples),
        )


def _resolve(cfg) -> tuple[str, str]:
    """(path of the folder or zip, dataset name) for a named image dataset or a path."""
    from ..data.named import DATASETS, dataset_names, get_dataset, locate

    data = cfg.data
    if data in DATASETS and not os.path.exists(data):
        ds = get_dataset(data)
        if ds.task != "image-classification":
            raise TunebenchError(
                f"dataset '{data}' is for {ds.task}, not image-classification; pass --task {ds.task}"
            )
        return str(next(iter(locate(ds, cfg.data_dir).values()))), ds.name
    if os.path.exists(data):
        return data, Path(data.rstrip("/\\")).name.removesuffix(".zip")
    raise TunebenchError(
        f"unknown image dataset '{data}': not a registered name "
        f"({', '.join(dataset_names('image-classification'))}) and no folder or .zip at that path"
    )


def load_images(cfg) -> ImageBundle:
    """Read, split (seeded, stratified) and subsample an image dataset described by a DataConfig."""
    from ..data.images import load_image_folder
    from ..data.text import _take

    path, name = _resolve(cfg)
    data = load_image_folder(path)
    classes = data.class_names
    for split_name, split in data.splits.items():
        _warn_skipped(data.source, split_name, split)
    train = _items(data.splits["train"], classes, path, data.source)
    dev = _items(data.splits["dev"], classes, path, data.source) if "dev" in data.splits else None
    test = _items(data.splits["test"], classes, path, data.source) if "test" in data.splits else None
    for flag, value in (("dev", cfg.dev), ("test", cfg.test)):
        if value:
            extra = load_image_folder(value)
            if set(extra.splits) != {"train"}:
                raise TunebenchError(
                    f"{extra.source}: --{flag} takes a folder of class folders (<class>/<image>)"
                )
            _warn_skipped(extra.source, flag, extra.splits["train"])
            items = _items(extra.splits["train"], classes, value, extra.source, extra.class_names)
            dev, test = (items, test) if flag == "dev" else (dev, items)

    def split_off(train: ImageItems, fraction: float, what: str) -> tuple[ImageItems, ImageItems]:
        n = round(fraction * len(train))
        if n < 1 or n >= len(train):
            raise TunebenchError(
                f"{data.source}: {what}_fraction {fraction} of {len(train)} train images gives {n} {what} "
                f"images; give a {what} folder with --{what} DIR or change the fraction"
            )
        rest, taken = _take(train.labels.tolist(), n, cfg.seed)
        return train.subset(rest), train.subset(taken)

    n_total = len(train)
    if test is None and cfg.test_fraction > 0:
        train, test = split_off(train, cfg.test_fraction, "test")
    if dev is None:
        if cfg.dev_fraction == 0:
            raise TunebenchError(
                f"{data.source}: no dev set (no val/ folder); give --dev DIR or a dev fraction"
            )
        train, dev = split_off(train, cfg.dev_fraction, "dev")
    if cfg.train_size is not None and cfg.train_size != len(train):
        if cfg.train_size > len(train):
            after = " after taking out dev/test" if len(train) < n_total else ""
            raise TunebenchError(
                f"train_size {cfg.train_size} is larger than the {len(train)} train images available in "
                f"{data.source}{after}; lower --train-size or drop it"
            )
        train = train.subset(_take(train.labels.tolist(), cfg.train_size, cfg.seed)[1])
        if len(set(train.labels.tolist())) < 2:
            raise TunebenchError(
                f"train_size {cfg.train_size} leaves a single class in train; use a larger --train-size"
            )
    if cfg.eval_size is not None:

        def cap(s: ImageItems | None) -> ImageItems | None:
            if s is None or len(s) <= cfg.eval_size:
                return s
            return s.subset(_take(s.labels.tolist(), cfg.eval_size, cfg.seed)[1])

        dev, test = cap(dev), cap(test)
    return ImageBundle(name, train, dev, test, list(classes))


def read_image_inputs(path: str) -> ImageItems:
    """Images to predict: a folder or .zip (flat or with sub-folders, which are ignored) or one image.
    Files that are not readable images are skipped with a warning."""
    from ..data.images import _list_entries, is_readable_image, read_bytes
    from ..data.readers import describe_path

    p = Path(path)
    if p.is_file() and not zipfile.is_zipfile(p):
        entries = [((p.name,), str(p))]
    else:
        entries = sorted(_list_entries(path), key=lambda e: e[0])  # by relative path parts
    items, names, skipped = [], [], []
    for parts, ref in entries:
        if is_readable_image(read_bytes(ref)):
            items.append(ref)
            names.append("/".join(parts))
        else:
            skipped.append("/".join(parts))
    if skipped:
        log.warning(
            "%s: %d files skipped: not readable images (e.g. %s)",
            describe_path(path),
            len(skipped),
            ", ".join(skipped[:5]),
        )
    if not items:
        raise TunebenchError(f"{describe_path(path)}: no readable images to predict (.jpg, .png, ...)")
    return ImageItems(items, None, names, describe_path(path), len(skipped))


# ----------------------------------------------------------------------------- batches


class ImageBatches:
    """Decoded, transformed image batches: {"pixel_values": (B, 3, S, S) float32, "labels": (B,)}.

    Training batches use RandomResizedCrop + flip, each image drawing from its own Generator seeded
    from the epoch's seed (so decoding in threads stays reproducible); eval batches resize + center
    crop. The next batch is decoded in a thread pool while the current one trains."""

    def __init__(self, items: list, labels, size: int, mean, std, threads: int | None = None):
        self.items = items
        self.labels = None if labels is None else torch.as_tensor(np.asarray(labels), dtype=torch.long)
        self.size, self.mean, self.std = size, tuple(mean), tuple(std)
        self.threads = threads or max(1, min(MAX_DECODE_THREADS, os.cpu_count() or 1))

    def __len__(self) -> int:
        return len(self.items)

    def _load(self, i: int, transform) -> torch.Tensor:
        from ..data.images import open_image

        return transform(open_image(self.items[i]))

    def _stream(self, chunks: list[np.ndarray], transform_of) -> Iterator[tuple[np.ndarray, dict]]:
        with ThreadPoolExecutor(self.threads) as pool:

            def submit(chunk):
                return [pool.submit(self._load, int(i), transform_of(int(i))) for i in chunk]

            pending = submit(chunks[0]) if chunks else []
            for k, chunk in enumerate(chunks):
                futures = pending
                pending = submit(chunks[k + 1]) if k + 1 < len(chunks) else []
                batch = {"pixel_values": torch.stack([f.result() for f in futures])}
                if self.labels is not None:
                    batch["labels"] = self.labels[torch.as_tensor(chunk)]
                yield chunk, batch

    def train_batches(self, batch_size: int, seed: int) -> Iterator[dict[str, torch.Tensor]]:
        from ..data.images import train_transform

        rng = np.random.default_rng(seed)
        perm = rng.permutation(len(self))
        seeds = rng.integers(0, 2**63 - 1, size=len(self))  # one augmentation stream per image

        def transform_of(i: int):
            return train_transform(self.size, self.mean, self.std, np.random.default_rng(seeds[i]))

        chunks = [perm[i : i + batch_size] for i in range(0, len(perm), batch_size)]
        for _, batch in self._stream(chunks, transform_of):
            yield batch

    def eval_batches(self, batch_size: int) -> Iterator[tuple[np.ndarray, dict[str, torch.Tensor]]]:
        from ..data.images import eval_transform

        transform = eval_transform(self.size, self.mean, self.std)  # deterministic, shared by threads
        idx = np.arange(len(self))
        chunks = [idx[i : i + batch_size] for i in range(0, len(idx), batch_size)]
        yield from self._stream(chunks, lambda i: transform)


# ----------------------------------------------------------------------------- frozen features


def _identity(ref) -> str:
    """A reference plus a cheap content stamp: zip member CRC, or file size and mtime."""
    if isinstance(ref, tuple):
        from ..data.images import _zip

        info = _zip(ref[0]).getinfo(ref[1])
        return f"{ref[0]}!{ref[1]}!{info.CRC}"
    st = os.stat(ref)
    return f"{os.path.abspath(ref)}!{st.st_size}!{st.st_mtime_ns}"


@torch.no_grad()
def extract_features(model: nn.Module, data: ImageBatches, batch_size: int, device: str, precision: str):
    """(N, D) pooled features of eval-transformed images."""
    from ..progress import bar
    from ..training.loop import autocast, resolve_device

    dev = resolve_device(device)
    model.to(dev).eval()
    out = None
    with bar("extract image features", -(-len(data) // batch_size)) as advance:
        for idx, batch in data.eval_batches(batch_size):
            with autocast(dev, precision):
                feats = model(batch["pixel_values"].to(dev, non_blocking=True)).float().cpu().numpy()
            if out is None:
                out = np.zeros((len(data), feats.shape[-1]), dtype=np.float32)
            out[idx] = feats
            advance(1)
    return out if out is not None else np.zeros((0, 0), dtype=np.float32)


# ----------------------------------------------------------------------------- the task


class ImageHead(nn.Module):
    """Pooled backbone features (B, D) -> dropout -> linear -> logits (B, C)."""

    def __init__(self, hidden_size: int, num_labels: int, dropout: float):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(hidden_size, num_labels)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.from_pooled(pooled)

    def from_pooled(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.out(self.dropout(pooled))


def _lora_reason() -> str | None:
    try:
        from peft.tuners.lora import layer
    except ImportError:
        return "needs peft: pip install peft"
    if not hasattr(layer, "Conv2d"):
        return "this peft version has no LoRA for convolutions; upgrade peft"
    return None


TEXT_PAIRS = "a text-pair method: it compares two separately embedded texts"


@TASKS.register("image-classification")
class ImageClassification(Task):
    primary_metric = "accuracy"
    summary = "label for an image (ImageFolder directory or .zip): EfficientNet-Lite0 by default"
    modality = "image"
    default_model = "efficientnet-lite0"
    not_applicable = {
        "adapters": "Houlsby adapters sit after the attention and feed-forward projections of a text "
        "transformer; a convolutional image backbone has neither (use lora or bitfit)",
        "prefix": "prefix tuning prepends trainable key/value vectors to the attention layers of a text "
        "transformer; a convolutional image backbone has no attention and no token sequence",
        "cosine": TEXT_PAIRS,
        "bi-encoder": TEXT_PAIRS,
    }
    # CIFAR-10 subset, 1,000 training images: 3 epochs at 5e-5 leave full fine-tuning at 0.560 test
    # accuracy, 10 epochs reach 0.713; at 1e-4 dev accuracy is 4 points higher by epoch 8
    # (scripts/gpu-schedules.sh)
    schedule = {"*": {"epochs": 10, "patience": 3}, "full": {"lr": 1e-4}}

    loss = TextClassification.loss
    metrics = TextClassification.metrics

    # -- data ------------------------------------------------------------------------------------
    def load(self, cfg) -> ImageBundle:
        return load_images(cfg)

    def encode(self, backbone, split, max_length: int, long_text: str = "truncate") -> Encoded:
        labels = getattr(split, "labels", None)
        return Encoded(
            [{"item": ref} for ref in split.items],
            targets=None if labels is None else np.asarray(labels),
            meta={"size": int(max_length)},
        )

    def load_backbone(self, name: str, trust_remote_code: bool = False, pooling: str = "auto"):
        return load_image_model(name, pooling)

    def batches(self, enc: Encoded, backbone) -> ImageBatches:
        return ImageBatches(
            [r["item"] for r in enc.rows], enc.targets, enc.meta["size"], backbone.mean, backbone.std
        )

    def default_ladder(self, bundle=None) -> list[str]:
        return list(IMAGE_LADDER)

    def applies(self, strategy_name: str, bundle=None) -> str | None:
        if strategy_name == "lora":
            return _lora_reason()
        return super().applies(strategy_name, bundle)

    # -- model -----------------------------------------------------------------------------------
    def build_head(self, hidden_size: int, num_labels: int, pooling: str, dropout: float) -> nn.Module:
        return ImageHead(hidden_size, num_labels, dropout)

    # -- frozen features -------------------------------------------------------------------------
    def frozen_inputs(
        self, ctx, split: str, cfg, pooling: str, layers: str, sequences: bool = False
    ) -> np.ndarray:
        """Pooled penultimate features of eval-transformed images, cached on disk under the run store."""
        import time

        if sequences:
            return super().frozen_inputs(
                ctx, split, cfg, pooling, layers, sequences
            )  # says: token tasks only

        from safetensors.numpy import load_file, save_file

        if layers != "last":
            raise TunebenchError(
                f"--opt features.layers={layers}: image backbones give one pooled feature vector (the last "
                "stage); use layers=last"
            )
        if pooling not in ("auto", "mean"):
            raise TunebenchError(
                f"--opt features.pooling={pooling}: image features are average-pooled; use mean"
            )
        backbone, enc = ctx.backbone, ctx.enc[split]
        size = enc.meta["size"]
        h = hashlib.sha256(f"image|{backbone.name}|{backbone.path}|{size}|".encode())
        for row in enc.rows:
            h.update(_identity(row["item"]).encode())
            h.update(b"|")
        root = ctx.cache.root if ctx.cache is not None else None
        path = Path(root) / f"image-{h.hexdigest()[:24]}.safetensors" if root else None
        if path is not None and path.is_file():
            return load_file(str(path))["features"]
        t0 = time.perf_counter()
        data = self.batches(enc, backbone)
        feats = extract_features(backbone.model, data, cfg.eval_batch_size, cfg.device, cfg.precision)
        ctx.extract_seconds += time.perf_counter() - t0
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            save_file({"features": feats}, str(path))
        return feats

    # -- prediction ------------------------------------------------------------------------------
    def read_inputs(self, path: str, **columns) -> ImageItems:
        return read_image_inputs(path)

    def predictions(self, outputs, enc: Encoded | None, split, label_names: list[str]) -> list[dict]:
        rows = super().predictions(outputs, enc, split, label_names)
        return [{"file": name, **row} for name, row in zip(split.names, rows)]
