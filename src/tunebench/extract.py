"""Frozen-backbone feature extraction with an on-disk cache.

One forward pass stores, for every example, the [CLS] and mean-pooled vector of *every* layer
(embeddings + each block): any pooling / layer combination, another classifier, head-only training
and layer probes then reuse the same file instead of running the backbone again.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import load_file, save_file

from .backbones import pool
from .backbones.layers import embeddings_module, encoder_layers
from .backbones.prefix import bottom_states
from .errors import TunebenchError
from .prefix_files import PrefixArray, PrefixFile, PrefixStates
from .progress import bar
from .training.batching import TokenBatches
from .training.loop import autocast, casts_kept, resolve_device, resolve_precision

PREFIX_FP32_LIMIT = 2 * 2**30  # bytes: larger frozen-prefix caches are stored in float16

LAYER_CHOICES = ("last", "second-last", "mean-of-last-4", "concat-last-4", "mean-of-all", "embeddings")


def cache_key(model_ref: str, rows: list[dict], max_length: int) -> str:
    h = hashlib.sha256(f"{model_ref}|{max_length}|".encode())
    for r in rows:
        h.update(np.asarray(r["input_ids"], dtype=np.int32).tobytes())
        h.update(b"|")
        if "token_type_ids" in r:
            h.update(np.asarray(r["token_type_ids"], dtype=np.int8).tobytes())
    return h.hexdigest()[:24]


@torch.no_grad()
def all_layer_pools(
    model, rows: list[dict], pad_id: int, batch_size: int, device: str, precision: str, keep=None
) -> np.ndarray:
    """(N, L+1, 2, H): per layer, [CLS] (index 0) and mean (index 1) pooled hidden states. `keep`
    ({depth: PrefixFile}) also receives the token states after those blocks, for a later last-k.
    Pooled by `BlockPools` as the pass goes where its hooks see the model's `hidden_states` (checked
    on two rows), else from `hidden_states`; the arrays are the same either way."""
    keep = keep or {}
    dev = resolve_device(device)
    model.to(dev).eval()
    data = TokenBatches(rows, None, pad_id)
    out, hooks = None, BlockPools(model, keep)
    try:
        with (
            casts_kept(model, dev, precision),
            bar("extract features", -(-len(rows) // batch_size)) as advance,
        ):
            hooked = False
            for _, probe in TokenBatches(rows[:2], None, pad_id).eval_batches(2):  # none without rows
                with autocast(dev, precision):
                    hooked = hooks.see_hidden_states(model, {k: v.to(dev) for k, v in probe.items()})
            if not hooked:
                hooks.remove()
            for idx, batch in data.eval_batches(batch_size):
                batch = {k: v.to(dev) for k, v in batch.items()}
                mask = hooks.start(batch["attention_mask"], idx)
                with autocast(dev, precision):
                    result = model(**batch, output_hidden_states=not hooked)
                if hooked:
                    pooled = torch.stack(hooks.pooled, 1)  # (B, L+1, 2, H)
                else:
                    pooled = torch.stack([both_pools(h, mask) for h in result.hidden_states], 1)
                    for depth, file in keep.items():
                        file.put_batch(idx, result.hidden_states[depth])
                if out is None:
                    out = np.zeros((len(rows),) + tuple(pooled.shape[1:]), dtype=np.float32)
                out[idx] = pooled.cpu().numpy()
                advance(1)
    finally:
        hooks.remove()
    return out


def both_pools(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, T, H) -> (B, 2, H): [CLS] and mean, in float32."""
    return torch.stack([pool(hidden.float(), mask, "cls"), pool(hidden.float(), mask, "mean")], 1)


class BlockPools:
    """Forward hooks on the embeddings and every block that pool each output as the pass makes it, and
    hand the `keep` depths' token states to their files, so a batch never holds all L+1 states at once
    (`output_hidden_states` keeps them to the end: 76 MB at batch 128 x 55 tokens of MiniLM; the SST-2
    features run peaked at 1,250-1,360 MB that way, 1,020-1,150 MB this way, and extracts no slower)."""

    def __init__(self, model, keep: dict):
        self.keep, self.pooled, self.seen = keep, [], None
        self.mask = self.idx = None
        try:
            blocks = [embeddings_module(model), *encoder_layers(model)]
        except (TunebenchError, AttributeError):  # not a block-structured encoder: `hidden_states`
            blocks = []
        self.hooks = [b.register_forward_hook(self._pool) for b in blocks]

    def start(self, mask: torch.Tensor, idx) -> torch.Tensor:
        self.pooled, self.mask, self.idx = [], mask, idx
        return mask

    def _pool(self, module, args, output) -> None:
        hidden = output[0] if isinstance(output, tuple) else output
        if self.seen is not None:
            self.seen.append(hidden)
        depth = len(self.pooled)
        self.pooled.append(both_pools(hidden, self.mask))
        if depth in self.keep:
            self.keep[depth].put_batch(self.idx, hidden)

    def see_hidden_states(self, model, probe: dict) -> bool:
        """Whether the hooks see exactly the model's `hidden_states` (the same tensors) on `probe`."""
        if not self.hooks:
            return False
        keep, self.keep, self.seen = self.keep, {}, []
        self.start(probe["attention_mask"], None)
        try:
            states = model(**probe, output_hidden_states=True).hidden_states
            return len(self.seen) == len(states) and all(a is b for a, b in zip(self.seen, states))
        finally:
            self.keep, self.seen = keep, None

    def remove(self) -> None:
        for hook in self.hooks:
            hook.remove()
        self.hooks = []


