"""A user's output array as a kernel target: the array checks, and the box of the global tensor it
holds as rows of contiguous global indices. Nothing here draws a random number."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ._dtypes import DTYPES
from ._validate import check_box, check_dtype


class Target:
    """A validated output array and the box of the global tensor it holds."""

    __slots__ = (
        "base",
        "dtype",
        "flat",
        "global_shape",
        "lead_shape",
        "lead_strides",
        "offset",
        "out",
        "row_len",
        "storage",
    )
    flat: np.ndarray

    def __init__(self, out: Any, accepted: Sequence[str], global_shape: Any, offset: Any):
        if not isinstance(out, np.ndarray):
            raise TypeError(
                f"out must be a NumPy array or np.memmap, got {type(out).__module__}.{type(out).__name__}"
                " (for torch tensors use fastinit.torch)"
            )
        check_dtype(out.dtype, accepted, "out.dtype")
        if not out.dtype.isnative:
            raise ValueError(f"out must be in the machine's byte order, got {out.dtype.str} "
                             "(fill a native array and convert it with .astype)")
        if not out.flags.c_contiguous:
            raise ValueError("out must be C-contiguous (fill a contiguous array and copy it into place)")
        if not out.flags.writeable:
            raise ValueError("out must be writable (got a read-only array or a mode='r' memmap)")
        entry = DTYPES[out.dtype.name]
        self.out = out
        self.dtype = out.dtype
        self.storage = entry.storage
        self.flat = np.asarray(out).reshape(-1).view(entry.kernel_view)
        self.global_shape, self.offset = check_box(out.shape, global_shape, offset)
        self._canonicalize(out.shape, self.offset)

    def _canonicalize(self, shape: tuple[int, ...], box_offset: tuple[int, ...]) -> None:
        """Rows along which the box is contiguous in the global C order, and where they start."""
        gshape = self.global_shape
        strides = [math.prod(gshape[d + 1:]) for d in range(len(gshape))]
        self.base = sum(o * s for o, s in zip(box_offset, strides))
        # dims [split:] are one contiguous run of global indices: every trailing dim that spans the
        # full global extent, and the first one (from the end) that does not
        split = len(shape)
        while split > 0:
            split -= 1
            if shape[split] != gshape[split]:
                break
        lead = [(n, s) for n, s in zip(shape[:split], strides[:split]) if n != 1]
        self.row_len = math.prod(shape[split:])
        self.lead_shape = np.array([n for n, _ in lead], dtype=np.int64)
        self.lead_strides = np.array([s for _, s in lead], dtype=np.int64)

    @property
    def size(self) -> int:
        return int(self.out.size)

    @property
    def box(self) -> tuple[slice, ...]:
        """The slices of the global tensor that ``out`` holds."""
        return tuple(slice(o, o + n) for o, n in zip(self.offset, self.out.shape))
