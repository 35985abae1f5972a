"""Per-module statistics of any torch module at initialization, by forward hooks.

``diagnose(module, inputs)`` runs one forward pass (in eval mode, so dropout is off; the modes
are restored), records the mean and std of every submodule's output in the order they run and,
with ``gradients=True``, the std of ``dL/d(output)`` for ``L = sum(y * r)``, ``y`` the model's
output and ``r ~ N(0, 1)`` (fastinit stream ``(seed, "output_grad")``), through
``torch.autograd.grad``: no parameter's ``.grad`` is touched. torch is imported on the first call.

``diagnose_config(config)`` does this for a transformers model built and initialized by
``fastinit.transformers`` on random token ids (the backend of ``fastinit diagnose --hf``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import _plotting
from ._validate import check_positive_int, check_seed
from .distributions import normal_, uniform_

__all__ = ["ModuleStats", "Diagnosis", "diagnose", "diagnose_config"]


@dataclass(frozen=True)
class ModuleStats:
    """One submodule's output at initialization: its qualified ``name`` (``#2`` etc. for later calls
    of a shared module), class ``kind``, output ``shape``, ``mean`` and ``std`` over all elements,
    and ``grad_std``, the std of the loss gradient with respect to it (NaN when not recorded)."""

    name: str
    kind: str
    shape: tuple[int, ...]
    mean: float
    std: float
    grad_std: float


@dataclass(frozen=True)
class Diagnosis:
    """What ``diagnose`` recorded, one ``ModuleStats`` per submodule call, in execution order."""

    modules: tuple[ModuleStats, ...]

    def table(self) -> str:
        """A plain-text table, one row per submodule call."""
        rows = [("#", "module", "type", "shape", "mean", "std", "grad std")]
        for i, m in enumerate(self.modules):
            grad = "-" if math.isnan(m.grad_std) else f"{m.grad_std:.4g}"
            rows.append((str(i), m.name, m.kind, "x".join(map(str, m.shape)), f"{m.mean:+.3g}", f"{m.std:.4g}", grad))
        sizes = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
        align = (str.rjust, str.ljust, str.ljust, str.rjust, str.rjust, str.rjust, str.rjust)
        return "\n".join("  ".join(a(cell, n) for a, cell, n in zip(align, r, sizes)).rstrip() for r in rows)

    def plot(self, path: str | os.PathLike, *, overwrite: bool = False) -> None:
        """Output std (and gradient std, where recorded) per submodule, into an image at ``path``
        (written atomically; needs matplotlib)."""
        plt = _plotting.pyplot()
        figure, ax = plt.subplots(figsize=(max(6.4, 0.12 * len(self.modules)), 4.2), constrained_layout=True)
        index = np.arange(len(self.modules))
        ax.plot(index, [m.std for m in self.modules], marker="o", markersize=3, label="output std")
        grads = np.array([m.grad_std for m in self.modules])
        if not np.all(np.isnan(grads)):
            ax.plot(index, grads, marker="s", markersize=3, label="gradient std")
        ax.set_yscale("log")
        step = max(1, len(self.modules) // 30)
        ax.set_xticks(index[::step], [self.modules[i].name for i in index[::step]], rotation=90, fontsize=6)
        ax.set_xlabel("submodule, in execution order")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
        _plotting.save(figure, path, overwrite=overwrite)


def _first_tensor(value: Any, torch: Any) -> Any:
    """The first floating-point tensor in a module's output (a tensor, tuple, list or ModelOutput)."""
    if isinstance(value, torch.Tensor):
        return value if value.is_floating_point() else None
    items = value.values() if isinstance(value, Mapping) else value if isinstance(value, (tuple, list)) else ()
    for item in items:
        found = _first_tensor(item, torch)
        if found is not None:
            return found
    return None


