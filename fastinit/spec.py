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

A top-level ``"recipe": {"name": "torchtitan-llama3", ...options}`` gives every tensor without an
``init`` field the scheme of a trainer's recipe (see ``fastinit.recipes``); a tensor's own ``init``
takes precedence.

Two optional fields describe tensors whose values are not one fill of their own:

* ``"stream": {"name": ..., "shape": [...], "offset": [...], "box": [...]}``: the stored tensor is
  the box at ``offset`` of shape ``box`` of the tensor ``name`` of ``shape`` (its values, fans
  included, are that tensor's); ``box`` without its size-1 dims is ``shape`` without its size-1
  dims (a model's fused experts stored one expert per tensor, for example);
* ``"then": [{"offset": [...], "shape": [...], "init": ..., ...}, ...]``: later fills of boxes of
  that tensor (coordinates in it), in order (an embedding's zeroed padding row, for example).

Examples:
    >>> spec = load_spec({"tensors": {"w": {"shape": [4, 3], "dtype": "float32", "init": "normal", "std": 0.5}}})
    >>> spec.tensors[0]
    TensorSpec(name='w', shape=(4, 3), dtype='float32', init='normal', params={'std': 0.5}, stream=None, then=())
    >>> spec.parameters, spec.nbytes
    (12, 48)
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ._dtypes import DTYPES as _DTYPE_TABLE
from ._dtypes import FLOAT_NAMES
from ._registry import Scheme, lookup, prefixed
from ._validate import check_dtype, check_ints, check_name, check_shape
from .recipes import recipe_schemes

__all__ = ["TensorSpec", "Stream", "BoxFill", "Spec", "load_spec", "default_spec", "DTYPES"]

DTYPES = tuple(sorted(FLOAT_NAMES))
"""The dtype names a spec accepts."""
_FIELDS = ("shape", "dtype", "init")
_OPTIONAL = ("stream", "then")


@dataclass(frozen=True)
class Stream:
    """The tensor a stored tensor's values come from: the box at ``offset`` of shape ``box`` of the
    tensor ``name`` of ``shape``."""

    name: str
    shape: tuple[int, ...]
    offset: tuple[int, ...]
    box: tuple[int, ...]

    def embed(self, stored_shape: tuple[int, ...], offset: tuple[int, ...],
              shape: tuple[int, ...]) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """A box (``offset``, ``shape``) of the stored tensor of ``stored_shape`` in this tensor's
        coordinates: the stored tensor's dims of size > 1 are the box's dims of size > 1, in order."""
        inner = iter((o, n) for o, n, full in zip(offset, shape, stored_shape) if full != 1)
        start, extent = [], []
        for o, b in zip(self.offset, self.box):
            at, size = next(inner) if b != 1 else (0, 1)
            start.append(o + at)
            extent.append(size)
        return tuple(start), tuple(extent)


@dataclass(frozen=True)
class BoxFill:
    """A later fill of the box ``(offset, shape)`` of a tensor with ``init`` and ``params``."""

    offset: tuple[int, ...]
    shape: tuple[int, ...]
    init: str
    params: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"offset": list(self.offset), "shape": list(self.shape), "init": self.init, **self.params}


@dataclass(frozen=True)
class TensorSpec:
    """One tensor of a checkpoint: ``init`` with ``params`` on its ``stream`` (by default, the tensor
    itself), then each of ``then`` on its box."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    init: str
    params: dict = field(default_factory=dict)
    stream: Stream | None = None
    then: tuple[BoxFill, ...] = ()

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

    @property
    def source(self) -> Stream:
        """The tensor the values come from (this one itself unless ``stream`` says otherwise)."""
        return self.stream or Stream(self.name, self.shape, (0,) * len(self.shape), self.shape)

    def fill(self, out: np.ndarray, seed: int, offset: tuple[int, ...] | None = None) -> np.ndarray:
        """Fill ``out``, the box of this tensor at ``offset`` (the whole tensor when None)."""
        offset = (0,) * len(self.shape) if offset is None else tuple(offset)
        source = self.source
        start, extent = source.embed(self.shape, offset, tuple(out.shape)) if self.stream else (offset, out.shape)
        view = out.reshape(extent)
        self.scheme.fill(view, seed=seed, name=source.name, global_shape=source.shape, offset=start, **self.params)
        for later in self.then:
            low = [max(a, b) for a, b in zip(start, later.offset)]
            high = [min(a + n, b + m) for a, n, b, m in zip(start, extent, later.offset, later.shape)]
            if any(h <= lo for lo, h in zip(low, high)):
                continue
            part = np.empty([h - lo for lo, h in zip(low, high)], out.dtype)
            lookup(later.init, "init").fill(part, seed=seed, name=source.name, global_shape=source.shape,
                                            offset=tuple(low), **later.params)
            view[tuple(slice(lo - s, h - s) for lo, h, s in zip(low, high, start))] = part
        return out

    def to_dict(self) -> dict:
        entry: dict[str, Any] = {"shape": list(self.shape), "dtype": self.dtype, "init": self.init, **self.params}
        if self.stream is not None:
            entry["stream"] = {"name": self.stream.name, "shape": list(self.stream.shape),
                               "offset": list(self.stream.offset), "box": list(self.stream.box)}
        if self.then:
            entry["then"] = [later.to_dict() for later in self.then]
        return entry


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
        return {"tensors": {t.name: t.to_dict() for t in self.tensors}}

    def digest(self) -> str:
        """SHA-256 of the canonical JSON of the spec: recorded in every checkpoint's metadata."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    def with_dtype(self, dtype: str) -> Spec:
        """Every tensor in ``dtype`` (the CLI's ``--dtype``)."""
        with prefixed("--dtype"):
            dtype = _dtype_name(dtype)
        return Spec(tuple(replace(t, dtype=dtype) for t in self.tensors))


def _dtype_name(dtype: Any) -> str:
    """A spec's dtype: one of the exact names in ``DTYPES`` (no aliases such as "f4")."""
    if dtype not in DTYPES:
        raise TypeError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    check_dtype(dtype, DTYPES)  # bfloat16 needs ml_dtypes
    return dtype


def _check_init(init: Any, params: Mapping[str, Any], shape: tuple[int, ...], dtype: str) -> str:
    if not isinstance(init, str):
        raise TypeError(f"init must be a scheme name such as 'normal', got {init!r}")
    lookup(init, "init").check(params, shape, dtype)
    return init


def _inside(offset: tuple[int, ...], box: tuple[int, ...], shape: tuple[int, ...]) -> None:
    if len(offset) != len(shape) or len(box) != len(shape) or any(o + n > m for o, n, m in zip(offset, box, shape)):
        raise ValueError(f"the box at offset {list(offset)} of shape {list(box)} lies outside the {list(shape)} "
                         "tensor it is a box of")


def _check_stream(stream: Any, shape: tuple[int, ...]) -> Stream:
    if not isinstance(stream, Mapping) or set(stream) != {"name", "shape", "offset", "box"}:
        raise ValueError(f"stream must be {{'name', 'shape', 'offset', 'box'}}, got {stream!r}")
    if not isinstance(stream["name"], str) or not stream["name"]:
        raise ValueError(f"stream name must be a non-empty str, got {stream['name']!r}")
    check_name(stream["name"])
    full = check_shape(stream["shape"], "stream shape")
    start, box = check_ints("stream offset", stream["offset"]), check_ints("stream box", stream["box"])
    _inside(start, box, full)
    if [n for n in box if n != 1] != [n for n in shape if n != 1]:
        raise ValueError(f"stream box {list(box)} is not the tensor's shape {list(shape)} (size-1 dims aside)")
    return Stream(stream["name"], full, start, box)


def _check_then(then: Any, source: Stream, dtype: str) -> tuple[BoxFill, ...]:
    if not isinstance(then, Sequence) or isinstance(then, (str, bytes)):
        raise ValueError(f"then must be a list of box fills, got {then!r}")
    fills = []
    for i, later in enumerate(then):
        with prefixed(f"then[{i}]"):
            if not isinstance(later, Mapping) or not {"offset", "shape", "init"} <= set(later):
                raise ValueError(f"expected {{'offset': [...], 'shape': [...], 'init': ...}}, got {later!r}")
            box = check_shape(later["shape"])
            start = check_ints("offset", later["offset"])
            _inside(start, box, source.shape)
            params = {k: v for k, v in later.items() if k not in ("offset", "shape", "init")}
            fills.append(BoxFill(start, box, _check_init(later["init"], params, source.shape, dtype), params))
    return tuple(fills)


def check_tensor(name: str, shape: Any, dtype: Any, init: Any, params: Mapping[str, Any], stream: Any = None,
                 then: Any = ()) -> TensorSpec:
    """A validated tensor entry; every error is a ``ValueError`` that names the tensor."""
    with prefixed(f"tensor {name!r}"):
        check_name(name)
        dims = check_shape(shape)
        dtype = _dtype_name(dtype)
        source = None if stream is None else _check_stream(stream, dims)
        full = source.shape if source is not None else dims
        init = _check_init(init, params, full, dtype)
        fills = _check_then(then, source or Stream(name, dims, (0,) * len(dims), dims), dtype)
    return TensorSpec(name, dims, dtype, init, dict(params), source, fills)


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
    except RecursionError:
        raise ValueError(f"spec {path} is nested too deeply to be a spec") from None


def load_spec(source: Mapping[str, Any] | str | os.PathLike) -> Spec:
    """Read and validate a spec: a dict, or a path to a ``.json`` / ``.toml`` file. Every problem is
    reported with the tensor and the field, before any byte of a checkpoint is written."""
    data = _read(source)
    if not isinstance(data, Mapping) or not isinstance(data.get("tensors"), Mapping):
        raise ValueError('spec: expected {"tensors": {"<name>": {"shape": [...], "dtype": ..., "init": ...}}}')
    extra = sorted(set(data) - {"tensors", "recipe"})
    if extra:
        raise ValueError(f"spec: unknown top-level field(s) {', '.join(map(repr, extra))}; only 'tensors' "
                         "and 'recipe'")
    by_recipe = _recipe_inits(data)
    tensors = []
    for name, entry in data["tensors"].items():
        where = f"tensor {name!r}"
        if not isinstance(name, str) or not name:
            raise ValueError(f"spec: tensor names must be non-empty strings, got {name!r}")
        if not isinstance(entry, Mapping):
            raise ValueError(f"{where}: expected a table of fields, got {entry!r}")
        missing = [f for f in _FIELDS if f not in entry and not (f == "init" and name in by_recipe)]
        if missing:
            raise ValueError(f"{where}: missing field(s) {', '.join(map(repr, missing))}")
        params = {k: v for k, v in entry.items() if k not in _FIELDS + _OPTIONAL}
        init = entry["init"] if "init" in entry else by_recipe[name][0]
        if "init" not in entry:
            params = {**by_recipe[name][1], **params}
        tensors.append(check_tensor(name, entry["shape"], entry["dtype"], init, params,
                                    entry.get("stream"), entry.get("then", ())))
    return Spec(tuple(tensors))


def _recipe_inits(data: Mapping) -> dict[str, tuple[str, dict]]:
    """The recipe's scheme of each tensor without an ``init`` field (none without a recipe)."""
    recipe = data.get("recipe")
    if recipe is None:
        return {}
    if not isinstance(recipe, Mapping) or not isinstance(recipe.get("name"), str):
        raise ValueError(f'spec: recipe must be {{"name": "<recipe>", ...options}}, got {recipe!r}')
    shapes = {}
    for name, entry in data["tensors"].items():
        if isinstance(name, str) and isinstance(entry, Mapping) and "init" not in entry and "shape" in entry:
            with prefixed(f"tensor {name!r}"):
                shapes[name] = check_shape(entry["shape"])
    with prefixed("spec recipe"):
        return recipe_schemes(recipe["name"], shapes, **{k: v for k, v in recipe.items() if k != "name"})


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
