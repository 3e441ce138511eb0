"""Image classification: an ImageFolder (directory or .zip) on a pre-trained CNN (EfficientNet-Lite0)."""

from ...backbones.image import load_image_model, register_image_backbone
from .task import ImageClassification

__all__ = ["ImageClassification", "load_image_model", "register_image_backbone"]
