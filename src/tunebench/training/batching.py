"""Dynamic padding and length-grouped batches: short sentences are never padded to 512."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch


def pad_multiple() -> int:
    """Batch widths are rounded up to a multiple of 8 where a GPU can run them (tensor-core tiles, fewer
    shapes for torch.compile); on a CPU-only machine every padded token is paid for, so 1."""
    return 8 if torch.cuda.is_available() else 1


def pad_rows(
    rows: Sequence[dict[str, list[int]]], pad_id: int, multiple: int | None = None
) -> dict[str, torch.Tensor]:
    """Pad token rows to the longest in the batch, rounded up to `multiple` (default `pad_multiple()`)."""
    multiple = multiple or pad_multiple()
    longest = max(len(r["input_ids"]) for r in rows)
    width = -(-longest // multiple) * multiple
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    types = torch.zeros((len(rows), width), dtype=torch.long) if "token_type_ids" in rows[0] else None
    for i, r in enumerate(rows):
        n = len(r["input_ids"])
        ids[i, :n] = torch.tensor(r["input_ids"])
        mask[i, :n] = 1
        if types is not None:
            types[i, :n] = torch.tensor(r["token_type_ids"])
    batch = {"input_ids": ids, "attention_mask": mask}
    if types is not None:
        batch["token_type_ids"] = types
    return batch


def length_grouped_order(
    lengths: Sequence[int], batch_size: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """Shuffle, cut into mega-batches of 50 batches, sort each by length, then shuffle the batches.

    Same idea as HF's LengthGroupedSampler: similar lengths share a batch (little padding) while
    the order stays random enough for SGD.
    """
    lengths = np.asarray(lengths)
    perm = rng.permutation(len(lengths))
    mega = batch_size * 50
    batches = []
    for start in range(0, len(perm), mega):
        chunk = perm[start : start + mega]
        chunk = chunk[np.argsort(-lengths[chunk], kind="stable")]
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]


IGNORE = -100  # label of sub-tokens and padding in token-level tasks (cross_entropy's ignore_index)


class TokenBatches:
    """Tokenized rows + labels: training batches (length-grouped, shuffled) and eval batches (sorted).

    Labels are one per row (class ids, floats, or (start, end) spans) or, for token-level tasks, one
    list per row, padded with IGNORE to the batch width."""

    def __init__(
        self, rows: list[dict[str, list[int]]], labels, pad_id: int, extra: np.ndarray | None = None
    ):
        self.rows = rows
        # (N, D) per-row feature columns (--feature-cols): batches carry them as "extra" for the fusion head
        self.extra = None if extra is None else torch.as_tensor(np.asarray(extra, dtype=np.float32))
        # a list of per-row sequences = token labels; an array (N,) or (N, 2) = one label per row
        self.per_token = (
            isinstance(labels, list) and len(labels) > 0 and isinstance(labels[0], (list, np.ndarray))
        )
        if labels is None or self.per_token:
            self.labels = labels
        else:
            self.labels = torch.as_tensor(np.asarray(labels))
        self.pad_id = pad_id
        self.lengths = [len(r["input_ids"]) for r in rows]

    def __len__(self) -> int:
        return len(self.rows)

    def _inputs(self, idx: np.ndarray) -> dict[str, torch.Tensor]:
        return pad_rows([self.rows[i] for i in idx], self.pad_id)

    def _batch(self, idx: np.ndarray) -> dict[str, torch.Tensor]:
        batch = self._inputs(idx)
        if self.extra is not None:
            batch["extra"] = self.extra[torch.as_tensor(idx)]
        if self.per_token:
            labels = torch.full(batch["attention_mask"].shape, IGNORE, dtype=torch.long)  # (B, T)
            for j, i in enumerate(idx):
                labels[j, : len(self.labels[i])] = torch.as_tensor(np.asarray(self.labels[i]))
            batch["labels"] = labels
        elif self.labels is not None:
            batch["labels"] = self.labels[torch.as_tensor(idx)]
        return batch

    def train_batches(
        self, batch_size: int, seed: int, rows: np.ndarray | None = None
    ) -> Iterator[dict[str, torch.Tensor]]:
        """An epoch's batches: shuffled, grouped by length; `rows`: these rows instead of each row once (a
        sampler's draw, e.g. imbalance.BalancedBatches), grouped by length the same way."""
        rng = np.random.default_rng(seed)
        if rows is None:
            yield from (self._batch(idx) for idx in length_grouped_order(self.lengths, batch_size, rng))
            return
        rows = np.asarray(rows)
        lengths = [self.lengths[i] for i in rows]
        for idx in length_grouped_order(lengths, batch_size, rng):  # positions in `rows`
            yield self._batch(rows[idx])

    def eval_batches(self, batch_size: int) -> Iterator[tuple[np.ndarray, dict[str, torch.Tensor]]]:
        order = np.argsort(-np.asarray(self.lengths), kind="stable")
        for i in range(0, len(order), batch_size):
            idx = order[i : i + batch_size]
            yield idx, self._batch(idx)


