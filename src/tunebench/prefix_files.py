"""The frozen-prefix cache's entries: the hidden states after a backbone's first blocks at every token,
rows end to end in one (sum of row lengths, H) .npy file per model, depth and inputs (`extract.py`
writes them, last-k's top blocks train on them). Written and read with plain file calls rather than a
memory map: a map's touched pages count in the process's memory (RSS) as long as it is open, about
146 MB for SST-2's three splits at 2,000 sentences, while pages read or written with plain file
calls stay the kernel's file cache."""

from __future__ import annotations

import os
import weakref
from pathlib import Path

import numpy as np
import torch


class PrefixFile:
    """A frozen-prefix cache entry ((sum of row lengths, H) .npy, rows end to end at `offsets`) written
    batch by batch with plain file writes (pages written through a memory map count in the process's
    memory), under a temporary name until `close` renames it into place; `abort` removes it."""

    def __init__(self, path: Path, offsets: np.ndarray, hidden: int, dtype):
        self.path, self.offsets, self.dtype = path, offsets, np.dtype(dtype)
        self.tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")  # this process's name: workers share the cache
        path.parent.mkdir(parents=True, exist_ok=True)
        self.file = open(self.tmp, "wb")  # noqa: SIM115 (closed by close / abort)
        shape = (int(offsets[-1]), hidden)
        header = {"descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False, "shape": shape}
        np.lib.format.write_array_header_1_0(self.file, header)
        self.start = self.file.tell()
        self.row_bytes = hidden * self.dtype.itemsize
        self.file.truncate(self.start + shape[0] * self.row_bytes)

    def put_batch(self, idx, hidden: torch.Tensor) -> None:
        """Row idx[j] of the inputs is `hidden[j]` (B, T, H) cut to its own length."""
        states = hidden.float().cpu().numpy().astype(self.dtype, copy=False)
        for j, i in enumerate(idx):
            a, b = self.offsets[i], self.offsets[i + 1]
            os.pwrite(self.file.fileno(), states[j, : b - a].tobytes(), self.start + int(a) * self.row_bytes)

    def close(self) -> None:
        self.file.close()
        self.tmp.replace(self.path)  # atomic: an interrupted extraction never leaves a partial entry

    def abort(self) -> None:
        self.file.close()
        self.tmp.unlink(missing_ok=True)


class PrefixArray:
    """A `PrefixFile`'s rows kept in memory (`array`), for a source without a cache folder."""

    def __init__(self, offsets: np.ndarray, hidden: int, dtype):
        self.offsets, self.array = offsets, np.zeros((int(offsets[-1]), hidden), dtype=dtype)

    def put_batch(self, idx, hidden: torch.Tensor) -> None:
        states = hidden.float().cpu().numpy()
        for j, i in enumerate(idx):
            a, b = self.offsets[i], self.offsets[i + 1]
            self.array[a:b] = states[j, : b - a]

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass


class PrefixStates:
    """A finished entry, read by row range: `states[a:b]` is a fresh (b - a, H) array read from the
    file with an unbuffered `readinto` (no copy between the file and the array); `len`, `shape`,
    `dtype` and `np.asarray(states)` (the whole entry) as for the array it holds."""

    def __init__(self, path: Path):
        with open(path, "rb") as f:
            if np.lib.format.read_magic(f) != (1, 0):
                raise ValueError(f"{path}: not a prefix cache entry (.npy format 1.0)")
            self.shape, fortran, self.dtype = np.lib.format.read_array_header_1_0(f)
            self.start = f.tell()
        if fortran or len(self.shape) != 2:
            raise ValueError(f"{path}: not a prefix cache entry (a C-ordered 2-d array)")
        self.path, self.row_bytes = path, self.shape[1] * self.dtype.itemsize
        self.file = open(path, "rb", buffering=0)  # noqa: SIM115 (closed when this object goes)
        weakref.finalize(self, self.file.close)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, rows: slice) -> np.ndarray:
        a, b, step = rows.indices(len(self))
        if step != 1:
            raise IndexError("prefix states are read by contiguous row ranges")
        out = np.empty((max(b - a, 0), self.shape[1]), dtype=self.dtype)
        view, done = out.reshape(-1).view(np.uint8), 0
        self.file.seek(self.start + a * self.row_bytes)
        while done < out.nbytes:
            n = self.file.readinto(view[done:])
            if not n:
                raise OSError(f"{self.path}: shorter than its header says (rows {a}:{b})")
            done += n
        return out

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        whole = self[:]
        return whole if dtype is None else whole.astype(dtype)
