"""Image-classification data: an ImageFolder (a directory or a .zip) read into labelled references.

Why this exists instead of torchvision's `ImageFolder`: torchvision is not installable beside the
torch we pin, and its loader crashes mid-epoch on the first corrupt file. Here every file is checked
once at load time (PIL `verify()` plus a cheap reduced-size decode that catches truncated JPEGs,
which `verify()` lets through), so bad files become a count in the report instead of a crash an hour
into training. Images stay on disk (or in the zip): an `ImageSplit` holds references, and
`open_image` decodes one when a batch needs it.

Layouts understood (hidden files and `__MACOSX/` are ignored silently):

    root/<class>/<image>                   -> one `train` split (the caller carves dev off later)
    root/{train,val,test}/<class>/<image>  -> train / dev / test (val, valid, validation, dev -> dev)
    a .zip of either, possibly inside one wrapper folder (`hymenoptera_data/train/ants/...`)

Transforms are PIL + torch re-implementations of the two standard ImageNet pipelines
(resize-256/center-crop-224 for eval; RandomResizedCrop + flip for training), seeded by a numpy
Generator so runs are reproducible without touching torch's global RNG.
"""

from __future__ import annotations

import io
import math
import os
import threading
import warnings
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from tunebench.data.readers import describe_path
from tunebench.errors import TunebenchError

# One image: a file path, or (zip path, member name inside the zip).
ImageRef = str | tuple[str, str]

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
IMAGENET_CROP_PCT = 0.875  # eval resizes the short side to size / 0.875 (224 -> 256), then center-crops
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


# ----------------------------------------------------------------------------- reading bytes


_ZIPS: dict[str, zipfile.ZipFile] = {}
_ZIPS_LOCK = threading.Lock()


def _reset_zip_cache_after_fork() -> None:
    """A forked DataLoader worker must not share the parent's file offset: give it its own handles."""
    global _ZIPS_LOCK
    _ZIPS.clear()
    _ZIPS_LOCK = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_zip_cache_after_fork)


def _zip(path: str) -> zipfile.ZipFile:
    """The process-wide open handle for `path` (opening a zip re-reads its directory: do it once)."""
    with _ZIPS_LOCK:
        zf = _ZIPS.get(path)
        if zf is None:
            zf = _ZIPS[path] = zipfile.ZipFile(path)
        return zf


def read_bytes(item: ImageRef) -> bytes:
    """The raw bytes of one image reference."""
    if isinstance(item, tuple):
        zip_path, member = item
        return _zip(zip_path).read(member)
    return Path(item).read_bytes()


def _to_rgb(img: Image.Image) -> Image.Image:
    """RGB, with transparent pixels on white (a bare convert would expose arbitrary hidden colours)."""
    if img.mode == "RGB":
        return img
    if img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info:
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def open_image(item: ImageRef) -> Image.Image:
    """Decode one image as RGB, upright per its EXIF orientation (as a person sees it)."""
    with Image.open(io.BytesIO(read_bytes(item))) as img:
        img = _to_rgb(ImageOps.exif_transpose(img))
        img.load()  # detach from the BytesIO before it closes
    return img


