"""AdamW with a slower backbone and the reference schedule: linear warm-up, cosine decay to zero."""

from __future__ import annotations

from collections.abc import Sequence

from fvcore.common.config import CfgNode
from torch import nn
from torch.optim import AdamW, Optimizer
from torch.optim.lr_scheduler import LambdaLR
from transformers import get_cosine_schedule_with_warmup


def build_optimizer(model: nn.Module, cfg: CfgNode) -> Optimizer:
    """Trainable parameters in two groups: backbones at BASE_LR x BACKBONE_LR_FACTOR, the rest at BASE_LR."""
    solver = cfg.SOLVER
    backbone, rest = [], []
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        (backbone if ".backbone." in f".{name}" else rest).append(parameter)
    groups = [{"params": rest, "lr": solver.BASE_LR}]
    if backbone:
        groups.append({"params": backbone, "lr": solver.BASE_LR * solver.BACKBONE_LR_FACTOR})
    return AdamW(groups, lr=solver.BASE_LR, weight_decay=solver.WEIGHT_DECAY)


def build_scheduler(optimizer: Optimizer, cfg: CfgNode) -> LambdaLR:
    warmup = min(cfg.SOLVER.WARMUP_ITERS, cfg.SOLVER.MAX_ITER)
    return get_cosine_schedule_with_warmup(optimizer, warmup, cfg.SOLVER.MAX_ITER)


def build_phase_optimizer(
    parameters: Sequence[nn.Parameter], steps: int, cfg: CfgNode
) -> tuple[Optimizer, LambdaLR]:
    """A training phase's own AdamW at BASE_LR over `parameters`, with the solver's warm-up (at most
    `steps`) and a cosine decay to zero over the phase's `steps`."""
    solver = cfg.SOLVER
    optimizer = AdamW(list(parameters), lr=solver.BASE_LR, weight_decay=solver.WEIGHT_DECAY)
    return optimizer, get_cosine_schedule_with_warmup(optimizer, min(solver.WARMUP_ITERS, steps), steps)
