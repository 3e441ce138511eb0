"""One image by reference: a file path or a member of a .zip, its raw bytes (one open handle per zip
and process), decoded to upright RGB, or checked for readability without keeping the pixels."""

from __future__ import annotations

import io
import os
import threading
import warnings
import zipfile
from pathlib import Path

from PIL import Image, ImageOps

# One image: a file path, or (zip path, member name inside the zip).
ImageRef = str | tuple[str, str]


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
