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

>>> spec = load_spec({"tensors": {"w": {"shape": [4, 3], "dtype": "float32", "init": "normal", "std": 0.5}}})
>>> spec.tensors[0]
TensorSpec(name='w', shape=(4, 3), dtype='float32', init='normal', params={'std': 0.5})
>>> spec.parameters, spec.nbytes
(12, 48)
"""

from __future__ import annotations

import hashlib
import inspect
import json
import math
import operator
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from ._dispatch import numpy_dtype
from .initializers import SCHEMES, _takes

__all__ = ["TensorSpec", "Spec", "load_spec", "default_spec", "DTYPES"]

DTYPES = ("bfloat16", "float16", "float32", "float64")
_ITEMSIZE = {"bfloat16": 2, "float16": 2, "float32": 4, "float64": 8}
_RESERVED = ("out", "seed", "name", "global_shape", "offset")
_FIELDS = ("shape", "dtype", "init")
#: schemes that need the whole tensor at once (a QR factorization); dry-run only when small
WHOLE_TENSOR = ("orthogonal", "delta_orthogonal")
_DRY_RUN_LIMIT = 1 << 20


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
        return _ITEMSIZE[self.dtype]

    @property
    def nbytes(self) -> int:
        return self.size * self.itemsize

    def fill(self, out: np.ndarray, seed: int, offset: tuple[int, ...] | None = None) -> np.ndarray:
        """Fill ``out``, the box of this tensor at ``offset`` (the whole tensor when None)."""
        offset = (0,) * len(self.shape) if offset is None else offset
        return _call(SCHEMES[self.init], out, seed, self.name, self.shape, offset, self.params)


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
        _check_dtype("--dtype", dtype)
        return Spec(tuple(TensorSpec(t.name, t.shape, dtype, t.init, t.params) for t in self.tensors))


def _call(function, out, seed, name, shape, offset, params):
    kw = {k: v for k, v in (("seed", seed), ("name", name)) if _takes(function, k)}
    return function(out, global_shape=shape, offset=offset, **kw, **params)


def _check_dtype(where: str, dtype) -> str:
    if dtype not in DTYPES:
        raise ValueError(f"{where}: dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    return dtype


def _check_shape(where: str, shape) -> tuple[int, ...]:
    if isinstance(shape, (str, bytes)) or not isinstance(shape, (list, tuple)):
        raise ValueError(f"{where}: shape must be a list of non-negative ints, got {shape!r}")
    try:
        dims = tuple(operator.index(d) for d in shape if not isinstance(d, bool))
    except TypeError:
        dims = ()
    if len(dims) != len(shape):
        raise ValueError(f"{where}: shape must be a list of non-negative ints, got {shape!r}")
    if any(d < 0 for d in dims):
        raise ValueError(f"{where}: shape has a negative dimension: {list(dims)}")
    return dims


def check_init(where: str, init, params: dict, shape: tuple[int, ...], dtype: str) -> None:
    if init not in SCHEMES:
        raise ValueError(f"{where}: unknown init {init!r}; known: {', '.join(sorted(SCHEMES))}")
    function = SCHEMES[init]
    signature = inspect.signature(function)
    reserved = [k for k in params if k in _RESERVED]
    if reserved:
        raise ValueError(f"{where}: {', '.join(map(repr, reserved))} cannot be set in a spec "
                         "(the tensor's name and the run's seed are the stream; boxes are chosen by the writer)")
    try:
        signature.bind(None, **params)
    except TypeError as err:
        accepted = [p for p in signature.parameters if p not in _RESERVED]
        raise ValueError(f"{where}: init {init!r} does not take these fields ({err}); "
                         f"it takes {', '.join(accepted) or 'no parameters'}") from None
    if math.prod(shape) == 0 or (init in WHOLE_TENSOR and math.prod(shape) > _DRY_RUN_LIMIT):
        return
    # a dry run on one element checks the values (std > 0, shape rank, ...) with the function's own messages
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _call(function, np.empty((1,) * len(shape), numpy_dtype(dtype)), 0, "", shape,
                  (0,) * len(shape), params)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{where}: {err}") from None


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


def load_spec(source) -> Spec:
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
        shape = _check_shape(where, entry["shape"])
        dtype = _check_dtype(where, entry["dtype"])
        params = {k: v for k, v in entry.items() if k not in _FIELDS}
        check_init(where, entry["init"], params, shape, dtype)
        tensors.append(TensorSpec(name, shape, dtype, entry["init"], params))
    return Spec(tuple(tensors))


def default_spec(*, vocab: int = 128256, hidden: int = 2048, layers: int = 16, intermediate: int = 8192,
                 heads: int = 32, kv_heads: int = 8, head_dim: int = 64, std: float = 0.02,
                 dtype: str = "bfloat16") -> Spec:
    """The bundled default: a Llama-style decoder of about 1.24 G parameters (Llama 3.2 1B shapes:
    tied embeddings, grouped-query attention), every Linear / Embedding N(0, std**2), RMSNorm weights
    ones, Hugging Face names.

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