def diagnose(module: Any, inputs: Any, *, gradients: bool = True, seed: int = 0,
             leaves_only: bool = False) -> Diagnosis:
    """Statistics of every submodule's output (``leaves_only``: of modules without children) for
    one forward pass of ``module`` on ``inputs`` (a tensor, a tuple of positional arguments or a
    dict of keyword arguments), and of the gradients (see the module text).

    Examples:
        >>> import torch, fastinit as fi, fastinit.torch
        >>> import fastinit.diagnostics as fd
        >>> net = torch.nn.Sequential(torch.nn.Linear(256, 256), torch.nn.ReLU(), torch.nn.Linear(256, 256))
        >>> net = fastinit.torch.init_module(net, schemes={"*.weight": ("kaiming_normal", {"nonlinearity": "relu"}),
        ...                                               "*.bias": "zeros"}, seed=0)
        >>> x = torch.from_numpy(fi.normal_(np.empty((64, 256), np.float32), seed=0, name="x"))
        >>> d = fd.diagnose(net, x)
        >>> [m.name for m in d.modules], round(d.modules[0].std, 1)
        (['0', '1', '2'], 1.4)
    """
    import torch

    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"module must be a torch.nn.Module, got {type(module).__name__}")
    if not isinstance(gradients, bool):
        raise TypeError(f"gradients must be a bool, got {type(gradients).__name__}")
    seed = check_seed(seed)
    records: list[tuple[str, str, Any]] = []
    calls: dict[str, int] = {}

    def hook(name: str):
        def record(sub: Any, args: Any, output: Any) -> None:
            tensor = _first_tensor(output, torch)
            if tensor is not None:
                calls[name] = calls.get(name, 0) + 1
                records.append((name if calls[name] == 1 else f"{name}#{calls[name]}", type(sub).__name__, tensor))
        return record

    handles = [sub.register_forward_hook(hook(name)) for name, sub in module.named_modules()
               if name and not (leaves_only and next(sub.children(), None) is not None)]
    modes = [(sub, sub.training) for sub in module.modules()]
    module.eval()
    try:
        with torch.enable_grad() if gradients else torch.no_grad():
            if isinstance(inputs, Mapping):
                result = module(**inputs)
            elif isinstance(inputs, (tuple, list)):
                result = module(*inputs)
            else:
                result = module(inputs)
        grads: list[Any] = [None] * len(records)
        output = _first_tensor(result, torch)
        if gradients and output is not None and output.requires_grad:
            r = normal_(np.empty(tuple(output.shape), np.float32), seed=seed, name="output_grad")
            loss = (output * torch.from_numpy(r).to(output.dtype)).sum()
            wanted = [i for i, (_, _, t) in enumerate(records) if t.requires_grad]
            found = torch.autograd.grad(loss, [records[i][2] for i in wanted], allow_unused=True)
            for i, g in zip(wanted, found):
                grads[i] = g
    finally:
        for handle in handles:
            handle.remove()
        for sub, training in modes:
            sub.train(training)
    stats = []
    for (name, kind, tensor), grad in zip(records, grads):
        values = tensor.detach().double()
        grad_std = math.nan if grad is None else float(grad.double().std(correction=0))
        stats.append(ModuleStats(name, kind, tuple(tensor.shape), float(values.mean()),
                                 float(values.std(correction=0)), grad_std))
    return Diagnosis(tuple(stats))


def diagnose_config(config_source: Any, *, seed: int = 0, batch: int = 2, seq_len: int = 16,
                    plot_path: str | os.PathLike | None = None, overwrite: bool = False,
                    gradients: bool = True) -> str:
    """Build the transformers model of ``config_source`` (a dict, a ``config.json`` or its
    directory; see ``fastinit.transformers.load_config``), initialize it with fastinit (``seed``),
    run ``diagnose`` on ``batch`` x ``seq_len`` random token ids (stream ``(seed, "input_ids")``;
    an encoder-decoder gets them as decoder inputs too) and return the table, under a header
    line; ``plot_path`` also writes the figure. Needs the ``transformers`` extra."""
    check_positive_int("batch", batch)
    check_positive_int("seq_len", seq_len)
    seed = check_seed(seed)
    import torch

    from . import transformers as fit

    config = fit.load_config(config_source)
    vocab = getattr(config, "vocab_size", None)
    if not isinstance(vocab, int) or vocab < 1:
        raise ValueError(f"a {config.model_type} config has no vocab_size: diagnose_config feeds token ids, so it "
                         "takes text models (use diagnose(module, inputs) for others)")
    model = fit.init_model(fit.build_model(config), seed=seed)
    u = uniform_(np.empty((batch, seq_len)), seed=seed, name="input_ids")
    ids = torch.from_numpy(np.minimum((u * vocab).astype(np.int64), vocab - 1))
    inputs = {"input_ids": ids}
    if getattr(config, "is_encoder_decoder", False):
        inputs["decoder_input_ids"] = ids
    result = diagnose(model, inputs, gradients=gradients, seed=seed)
    if plot_path is not None:
        result.plot(plot_path, overwrite=overwrite)
    parameters = sum(p.numel() for p in model.parameters())
    header = (f"{config.model_type} ({type(model).__name__}, {parameters:,} parameters) initialized by fastinit, seed "
              f"{seed}; {batch} x {seq_len} random token ids; output std and gradient std of sum(y * r), r ~ N(0, 1)")
    return header + "\n" + result.table()
