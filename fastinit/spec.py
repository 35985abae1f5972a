"""Checkpoint specs: which tensors a checkpoint holds and how each is initialized.

A spec is JSON (or TOML) of the form::

    {"tensors": {
        "model.layers.0.mlp.down_proj.weight":
            {"shape": [2048, 8192], "dtype": "bfloat16", "init": "normal", "std": 0.02},
        ...}}

``init`` is any fastinit fill or scheme without its trailing underscore (``"normal"``,
``"kaiming_uniform"``, ``"ones"``, ...); every other field is a keyword argument of that function.
A tensor's name is its stream ``name``; the run's seed is every tensor's ``seed``. So tensor
``n`` of a checkpoint equals ``fastinit.<init>_(np.empty(shape, dtype), seed=seed, name=n, ...)``.

Examples:
    >>> spec = load_spec({"tensors": {"w": {"shape": [4, 3], "dtype": "float32", "init": "normal", "std": 0.5}}})
    >>> spec.tensors[0]
    TensorSpec(name='w', shape=(4, 3), dtype='float32', init='normal', params={'std': 0.5})
    >>> spec.parameters, spec.nbytes
    (12, 48)
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._dtypes import DTYPES as _DTYPE_TABLE
from ._dtypes import FLOAT_NAMES
from ._registry import Scheme, lookup, prefixed
from ._validate import check_dtype, check_shape

__all__ = ["TensorSpec", "Spec", "load_spec", "default_spec", "DTYPES"]

DTYPES = tuple(sorted(FLOAT_NAMES))
"""The dtype names a spec accepts."""
_FIELDS = ("shape", "dtype", "init")


@dataclass(frozen=True)
class TensorSpec:
    """One tensor of a checkpoint."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    init: str
    params: dict = field(default_factory=dict)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def itemsize(self) -> int:
        return _DTYPE_TABLE[self.dtype].itemsize

    @property
    def scheme(self) -> Scheme:
        return lookup(self.init, "init")

    @property
    def nbytes(self) -> int:
        return self.size * self.itemsize

    def fill(self, out: np.ndarray, seed: int, offset: tuple[int, ...] | None = None) -> np.ndarray:
        """Fill ``out``, the box of this tensor at ``offset`` (the whole tensor when None)."""
        offset = (0,) * len(self.shape) if offset is None else offset
        return self.scheme.fill(out, seed=seed, name=self.name, global_shape=self.shape, offset=offset,
                                **self.params)


