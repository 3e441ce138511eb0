"""Decoded, transformed image batches for the training loop, decoded in a thread pool, and the frozen
pooled features of a split (what `features` and `head` read, cached by FrozenSource)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from torch import nn

from ...data.images import _zip, eval_transform, open_image, train_transform
from ...progress import bar
from ...training.loop import autocast, casts_kept, resolve_device

MAX_DECODE_THREADS = 8


class ImageBatches:
    """Decoded, transformed image batches: {"pixel_values": (B, 3, S, S) float32, "labels": (B,)}.

    Training batches use RandomResizedCrop + flip, each image drawing from its own Generator seeded
    from the epoch's seed (so decoding in threads stays reproducible); eval batches resize + center
    crop. The next batch is decoded in a thread pool while the current one trains."""

    def __init__(self, items: list, labels, size: int, mean, std, threads: int | None = None):
        self.items = items
        self.labels = None if labels is None else torch.as_tensor(np.asarray(labels), dtype=torch.long)
        self.size, self.mean, self.std = size, tuple(mean), tuple(std)
        self.threads = threads or max(1, min(MAX_DECODE_THREADS, os.cpu_count() or 1))

    def __len__(self) -> int:
        return len(self.items)

    def _load(self, i: int, transform) -> torch.Tensor:
        return transform(open_image(self.items[i]))

    def _stream(self, chunks: list[np.ndarray], transform_of) -> Iterator[tuple[np.ndarray, dict]]:
        with ThreadPoolExecutor(self.threads) as pool:

            def submit(chunk):
                return [pool.submit(self._load, int(i), transform_of(int(i))) for i in chunk]

            pending = submit(chunks[0]) if chunks else []
            for k, chunk in enumerate(chunks):
                futures = pending
                pending = submit(chunks[k + 1]) if k + 1 < len(chunks) else []
                batch = {"pixel_values": torch.stack([f.result() for f in futures])}
                if self.labels is not None:
                    batch["labels"] = self.labels[torch.as_tensor(chunk)]
                yield chunk, batch

    def train_batches(
        self, batch_size: int, seed: int, rows: np.ndarray | None = None
    ) -> Iterator[dict[str, torch.Tensor]]:
        """`rows`: draw these rows, in order, instead of a shuffle (a sampler's choice)."""
        rng = np.random.default_rng(seed)
        perm = rng.permutation(len(self))
        perm = perm if rows is None else rows
        seeds = rng.integers(0, 2**63 - 1, size=len(self))  # one augmentation stream per image

        def transform_of(i: int):
            return train_transform(self.size, self.mean, self.std, np.random.default_rng(seeds[i]))

        chunks = [perm[i : i + batch_size] for i in range(0, len(perm), batch_size)]
        for _, batch in self._stream(chunks, transform_of):
            yield batch

    def eval_batches(self, batch_size: int) -> Iterator[tuple[np.ndarray, dict[str, torch.Tensor]]]:
        transform = eval_transform(self.size, self.mean, self.std)  # deterministic, shared by threads
        idx = np.arange(len(self))
        chunks = [idx[i : i + batch_size] for i in range(0, len(idx), batch_size)]
        yield from self._stream(chunks, lambda i: transform)


def _identity(ref) -> str:
    """A reference plus a cheap content stamp: zip member CRC, or file size and mtime."""
    if isinstance(ref, tuple):
        info = _zip(ref[0]).getinfo(ref[1])
        return f"{ref[0]}!{ref[1]}!{info.CRC}"
    st = os.stat(ref)
    return f"{os.path.abspath(ref)}!{st.st_size}!{st.st_mtime_ns}"


@torch.no_grad()
def extract_features(model: nn.Module, data: ImageBatches, batch_size: int, device: str, precision: str):
    """(N, D) pooled features of eval-transformed images."""
    dev = resolve_device(device)
    model.to(dev).eval()
    out = None
    with (
        casts_kept(model, dev, precision),
        bar("extract image features", -(-len(data) // batch_size)) as advance,
    ):
        for idx, batch in data.eval_batches(batch_size):
            with autocast(dev, precision):
                feats = model(batch["pixel_values"].to(dev, non_blocking=True)).float().cpu().numpy()
            if out is None:
                out = np.zeros((len(data), feats.shape[-1]), dtype=np.float32)
            out[idx] = feats
            advance(1)
    return out if out is not None else np.zeros((0, 0), dtype=np.float32)


def image_features(source, enc) -> np.ndarray:
    """(N, D) pooled penultimate features of eval-transformed images, cached by `source` (a FrozenSource)
    under a key of the backbone, the resolution and each image's identity."""
    backbone, size = source.backbone, enc.meta["size"]
    h = hashlib.sha256(f"image|{source.model_ref}|{size}|".encode())
    for row in enc.rows:
        h.update(_identity(row["item"]).encode())
        h.update(b"|")
    data = ImageBatches([r["item"] for r in enc.rows], enc.targets, size, backbone.mean, backbone.std)
    return source.cached(
        f"image-{h.hexdigest()[:24]}",
        lambda: extract_features(backbone.model, data, source.batch_size, source.device, source.precision),
    )