class FrozenSource:
    """Frozen forward passes of one backbone, cached on disk under `<out>/cache/features/` (no cache
    when `root` is None) and keyed by model, tokenized inputs and max length. `seconds` adds up the
    forward-pass time actually spent (0 on cache hits); the runner reads it per run. The passes over
    every layer (`pools`, `token_states`) also write the prefix states of the `prefetch` depths (the
    runs still to come of this compare read them), so the blocks below run once for both."""

    def __init__(
        self,
        backbone,
        root: str | Path | None,
        max_length: int,
        batch_size: int = 128,
        device: str = "auto",
        precision: str = "auto",
        prefetch: frozenset[int] = frozenset(),
    ):
        self.backbone = backbone
        # depths whose prefix states an all-layer pass also writes (for later last-k runs)
        self.prefetch = prefetch
        self.root = Path(root) / "cache" / "features" if root else None
        self.max_length = max_length
        self.batch_size = batch_size
        self.device = device
        self.precision = precision
        self.seconds = 0.0
        self.tokens = 0  # tokens the forward passes actually ran (0 on cache hits)

    @property
    def model_ref(self) -> str:
        """What the cached arrays depend on besides the inputs: the model, and bf16 when it ran in bf16."""
        ref = f"{self.backbone.name}|{self.backbone.path}"
        if resolve_precision(resolve_device(self.device), self.precision) == "bf16":
            ref += "|bf16"
        return ref

    def cached(self, key: str, compute) -> np.ndarray:
        """The array stored under `key`, or `compute()` timed, stored atomically and returned."""
        path = self.root / f"{key}.safetensors" if self.root else None
        if path is not None and path.is_file():
            return next(iter(load_file(str(path)).values()))
        t0 = time.perf_counter()
        array = compute()
        self.seconds += time.perf_counter() - t0
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")  # this process's name: workers share the cache
            save_file({"array": array}, str(tmp))
            tmp.replace(path)  # atomic: an interrupted write never leaves a corrupt cache entry
        return array

    def pools(self, rows: list[dict]) -> np.ndarray:
        """(N, L+1, 2, H): every layer's [CLS] and mean vector of token rows."""
        pad = self.backbone.tokenizer.pad_token_id or 0

        def compute():
            self.tokens += sum(len(r["input_ids"]) for r in rows)
            return self._with_prefixes(
                rows,
                lambda keep: all_layer_pools(
                    self.backbone.model, rows, pad, self.batch_size, self.device, self.precision, keep
                ),
            )

        return self.cached(cache_key(self.model_ref, rows, self.max_length), compute)

    def _with_prefixes(self, rows: list[dict], run):
        """`run(keep)` for an all-layer pass over `rows`, `keep` the open prefix entries of the `prefetch`
        depths not cached yet, each put in place once the pass completes (removed if it does not)."""
        keep = {}
        for depth in sorted(self.prefetch):
            if (path := self._prefix_path(rows, depth)) is not None and not path.is_file():
                keep[depth] = PrefixFile(path, *self._prefix_layout(rows))
        try:
            out = run(keep)
        except BaseException:
            for file in keep.values():
                file.abort()
            raise
        for file in keep.values():
            file.close()
        return out

    def pooled(self, rows: list[dict], pooling: str, layers: str) -> np.ndarray:
        """(N, D) frozen pooled features of token rows for one pooling and layer combination."""
        return select(self.pools(rows), pooling, layers)

    def token_states(self, rows: list[dict], name: str, pick) -> np.ndarray:
        """(N_picked, L+1, H) float16: every layer's hidden state at the tokens `pick(i)` (an index array
        or slice) of each row i, rows end to end. NER picks each word's first sub-token, QA every token
        of a window; `name` keeps the two apart in the cache."""
        key = cache_key(f"{self.model_ref}|{name}", rows, self.max_length)
        return self.cached(
            key, lambda: self._with_prefixes(rows, lambda keep: self._token_states(rows, name, pick, keep))
        )

    def prefix(self, rows: list[dict], depth: int) -> tuple[np.ndarray, np.ndarray]:
        """Hidden states after the embeddings and the first `depth` blocks at every token of `rows`:
        ((sum of row lengths, H), rows end to end; offsets (N + 1,)). Read from `<out>/cache/prefix/`
        (`PrefixStates`; computed once per model, depth and inputs; float32 up to 2 GiB, else float16), so last-k runs its frozen blocks once per compare instead of every step."""
        bb = self.backbone
        offsets, hidden, dtype = self._prefix_layout(rows)
        path = self._prefix_path(rows, depth)
        if path is not None and path.is_file():
            return PrefixStates(path), offsets
        t0 = time.perf_counter()
        target = (
            PrefixFile(path, offsets, hidden, dtype)
            if path is not None
            else PrefixArray(offsets, hidden, dtype)
        )
        dev = resolve_device(self.device)
        model = bb.model.to(dev).eval()
        data = TokenBatches(rows, None, bb.tokenizer.pad_token_id or 0)
        try:
            with (
                casts_kept(model, dev, self.precision),
                bar(f"frozen blocks 1-{depth}", -(-len(rows) // self.batch_size)) as advance,
            ):
                for idx, batch in data.eval_batches(self.batch_size):
                    with autocast(dev, self.precision):
                        hidden_states = bottom_states(model, {k: v.to(dev) for k, v in batch.items()}, depth)
                    target.put_batch(idx, hidden_states)
                    advance(1)
        except BaseException:
            target.abort()
            raise
        self.seconds += time.perf_counter() - t0
        self.tokens += int(offsets[-1])
        target.close()
        return (target.array if path is None else PrefixStates(path)), offsets

    def _prefix_layout(self, rows: list[dict]) -> tuple[np.ndarray, int, type]:
        """Row offsets (N + 1,), width and dtype of a prefix cache entry of `rows`."""
        lengths = np.asarray([len(r["input_ids"]) for r in rows], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        hidden = self.backbone.hidden_size
        dtype = np.float32 if int(offsets[-1]) * hidden * 4 <= PREFIX_FP32_LIMIT else np.float16
        return offsets, hidden, dtype

    def _prefix_path(self, rows: list[dict], depth: int) -> Path | None:
        key = cache_key(f"{self.model_ref}|prefix-{depth}", rows, self.max_length)
        return self.root.parent / "prefix" / f"{key}.npy" if self.root else None

    @torch.no_grad()
    def _token_states(self, rows: list[dict], name: str, pick, keep: dict) -> np.ndarray:
        bb = self.backbone
        dev = resolve_device(self.device)
        model = bb.model.to(dev).eval()
        data = TokenBatches(rows, None, bb.tokenizer.pad_token_id or 0)
        per_row: list[np.ndarray | None] = [None] * len(rows)
        with (
            casts_kept(model, dev, self.precision),
            bar(f"extract {name}", -(-len(rows) // self.batch_size)) as advance,
        ):
            for idx, batch in data.eval_batches(self.batch_size):
                batch = {k: v.to(dev) for k, v in batch.items()}
                with autocast(dev, self.precision):
                    states = model(**batch, output_hidden_states=True).hidden_states
                    hs = torch.stack(states, 2)  # (B, T, L+1, H)
                for depth, file in keep.items():
                    file.put_batch(idx, states[depth])
                hs = hs.half().cpu().numpy()
                for j, i in enumerate(idx):
                    per_row[i] = hs[j, pick(i)]  # (picked_i, L+1, H)
                advance(1)
        return np.concatenate(per_row) if per_row else np.zeros((0, 1, bb.hidden_size), np.float16)


def select(pools: np.ndarray, pooling: str, layers: str) -> np.ndarray:
    """(N, L+1, 2, H) -> (N, D) for one pooling and one layer combination."""
    return select_layers(pools[:, :, 0 if pooling == "cls" else 1], layers)


def layer_stack(states: np.ndarray, layers: str) -> np.ndarray:
    """(N, L+1, H) per-layer vectors -> (N, K, H) for a model that mixes layers itself: the L blocks
    for weighted-all (as BERT Table 7's "all 12 layers"), the last 4 for weighted-last-4, else the one
    fixed combination of `select_layers` as K = 1."""
    if layers == "weighted-all":
        return states[:, 1:]
    if layers == "weighted-last-4":
        return states[:, -4:]
    return select_layers(states, layers)[:, None]


def select_layers(p: np.ndarray, layers: str) -> np.ndarray:
    """(N, L+1, H) per-layer vectors (index 0 = embeddings) -> (N, D) float32 for one combination."""
    if layers == "embeddings":
        return p[:, 0].astype(np.float32)
    if layers == "last":
        return p[:, -1].astype(np.float32)
    if layers == "second-last":
        return p[:, -2].astype(np.float32)
    if layers == "mean-of-last-4":
        return p[:, -4:].astype(np.float32).mean(1)
    if layers == "concat-last-4":
        return p[:, -4:].astype(np.float32).reshape(len(p), -1)
    if layers == "mean-of-all":
        return p[:, 1:].astype(np.float32).mean(1)
    raise TunebenchError(f"--layers {layers}: choose from {', '.join(LAYER_CHOICES)}")
