"""Pre-trained backbones, text and vision, in one place: loading encoders and their tokenizers
(`text.py`), image backbones by name (`vision.py`) and the adapter that gives them the text encoders'
interface (`image.py`), and the per-layer view strategies act on (`layers.py`)."""

from .image import ImageModelBackbone, load_image_model, register_image_backbone
from .layers import embeddings_module, encoder_layers
from .text import Backbone, load_backbone, pool, quiet_libraries, resolve_model_path
from .vision import ImageBackbone, generic_blocks, load_image_backbone

__all__ = [
    "Backbone",
    "ImageBackbone",
    "ImageModelBackbone",
    "embeddings_module",
    "encoder_layers",
    "generic_blocks",
    "load_backbone",
    "load_image_backbone",
    "load_image_model",
    "pool",
    "quiet_libraries",
    "register_image_backbone",
    "resolve_model_path",
]
