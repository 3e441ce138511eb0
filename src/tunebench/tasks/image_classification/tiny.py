"""The common test suite's fixture: a red-vs-blue ImageFolder (one unreadable file in train) on a tiny
CNN registered as an image backbone through `register_image_backbone` (the same ImageBackbone record
vision.py builds for EfficientNet-Lite0), so the real code paths run in seconds."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from ...backbones.image import register_image_backbone
from ...backbones.vision import ImageBackbone, generic_blocks
from ...data import DataConfig
from ...testing import Tiny

TINY_CNN = "tiny-cnn-test"
COLORS = {"red": (200, 40, 40), "blue": (40, 40, 200)}


class TinyCNN(nn.Module):
    """stem -> 3 blocks (3x3 conv, BN, ReLU, 1x1 conv, BN, ReLU) -> global average pool: (B, 8)."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1, bias=False), nn.BatchNorm2d(8), nn.ReLU())
        self.blocks = nn.Sequential(
            *[
                nn.Sequential(
                    nn.Conv2d(8, 8, 3, 1, 1, bias=False),
                    nn.BatchNorm2d(8),
                    nn.ReLU(),
                    nn.Conv2d(8, 8, 1, bias=False),
                    nn.BatchNorm2d(8),
                    nn.ReLU(),
                )
                for _ in range(3)
            ]
        )
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        for m in (
            self.modules()
        ):  # He init keeps activations O(1) through 7 convolutions (torch's default shrinks them)
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.blocks(self.stem(x)))


def _build_tiny() -> nn.Module:
    return TinyCNN().eval()


def tiny_backbone() -> ImageBackbone:
    torch.manual_seed(1234)  # the "pre-trained" weights: not what random_model(seed) gives for small seeds
    model = _build_tiny()
    return ImageBackbone(
        name=TINY_CNN,
        path="tests/tiny-cnn",
        model=copy.deepcopy(model),
        feature_dim=8,
        input_size=32,
        mean=(0.5, 0.5, 0.5),
        std=(0.5, 0.5, 0.5),
        _pretrained=model,
        _build=_build_tiny,
        _groups=generic_blocks,
    )


def save_image(path: Path, color: tuple[int, int, int], rng: np.random.Generator) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    noise = rng.integers(-30, 31, size=(32, 32, 3))
    Image.fromarray(np.clip(np.array(color) + noise, 0, 255).astype(np.uint8)).save(path)


def red_blue_folder(root: Path) -> Path:
    """train/{red,blue}/ 12 each + one unreadable file, val/ and test/{red,blue}/ 6 each."""
    rng = np.random.default_rng(0)
    for split, n in (("train", 12), ("val", 6), ("test", 6)):
        for cls, color in COLORS.items():
            for i in range(n):
                save_image(root / split / cls / f"{cls}{i:02d}.png", color, rng)
    (root / "train" / "red" / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    return root


def tiny(root: Path) -> Tiny:
    register_image_backbone(TINY_CNN, tiny_backbone)
    data = DataConfig(data=str(red_blue_folder(root / "red-blue")))
    return Tiny(data, TINY_CNN, train={"epochs": 2, "batch_size": 8}, fit={"epochs": 8, "batch_size": 4})
