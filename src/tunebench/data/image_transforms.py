"""PIL + torch re-implementations of the two standard ImageNet pipelines (resize-256/center-crop-224
for eval; RandomResizedCrop + flip for training), seeded by a numpy Generator so runs are reproducible
without touching torch's global RNG. torchvision is not installable beside the torch we pin."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

IMAGENET_CROP_PCT = 0.875  # eval resizes the short side to size / 0.875 (224 -> 256), then center-crops


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
