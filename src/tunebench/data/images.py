"""Image-classification data: an ImageFolder (a directory or a .zip) read into labelled references.

Why this exists instead of torchvision's `ImageFolder`: torchvision is not installable beside the
torch we pin, and its loader crashes mid-epoch on the first corrupt file. Here every file is checked
once at load time (PIL `verify()` plus a cheap reduced-size decode that catches truncated JPEGs,
which `verify()` lets through), so bad files become a count in the report instead of a crash an hour
into training. Images stay on disk (or in the zip): an `ImageSplit` holds references, and
`image_bytes.open_image` decodes one when a batch needs it.

Layouts understood (hidden files and `__MACOSX/` are ignored silently):

    root/<class>/<image>                   -> one `train` split (the caller carves dev off later)
    root/{train,val,test}/<class>/<image>  -> train / dev / test (val, valid, validation, dev -> dev)
    a .zip of either, possibly inside one wrapper folder (`hymenoptera_data/train/ants/...`)

Decoding is in `image_bytes.py`, the ImageNet transforms in `image_transforms.py`.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import TunebenchError
from .image_bytes import ImageRef, _zip, is_readable_image, open_image, read_bytes
from .image_transforms import eval_transform, train_transform
from .readers import describe_path

# open_image and the transforms are re-exported for the image task (tasks/image_classification/batches.py)
__all__ = [
    "ImageData",
    "ImageSplit",
    "eval_transform",
    "list_entries",
    "load_image_folder",
    "open_image",
    "train_transform",
]

# folder name (lower-cased) -> normalised split name
SPLIT_NAMES: dict[str, str] = {
    "train": "train",
    "training": "train",
    "val": "dev",
    "valid": "dev",
    "validation": "dev",
    "dev": "dev",
    "test": "test",
    "testing": "test",
}
MAX_SKIPPED_EXAMPLES = 5


@dataclass
class ImageSplit:
    """The images of one split: parallel `items` / `labels`, plus what was skipped and why."""

    items: list[ImageRef]
    labels: np.ndarray  # (N,) int64 indices into ImageData.class_names
    skipped: int = 0  # files inside class folders that are not readable images
    skipped_examples: list[str] = field(default_factory=list)  # a few of their relative names

    def __len__(self) -> int:
        return len(self.items)


@dataclass
class ImageData:
    """All splits of one image folder, sharing one sorted list of class names."""

    source: str  # the path as given, for messages
    splits: dict[str, ImageSplit]  # keys among train, dev, test
    class_names: list[str]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


# A file found in the folder or zip: its path parts relative to the dataset root, and its reference.
_Entry = tuple[tuple[str, ...], ImageRef]


# ----------------------------------------------------------------------------- listing files


def _is_ignored(parts: Sequence[str]) -> bool:
    """Hidden files/folders and macOS resource forks: noise from zipping, never data."""
    return any(p.startswith(".") or p == "__MACOSX" for p in parts)


def _dir_entries(root: Path) -> Iterator[_Entry]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not _is_ignored([d]))
        rel = Path(dirpath).relative_to(root).parts
        for name in sorted(filenames):
            if not _is_ignored([name]):
                yield (*rel, name), os.path.join(dirpath, name)


def _zip_entries(zip_path: str) -> Iterator[_Entry]:
    for info in _zip(zip_path).infolist():
        if info.is_dir():
            continue
        parts = tuple(p for p in info.filename.split("/") if p)
        if parts and not _is_ignored(parts):
            yield parts, (zip_path, info.filename)


def list_entries(path: str | os.PathLike) -> list[_Entry]:
    """Every non-hidden file under a folder or inside a zip, with its path parts."""
    p = Path(path)
    if not p.exists():
        raise TunebenchError(
            f"{describe_path(path)}: not found; give a folder or .zip laid out as <class>/<image>"
        )
    if p.is_dir():
        return list(_dir_entries(p))
    if not zipfile.is_zipfile(p):
        raise TunebenchError(
            f"{describe_path(path)}: is neither a folder nor a .zip; give a folder or .zip of class folders"
        )
    return list(_zip_entries(str(p.resolve())))


def _split_of(folder: str) -> str | None:
    return SPLIT_NAMES.get(folder.lower())


def _top_dirs(entries: list[_Entry]) -> set[str]:
    return {parts[0] for parts, _ in entries if len(parts) > 1}


def _strip_wrappers(entries: list[_Entry]) -> list[_Entry]:
    """Look through a lone wrapper folder (`data.zip` -> `data/train/...`) until classes or splits show.

    A lone folder is a wrapper when it is not a split name and holds sub-folders; a lone folder of
    images is a single class and stays.
    """
    while True:
        tops = _top_dirs(entries)
        if len(tops) != 1:
            return entries
        (top,) = tops
        inside = [(parts[1:], ref) for parts, ref in entries if len(parts) > 1]
        if _split_of(top) is not None or not any(len(parts) > 1 for parts, _ in inside):
            return entries
        entries = inside


def _group_splits(source: str, entries: list[_Entry]) -> dict[str, tuple[str, list[_Entry]]]:
    """Split name -> (its folder name, the entries under that folder with parts relative to it)."""
    tops = sorted(_top_dirs(entries))
    named = [t for t in tops if _split_of(t) is not None]
    if not named:
        return {"train": ("", entries)}
    if len(named) != len(tops):
        others = [t for t in tops if _split_of(t) is None]
        raise TunebenchError(
            f"{source}: mixes split folders ({', '.join(named)}) with other folders ({', '.join(others)}); "
            "put every class folder inside train/ (and val/ or test/)"
        )
    groups: dict[str, tuple[str, list[_Entry]]] = {}
    folder_of: dict[str, str] = {}
    for top in named:
        split = _split_of(top)
        assert split is not None
        if split in folder_of:
            raise TunebenchError(
                f"{source}: folders {folder_of[split]}/ and {top}/ are both the {split} split; keep one"
            )
        folder_of[split] = top
        groups[split] = (
            top,
            [(parts[1:], ref) for parts, ref in entries if len(parts) > 1 and parts[0] == top],
        )
    if "train" not in groups:
        raise TunebenchError(
            f"{source}: has {', '.join(f + '/' for f in named)} but no train/ folder; add train/<class>/<image>"
        )
    return groups


# ----------------------------------------------------------------------------- checking and labelling


@dataclass
class _CheckedSplit:
    by_class: dict[str, list[ImageRef]]  # class folder -> readable images, in listing order
    skipped: int
    skipped_examples: list[str]


def _check_split(split_folder: str, entries: list[_Entry]) -> _CheckedSplit:
    """Verify each file inside a class folder; loose files beside the class folders are ignored."""
    by_class: dict[str, list[ImageRef]] = {}
    skipped, examples = 0, []
    for parts, ref in entries:
        if len(parts) < 2:
            continue  # README.txt, LICENSE etc. next to the class folders
        if is_readable_image(read_bytes(ref)):
            by_class.setdefault(parts[0], []).append(ref)
        else:
            skipped += 1
            if len(examples) < MAX_SKIPPED_EXAMPLES:
                examples.append("/".join(p for p in (split_folder, *parts) if p))
    return _CheckedSplit(by_class, skipped, examples)


def _skip_note(checked: _CheckedSplit) -> str:
    if not checked.skipped:
        return ""
    return f" ({checked.skipped} unreadable files skipped, e.g. {', '.join(checked.skipped_examples)})"


def _ref_name(item: ImageRef) -> str:
    return item[1] if isinstance(item, tuple) else item


def _labelled(checked: _CheckedSplit, class_names: list[str]) -> ImageSplit:
    index = {name: i for i, name in enumerate(class_names)}
    items: list[ImageRef] = []
    labels: list[int] = []
    for name in sorted(checked.by_class):
        refs = sorted(checked.by_class[name], key=_ref_name)  # same order from a folder or its zip
        items.extend(refs)
        labels.extend([index[name]] * len(refs))
    return ImageSplit(
        items=items,
        labels=np.asarray(labels, dtype=np.int64),
        skipped=checked.skipped,
        skipped_examples=checked.skipped_examples,
    )


def load_image_folder(path: str | os.PathLike) -> ImageData:
    """Read an ImageFolder (directory or .zip) into labelled image references per split.

    Class names are the train split's class folders that hold at least one readable image, sorted;
    a class folder missing from dev/test is fine, one that appears only in dev/test is an error.
    """
    source = describe_path(path)
    entries = _strip_wrappers(list_entries(path))
    if not _top_dirs(entries):
        raise TunebenchError(
            f"{source}: no class folders found; lay images out as <class>/<image> "
            "or train/<class>/<image> (+ val/, test/)"
        )
    groups = _group_splits(source, entries)
    checked = {
        split: _check_split(folder, split_entries) for split, (folder, split_entries) in groups.items()
    }
    for split, c in checked.items():
        if not c.by_class:
            folder = groups[split][0]
            where = f" in {folder}/" if folder else ""
            raise TunebenchError(
                f"{source}: no readable images{where}{_skip_note(c)}; "
                "put .jpg/.png files inside the class folders"
            )
    class_names = sorted(checked["train"].by_class)
    for split, c in checked.items():
        unknown = sorted(set(c.by_class) - set(class_names))
        if unknown:
            raise TunebenchError(
                f"{source}: {split} has classes not in train: {', '.join(unknown)}; "
                "add train images for them or remove those folders"
            )
    splits = {
        split: _labelled(checked[split], class_names)
        for split in ("train", "dev", "test")
        if split in checked
    }
    return ImageData(source=source, splits=splits, class_names=class_names)
