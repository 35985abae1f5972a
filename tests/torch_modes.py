"""A torch function mode that records which functions it sees (for the tests of torch's
``__torch_function__`` dispatch)."""

import torch


class SeenCalls(torch.overrides.TorchFunctionMode):
    def __init__(self):
        super().__init__()
        self.seen = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.seen.append(getattr(func, "__name__", str(func)))
        return func(*args, **(kwargs or {}))
