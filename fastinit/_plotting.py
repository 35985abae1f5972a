"""matplotlib for the diagnostics' figures, imported only when a figure is drawn (extra ``plot``),
and the one way they are saved: atomically, through ``_atomic.atomic_output``."""

from __future__ import annotations

import os
from typing import Any

from ._atomic import atomic_output

__all__ = ["pyplot", "save"]


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the non-interactive Agg backend."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("plots need matplotlib: pip install 'fastinit-philox[plot]'") from None
    return plt


def save(figure: Any, path: str | os.PathLike, *, overwrite: bool, dpi: int = 110) -> None:
    """Write ``figure`` to ``path`` (format from the extension) atomically, then close it."""
    try:
        with atomic_output(path, overwrite=overwrite, hint="pass --overwrite (overwrite=True) to replace it",
                           keep_extension=True) as partial:
            figure.savefig(partial, dpi=dpi)
    finally:
        pyplot().close(figure)
