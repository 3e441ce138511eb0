"""Image classification data: an ImageFolder (directory or .zip) read with `images.load_image_folder`
(load-time checks of every file), split (seeded, stratified) and subsampled as a DataConfig says; the
images to predict from a folder, a zip or one file."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import TunebenchError
from .image_bytes import is_readable_image, read_bytes
from .images import list_entries, load_image_folder
from .named import DATASETS, dataset_names, get_dataset, locate
from .readers import describe_path
from .splits import cap, check_train_size, long_tail, split_off, subsample

log = logging.getLogger("tunebench")


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


def _split_off(
    train: ImageItems, fraction: float, what: str, source: str, seed: int
) -> tuple[ImageItems, ImageItems]:
    """(rest, `fraction` of train): a dev or test set carved off train, seeded and stratified."""
    n = round(fraction * len(train))
    if n < 1 or n >= len(train):
        raise TunebenchError(
            f"{source}: {what}_fraction {fraction} of {len(train)} train images gives {n} {what} "
            f"images; give a {what} folder with --{what} DIR or change the fraction"
        )
    return split_off(train, n, seed, train.labels.tolist())


def load_images(cfg) -> ImageBundle:
    """Read, split (seeded, stratified) and subsample an image dataset described by a DataConfig."""

    path, name = _resolve(cfg)
    data = load_image_folder(path)
    classes = data.class_names
    if len(classes) < 2:
        raise TunebenchError(
            f"{data.source}: one class ({', '.join(classes) or 'none'}); image classification needs at least "
            "2, one sub-folder of images per class"
        )
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

    n_total = len(train)
    if test is None and cfg.test_fraction > 0:
        train, test = _split_off(train, cfg.test_fraction, "test", data.source, cfg.seed)
    if dev is None:
        if cfg.dev_fraction == 0:
            raise TunebenchError(
                f"{data.source}: no dev set (no val/ folder); give --dev DIR or a dev fraction"
            )
        train, dev = _split_off(train, cfg.dev_fraction, "dev", data.source, cfg.seed)
    if cfg.long_tail is not None:
        train = long_tail(train, train.labels.tolist(), len(classes), cfg.long_tail, cfg.seed)
    if cfg.train_size is not None and cfg.train_size != len(train):
        after = " after taking out dev/test" if len(train) < n_total else ""
        check_train_size(cfg.train_size, len(train), "train images available", data.source, after)
        train = subsample(train, cfg.train_size, cfg.seed, train.labels.tolist())
        if len(set(train.labels.tolist())) < 2:
            raise TunebenchError(
                f"train_size {cfg.train_size} leaves a single class in train; use a larger --train-size"
            )
    if cfg.eval_size is not None:
        dev = cap(dev, cfg.eval_size, cfg.seed, dev.labels.tolist())
        test = None if test is None else cap(test, cfg.eval_size, cfg.seed, test.labels.tolist())
    return ImageBundle(name, train, dev, test, list(classes))


def read_image_inputs(path: str) -> ImageItems:
    """Images to predict: a folder or .zip (flat or with sub-folders, which are ignored) or one image.
    Files that are not readable images are skipped with a warning."""

    p = Path(path)
    if p.is_file() and not zipfile.is_zipfile(p):
        entries = [((p.name,), str(p))]
    else:
        entries = sorted(list_entries(path), key=lambda e: e[0])  # by relative path parts
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
