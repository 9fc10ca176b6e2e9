"""Run modules as at test time for a while: eval mode (no dropout, frozen batch statistics), no gradient."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn


@contextmanager
def evaluating(*modules: nn.Module) -> Iterator[None]:
    """Put `modules` in eval mode under `torch.no_grad()`; on exit, an exception included, give each
    module back the mode it had (`module.train(mode)`, so a module that keeps a part frozen in its
    `train` override still does)."""
    modes = [module.training for module in modules]
    try:
        for module in modules:
            module.eval()
        with torch.no_grad():
            yield
    finally:
        for module, mode in zip(modules, modes, strict=True):
            module.train(mode)