def is_readable_image(data: bytes) -> bool:
    """Cheap check that `data` decodes: `verify()` for headers, then a reduced-size decode.

    `verify()` alone accepts a truncated JPEG (it does not read the entropy-coded data), so the file
    is decoded too, with JPEG's DCT scaling (`draft`) making that about as cheap as the verify.
    """
    if not data:
        return False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # EXIF oddities, decompression-bomb notices: not our call
            with Image.open(io.BytesIO(data)) as img:
                img.verify()
            with Image.open(io.BytesIO(data)) as img:
                img.draft("RGB", (max(1, img.width // 8), max(1, img.height // 8)))
                img.load()
    except Exception:  # PIL raises OSError, SyntaxError, ValueError, struct.error, ... on bad files
        return False
    return True


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


def _list_entries(path: str | os.PathLike) -> list[_Entry]:
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
    entries = _strip_wrappers(_list_entries(path))
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


# ----------------------------------------------------------------------------- transforms


def to_tensor(img: Image.Image, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """RGB PIL image (H, W) -> float32 (3, H, W), normalised as (x / 255 - mean) / std."""
    x = torch.from_numpy(np.array(img, dtype=np.uint8))  # (H, W, 3)
    x = x.permute(2, 0, 1).to(torch.float32).div_(255.0)  # (3, H, W) in [0, 1]
    m = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)
    return (x - m) / s


def resize_short_side(img: Image.Image, short: int) -> Image.Image:
    """Scale so the shorter side is `short` (long side truncated, as torchvision's Resize(int))."""
    w, h = img.size
    if w <= h:
        new = (short, int(short * h / w))
    else:
        new = (int(short * w / h), short)
    if new == (w, h):
        return img
    return img.resize(new, Image.Resampling.BILINEAR)


def center_crop(img: Image.Image, size: int) -> Image.Image:
    """The central `size` x `size` window (offsets rounded as torchvision's center_crop)."""
    w, h = img.size
    top = int(round((h - size) / 2.0))
    left = int(round((w - size) / 2.0))
    return img.crop((left, top, left + size, top + size))


def random_resized_crop_params(
    width: int,
    height: int,
    rng: np.random.Generator,
    scale: tuple[float, float] = (0.08, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
) -> tuple[int, int, int, int]:
    """(top, left, h, w) of a random crop: torchvision's RandomResizedCrop.get_params, numpy-seeded.

    Ten tries at a random area fraction and log-uniform aspect ratio; if none fits, the largest
    central crop whose aspect ratio is within `ratio`.
    """
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target_area = area * rng.uniform(scale[0], scale[1])
        aspect = math.exp(rng.uniform(log_ratio[0], log_ratio[1]))
        w = int(round(math.sqrt(target_area * aspect)))
        h = int(round(math.sqrt(target_area / aspect)))
        if 0 < w <= width and 0 < h <= height:
            top = int(rng.integers(0, height - h + 1))
            left = int(rng.integers(0, width - w + 1))
            return top, left, h, w
    in_ratio = width / height
    if in_ratio < min(ratio):
        w, h = width, int(round(width / min(ratio)))
    elif in_ratio > max(ratio):
        w, h = int(round(height * max(ratio))), height
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


@dataclass
class EvalTransform:
    """Resize the short side to round(size / 0.875), center-crop `size`, normalise. Deterministic."""

    size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def __call__(self, img: Image.Image) -> torch.Tensor:  # -> (3, size, size) float32
        img = resize_short_side(img, round(self.size / IMAGENET_CROP_PCT))
        return to_tensor(center_crop(img, self.size), self.mean, self.std)


@dataclass
class TrainTransform:
    """RandomResizedCrop(size, scale 0.08-1, ratio 3/4-4/3) + horizontal flip (p=0.5), normalise.

    Draws from `rng`, so one Generator seeded once gives a reproducible stream of augmentations.
    DataLoader workers each get a copy of it: reseed per worker if they must differ.
    """

    size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    rng: np.random.Generator
    scale: tuple[float, float] = (0.08, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)

    def __call__(self, img: Image.Image) -> torch.Tensor:  # -> (3, size, size) float32
        top, left, h, w = random_resized_crop_params(img.width, img.height, self.rng, self.scale, self.ratio)
        img = img.crop((left, top, left + w, top + h))  # crop, then resize: as torchvision's resized_crop
        img = img.resize((self.size, self.size), Image.Resampling.BILINEAR)  # (size, size)
        if self.rng.random() < 0.5:
            img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        return to_tensor(img, self.mean, self.std)


def _triple(values: Sequence[float]) -> tuple[float, float, float]:
    if len(values) != 3:
        raise ValueError(f"expected 3 per-channel values (R, G, B), got {len(values)}")
    return (float(values[0]), float(values[1]), float(values[2]))


def eval_transform(size: int, mean: Sequence[float], std: Sequence[float]) -> EvalTransform:
    """The standard ImageNet evaluation pipeline as a picklable callable: PIL image -> (3, size, size)."""
    return EvalTransform(size, _triple(mean), _triple(std))


def train_transform(
    size: int, mean: Sequence[float], std: Sequence[float], rng: np.random.Generator
) -> TrainTransform:
    """The standard ImageNet training augmentation as a picklable callable, drawing from `rng`."""
    return TrainTransform(size, _triple(mean), _triple(std), rng)