class StateBatches(TokenBatches):
    """The same rows, labels and batch order as `tokens`, with each row's cached hidden states after the
    frozen bottom blocks (backbones/prefix.py) in place of its token ids: `states` is (sum of row
    lengths, H), rows end to end (an array, or a cache entry on disk read by row range:
    prefix_files.PrefixStates), `offsets` (N + 1,) where each row starts."""

    def __init__(self, states: np.ndarray, offsets: np.ndarray, tokens: TokenBatches):
        super().__init__(tokens.rows, None, tokens.pad_id)
        self.per_token, self.labels, self.extra = tokens.per_token, tokens.labels, tokens.extra
        self.states, self.offsets, self.multiple = states, offsets, pad_multiple()

    def _inputs(self, idx: np.ndarray) -> dict[str, torch.Tensor]:
        width = -(-max(self.lengths[i] for i in idx) // self.multiple) * self.multiple
        hidden = torch.zeros((len(idx), width, self.states.shape[1]), dtype=torch.float32)
        mask = torch.zeros((len(idx), width), dtype=torch.long)
        for j, i in enumerate(idx):
            a, b = self.offsets[i], self.offsets[i + 1]
            rows = np.asarray(self.states[a:b], dtype=np.float32)  # on disk: a fresh array read from the file
            hidden[j, : b - a] = torch.from_numpy(rows)
            mask[j, : b - a] = 1
        return {"hidden_states": hidden, "attention_mask": mask}


class TensorBatches:
    """Pre-computed feature vectors + labels (cached frozen activations), and the rows' feature columns
    (`extra`, --feature-cols) when the data has them."""

    def __init__(self, features: np.ndarray, labels: Sequence[int] | None, extra: np.ndarray | None = None):
        self.features = torch.as_tensor(features, dtype=torch.float32)
        self.labels = None if labels is None else torch.as_tensor(np.asarray(labels))
        self.extra = None if extra is None else torch.as_tensor(np.asarray(extra, dtype=np.float32))

    def __len__(self) -> int:
        return len(self.features)

    def _batch(self, idx: np.ndarray) -> dict[str, torch.Tensor]:
        t = torch.as_tensor(idx)
        batch = {"features": self.features[t]}
        if self.extra is not None:
            batch["extra"] = self.extra[t]
        if self.labels is not None:
            batch["labels"] = self.labels[t]
        return batch

    def train_batches(
        self, batch_size: int, seed: int, rows: np.ndarray | None = None
    ) -> Iterator[dict[str, torch.Tensor]]:
        perm = np.random.default_rng(seed).permutation(len(self)) if rows is None else rows
        for i in range(0, len(perm), batch_size):
            yield self._batch(perm[i : i + batch_size])

    def eval_batches(self, batch_size: int) -> Iterator[tuple[np.ndarray, dict[str, torch.Tensor]]]:
        idx = np.arange(len(self))
        for i in range(0, len(idx), batch_size):
            yield idx[i : i + batch_size], self._batch(idx[i : i + batch_size])