@dataclass(frozen=True)
class Spec:
    """The tensors of a checkpoint, in file order."""

    tensors: tuple[TensorSpec, ...]

    @property
    def parameters(self) -> int:
        return sum(t.size for t in self.tensors)

    @property
    def nbytes(self) -> int:
        return sum(t.nbytes for t in self.tensors)

    def to_dict(self) -> dict:
        return {"tensors": {t.name: {"shape": list(t.shape), "dtype": t.dtype, "init": t.init, **t.params}
                            for t in self.tensors}}

    def digest(self) -> str:
        """SHA-256 of the canonical JSON of the spec: recorded in every checkpoint's metadata."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    def with_dtype(self, dtype: str) -> Spec:
        """Every tensor in ``dtype`` (the CLI's ``--dtype``)."""
        with prefixed("--dtype"):
            dtype = _dtype_name(dtype)
        return Spec(tuple(TensorSpec(t.name, t.shape, dtype, t.init, t.params) for t in self.tensors))


def _dtype_name(dtype: Any) -> str:
    """A spec's dtype: one of the exact names in ``DTYPES`` (no aliases such as "f4")."""
    if dtype not in DTYPES:
        raise TypeError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    check_dtype(dtype, DTYPES)  # bfloat16 needs ml_dtypes
    return dtype


def check_tensor(name: str, shape: Any, dtype: Any, init: Any, params: Mapping[str, Any]) -> TensorSpec:
    """A validated tensor entry; every error is a ``ValueError`` that names the tensor."""
    with prefixed(f"tensor {name!r}"):
        dims = check_shape(shape)
        dtype = _dtype_name(dtype)
        if not isinstance(init, str):
            raise TypeError(f"init must be a scheme name such as 'normal', got {init!r}")
        lookup(init, "init").check(params, dims, dtype)
    return TensorSpec(name, dims, dtype, init, dict(params))


def _duplicate_keys(pairs):
    seen = {}
    for key, value in pairs:
        if key in seen:
            raise ValueError(f"spec: duplicate tensor or field name {key!r}")
        seen[key] = value
    return seen


def _read(source) -> Mapping:
    """The spec's data: ``source`` itself if a mapping, else the parsed JSON / TOML file."""
    if isinstance(source, Mapping):
        return source
    path = os.fspath(source)
    toml = path.endswith(".toml")
    try:
        with open(path, "rb") as file:
            raw = file.read()
    except OSError as err:
        raise ValueError(f"cannot read spec {path}: {err.strerror}") from None
    try:
        if not toml:
            return json.loads(raw, object_pairs_hook=_duplicate_keys)
        try:
            import tomllib
        except ImportError:  # Python 3.10
            raise ValueError("TOML specs need Python 3.11 or later; use JSON") from None
        return tomllib.loads(raw.decode())
    except ValueError as err:  # JSON / TOML syntax, encoding, duplicate names
        raise ValueError(f"spec {path} is not valid {'TOML' if toml else 'JSON'}: {err}") from None


def load_spec(source: Mapping[str, Any] | str | os.PathLike) -> Spec:
    """Read and validate a spec: a dict, or a path to a ``.json`` / ``.toml`` file. Every problem is
    reported with the tensor and the field, before any byte of a checkpoint is written."""
    data = _read(source)
    if not isinstance(data, Mapping) or not isinstance(data.get("tensors"), Mapping):
        raise ValueError('spec: expected {"tensors": {"<name>": {"shape": [...], "dtype": ..., "init": ...}}}')
    extra = sorted(set(data) - {"tensors"})
    if extra:
        raise ValueError(f"spec: unknown top-level field(s) {', '.join(map(repr, extra))}; only 'tensors'")
    tensors = []
    for name, entry in data["tensors"].items():
        where = f"tensor {name!r}"
        if not isinstance(name, str) or not name:
            raise ValueError(f"spec: tensor names must be non-empty strings, got {name!r}")
        if not isinstance(entry, Mapping):
            raise ValueError(f"{where}: expected a table of fields, got {entry!r}")
        missing = [f for f in _FIELDS if f not in entry]
        if missing:
            raise ValueError(f"{where}: missing field(s) {', '.join(map(repr, missing))}")
        params = {k: v for k, v in entry.items() if k not in _FIELDS}
        tensors.append(check_tensor(name, entry["shape"], entry["dtype"], entry["init"], params))
    return Spec(tuple(tensors))


def default_spec(*, vocab: int = 128256, hidden: int = 2048, layers: int = 16, intermediate: int = 8192,
                 heads: int = 32, kv_heads: int = 8, head_dim: int = 64, std: float = 0.02,
                 dtype: str = "bfloat16") -> Spec:
    """The bundled default: a Llama-style decoder of about 1.24 G parameters (Llama 3.2 1B shapes:
    tied embeddings, grouped-query attention), every Linear / Embedding N(0, std**2), RMSNorm weights
    ones, Hugging Face names.

    Examples:
        >>> spec = default_spec()
        >>> len(spec.tensors), spec.parameters
        (146, 1235814400)
    """
    def linear(out_features, in_features):
        return {"shape": [out_features, in_features], "dtype": dtype, "init": "normal", "std": std}

    def norm():
        return {"shape": [hidden], "dtype": dtype, "init": "ones"}

    tensors = {"model.embed_tokens.weight": linear(vocab, hidden)}
    for i in range(layers):
        p = f"model.layers.{i}."
        tensors.update({
            p + "self_attn.q_proj.weight": linear(heads * head_dim, hidden),
            p + "self_attn.k_proj.weight": linear(kv_heads * head_dim, hidden),
            p + "self_attn.v_proj.weight": linear(kv_heads * head_dim, hidden),
            p + "self_attn.o_proj.weight": linear(hidden, heads * head_dim),
            p + "mlp.gate_proj.weight": linear(intermediate, hidden),
            p + "mlp.up_proj.weight": linear(intermediate, hidden),
            p + "mlp.down_proj.weight": linear(hidden, intermediate),
            p + "input_layernorm.weight": norm(),
            p + "post_attention_layernorm.weight": norm(),
        })
    tensors["model.norm.weight"] = norm()
    return load_spec({"tensors": tensors})
