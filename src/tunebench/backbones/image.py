"""The image backbone as the runner, the loop and the strategies see it: a backbone object with
`hidden_size`, `fresh_model()`, `random_model(seed)`... around a `vision.py` model, and the module a
TaskModel holds (`ImageEncoder`) whose `image_blocks()` lets last-k, LLRD and gradual unfreezing find
the stages (see `backbones.encoder_layers`) and whose `save_pretrained` makes the `full` save mode work.

Batch norm stays in inference mode while a pre-trained backbone fine-tunes (see tasks/images.py).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from ..errors import TunebenchError
from .vision import load_image_backbone

CONFIG_KEY = "tunebench_image_backbone"  # marks config.json of an image backbone saved by `full` runs

# name -> function returning an ImageBackbone: backbones that vision.py does not know (tests register a
# tiny CNN here); everything else goes to vision.load_image_backbone.
IMAGE_BACKBONES: dict[str, Callable[[], object]] = {}


def register_image_backbone(name: str, loader: Callable[[], object]) -> None:
    """Make `--model NAME` load `loader()` (an ImageBackbone-compatible object) for image tasks."""
    IMAGE_BACKBONES[name] = loader


# ----------------------------------------------------------------------------- the backbone


class ImageEncoder(nn.Module):
    """The backbone module a TaskModel holds: pixel_values (B, 3, S, S) -> pooled features (B, D)."""

    def __init__(
        self,
        net: nn.Module,
        groups: Callable[[nn.Module], list[nn.Module]],
        train_bn: bool,
        saved_config: dict | None = None,
    ):
        super().__init__()
        self.net = _plain_pointwise_convs(net)
        self._groups = groups  # a plain function (lite0_blocks, generic_blocks): deepcopy keeps it
        self.train_bn = train_bn  # False: BN keeps its running statistics (pre-trained weights)
        self.saved_config = dict(saved_config or {})  # how to rebuild the architecture (config.json)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.net(pixel_values)

    def image_blocks(self) -> list[nn.Module]:
        """Parameter groups from input to output: stem, stages..., head convolution."""
        return list(self._groups(self.net))

    def lora_target_modules(self) -> list[str]:
        """Layers LoRA can wrap without changing their output shape: linear layers and 1x1 convolutions
        (stride 1, no groups). Depthwise and strided k x k convolutions are left alone."""
        return [
            name for name, m in self.named_modules() if type(m) is nn.Linear or _is_pointwise(m, exact=True)
        ]

    def train(self, mode: bool = True) -> ImageEncoder:
        super().train(mode)
        if mode and not self.train_bn:
            for m in self.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()
        return self

    def save_pretrained(self, path, safe_serialization: bool = True, config: dict | None = None, **_) -> None:
        """What `full` exports write (artifacts.py): the weights plus how to rebuild the architecture."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().contiguous() for k, v in self.net.state_dict().items()}
        save_file(state, str(path / "model.safetensors"))
        meta = {**self.saved_config, **(config or {}), "train_bn": self.train_bn}
        (path / "config.json").write_text(json.dumps(meta, indent=2))


def _is_pointwise(m: nn.Module, exact: bool) -> bool:
    """A 1x1, stride-1, ungrouped, undilated convolution (a per-pixel linear map; never padded)."""
    return (
        (type(m) is nn.Conv2d if exact else isinstance(m, nn.Conv2d))
        and m.groups == 1
        and tuple(m.kernel_size) == (1, 1)
        and tuple(m.stride) == (1, 1)
        and tuple(m.dilation) == (1, 1)
        and m.padding_mode == "zeros"
        and tuple(m.padding) == (0, 0)
    )


