"""A transformers ``config.json`` read and checked without importing transformers, so that the CLI
refuses a bad one before it starts the process that builds the model."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

__all__ = ["read_config"]


def read_config(source: Any) -> tuple[dict[str, Any], str]:
    """``(the config as a dict, where it came from)`` for a dict, a ``config.json`` or a directory
    holding one; it must name its ``model_type``."""
    if isinstance(source, Mapping):
        data: Any = dict(source)
        where = "the config"
    else:
        if not isinstance(source, (str, os.PathLike)):
            raise TypeError(f"config must be a PretrainedConfig, a dict, or the path of a config.json or of its "
                            f"directory, got {type(source).__name__}")
        path = os.fspath(source)
        where = os.path.join(path, "config.json") if os.path.isdir(path) else path
        try:
            with open(where, "rb") as handle:
                data = json.load(handle)
        except OSError as err:
            raise ValueError(f"cannot read the config {where}: {err.strerror}") from None
        except ValueError as err:
            raise ValueError(f"{where} is not a JSON config: {err}") from None
    if not isinstance(data, dict) or not isinstance(data.get("model_type"), str):
        raise ValueError(f"{where} has no model_type (a transformers config.json names its model type)")
    return data, where
