"""Image classification: an ImageFolder (directory or .zip) -> a pre-trained CNN -> dropout -> linear.

The data side is `data/image_bundle.py` (load-time checks of every file in `data/images.py`, PIL
transforms in `data/image_transforms.py`), the model side `backbones/vision.py` (EfficientNet-Lite0 by
default, whose `model(images)` gives pooled (B, D) features) adapted to what the runner, the training
loop and the strategies expect of a backbone in `backbones/image.py`; batches and frozen features in
`batches.py`.

Batch norm: a pre-trained backbone keeps its BN layers in inference mode while fine-tuning (running
statistics fixed, as the Keras transfer-learning guide recommends for small data). That keeps
frozen parts of the network exactly frozen, and the delta / peft exports (which store only trained
parameters, not BN statistics) predict exactly what the run measured. `scratch` starts from random
weights, so there BN trains normally.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ...backbones.image import load_image_model
from ...data.image_bundle import ImageBundle, ImageItems, load_images, read_image_inputs
from ...errors import TunebenchError
from ..base import TASKS, Encoded, Task
from ..text_classification.task import TextClassification
from .batches import ImageBatches, image_features


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


@TASKS.register("image-classification")
class ImageClassification(Task):
    primary_metric = "accuracy"
    summary = "label for an image (ImageFolder directory or .zip): EfficientNet-Lite0 by default"
    modality = "image"
    default_model = "efficientnet-lite0"
    capabilities = frozenset()  # a CNN: no transformer blocks, no attention over tokens
    ladder_all = True  # the ladder is every method that fits a CNN
    # CIFAR-10 subset, 1,000 training images: 3 epochs at 5e-5 leave full fine-tuning at 0.560 test
    # accuracy, 10 epochs reach 0.713; at 1e-4 dev accuracy is 4 points higher by epoch 8
    # (scripts/gpu-schedules.sh)
    schedule = {"*": {"epochs": 10, "patience": 3}, "full": {"lr": 1e-4}}

    classes = "example"
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

    # -- model -----------------------------------------------------------------------------------
    def build_head(self, hidden_size: int, num_labels: int, pooling: str, dropout: float) -> nn.Module:
        return ImageHead(hidden_size, num_labels, dropout)

    # -- frozen features -------------------------------------------------------------------------
    def frozen_inputs(self, source, enc: Encoded, pooling: str, layers: str, sequences: bool = False):
        """Pooled penultimate features of eval-transformed images, cached on disk under the run store."""
        if sequences:
            return super().frozen_inputs(source, enc, pooling, layers, sequences)  # says: token tasks only
        if layers != "last":
            raise TunebenchError(
                f"--opt features.layers={layers}: image backbones give one pooled feature vector (the last "
                "stage); use layers=last"
            )
        if pooling not in ("auto", "mean"):
            raise TunebenchError(
                f"--opt features.pooling={pooling}: image features are average-pooled; use mean"
            )
        return image_features(source, enc)

    # -- prediction ------------------------------------------------------------------------------
    def read_inputs(self, path: str, **columns) -> ImageItems:
        return read_image_inputs(path)

    def predictions(self, outputs, enc: Encoded | None, split, label_names: list[str]) -> list[dict]:
        rows = super().predictions(outputs, enc, split, label_names)
        return [{"file": name, **row} for name, row in zip(split.names, rows)]