def _plain_pointwise_convs(net: nn.Module) -> nn.Module:
    """Replace 1x1 convolutions of Conv2d subclasses (Lite0's 'same'-padding convs) with plain Conv2d.

    A 1x1 stride-1 convolution is never padded, so the output is bit-identical; the state dict keeps
    its keys. Needed for LoRA: peft builds its low-rank convs as `type(base)(in, r, k, stride, padding)`,
    which a subclass with another signature (dilation in the padding slot) cannot take."""
    for parent in list(net.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is not nn.Conv2d and _is_pointwise(child, exact=False):
                plain = nn.Conv2d(child.in_channels, child.out_channels, 1, bias=child.bias is not None).to(
                    device=child.weight.device, dtype=child.weight.dtype
                )
                plain.weight = child.weight
                if child.bias is not None:
                    plain.bias = child.bias
                plain.train(child.training)
                setattr(parent, name, plain)
    return net


@dataclass
class ImagePreprocessor:
    """The image counterpart of a tokenizer: resolution and normalisation (saved beside `full` exports)."""

    size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    pad_token_id: int | None = None  # the runner's text helpers read it; images never pad

    def save_pretrained(self, path) -> None:
        Path(path).mkdir(parents=True, exist_ok=True)
        cfg = {"size": self.size, "mean": list(self.mean), "std": list(self.std)}
        (Path(path) / "preprocessor_config.json").write_text(json.dumps(cfg, indent=2))


@dataclass
class ImageModelBackbone:
    """An ImageBackbone shaped like the text `Backbone` the runner uses."""

    name: str  # what the user asked for: stored in artifacts
    path: str  # where the weights came from
    model: ImageEncoder
    base: str  # the architecture's name (for reloading a `full` export)
    feature_dim: int
    input_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    image: object = field(repr=False)  # the vision.ImageBackbone (random_model builds from it)
    pooling: str = "mean"  # global average pooling, inside the network
    trust_remote_code: bool = False
    newly_initialized: list[str] = field(default_factory=list)

    def __post_init__(self):
        self.tokenizer = ImagePreprocessor(self.input_size, self.mean, self.std)
        self.model.saved_config = self._config()

    def _config(self) -> dict:
        return {
            CONFIG_KEY: True,
            "base": self.base,
            "feature_dim": self.feature_dim,
            "input_size": self.input_size,
            "mean": list(self.mean),
            "std": list(self.std),
        }

    @property
    def hidden_size(self) -> int:
        return self.feature_dim

    @property
    def max_length(self) -> int:  # the runner's "max length" of an image is its input resolution
        return self.input_size

    @property
    def num_layers(self) -> int:
        return len(self.model.image_blocks()) - 1  # stages above the stem (as encoder_layers)

    def fresh_model(self) -> ImageEncoder:
        return copy.deepcopy(self.model)

    def random_model(self, seed: int) -> ImageEncoder:
        return ImageEncoder(self.image.random_model(seed), self.model._groups, True, self._config())


def _image_backbone(name: str):
    if name in IMAGE_BACKBONES:
        return IMAGE_BACKBONES[name]()
    return load_image_backbone(name)


def load_image_model(name: str, pooling: str = "auto") -> ImageModelBackbone:
    """A named image backbone, or the `backbone/` folder a `full` export wrote."""
    if pooling not in ("auto", "mean"):
        raise TunebenchError(f"--pooling {pooling}: image backbones pool by global average; use auto or mean")
    saved = Path(name) / "config.json"
    if saved.is_file() and CONFIG_KEY in (cfg := json.loads(saved.read_text())):
        image = _image_backbone(cfg["base"])
        net = image.random_model(0)
        net.load_state_dict(load_file(str(Path(name) / "model.safetensors")))
        model = ImageEncoder(net.eval(), image._groups, train_bn=bool(cfg.get("train_bn", False)))
        path = name
    else:
        image = _image_backbone(name)
        model = ImageEncoder(copy.deepcopy(image.model).eval(), image._groups, train_bn=False)
        path, cfg = image.path, {"base": name}
    return ImageModelBackbone(
        name=name,
        path=str(path),
        model=model,
        base=cfg["base"],
        feature_dim=int(image.feature_dim),
        input_size=int(image.input_size),
        mean=tuple(image.mean),
        std=tuple(image.std),
        image=image,
    )
