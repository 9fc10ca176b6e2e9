"""Pre-training of the distillation head on the frozen expert, before the apprentice's first step.

The head learns from the expert's features and the ground truth only (L_dh, Eq. 2), so it can be
trained before the apprentice exists. Trained jointly from scratch (the paper's recipe), it finds no
focal query during the first part of a short schedule, and SMGD and QFD then distil nothing focal;
`DISTILL.HEAD.PRETRAIN_ITERS` head-only steps first give focal regions from the apprentice's first step.

It runs before `accelerator.prepare`, in plain PyTorch on every process over the whole train split with
the same seed, so every process ends with the same head (DDP broadcasts rank 0's at `prepare` anyway).
It has its own loader and optimizer and draws nothing from the global random state, so the apprentice's
data order, initialisation and random masks are those of a run without it.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from accelerate.utils import send_to_device
from fvcore.common.config import CfgNode
from torch.optim import AdamW
from torch.utils.data import Dataset
from tqdm import tqdm
from transformers import get_cosine_schedule_with_warmup

from fd3d.distill import Distiller
from fd3d.engine.build import build_loader

SUMMARY_WINDOW = 50  # last steps averaged into the reported loss and focal-query count


def _endless(loader: torch.utils.data.DataLoader) -> Iterator[dict]:
    while True:
        yield from loader


def pretrain_distillation_head(
    distiller: Distiller, dataset: Dataset, cfg: CfgNode, device: torch.device, show_progress: bool = True
) -> dict[str, float]:
    """Train `distiller.head` alone for `DISTILL.HEAD.PRETRAIN_ITERS` steps; returns the final averages.

    AdamW at `SOLVER.BASE_LR` with the solver's warm-up and a cosine decay over the pre-training steps;
    the head then keeps training jointly with the apprentice under the main optimizer.
    """
    iters, solver = cfg.DISTILL.HEAD.PRETRAIN_ITERS, cfg.SOLVER
    head = distiller.head
    loader = build_loader(dataset, solver.IMS_PER_BATCH, True, cfg.DATALOADER.NUM_WORKERS, cfg.SEED)
    optimizer = AdamW(head.parameters(), lr=solver.BASE_LR, weight_decay=solver.WEIGHT_DECAY)
    schedule = get_cosine_schedule_with_warmup(optimizer, min(solver.WARMUP_ITERS, iters), iters)
    distiller.to(device).train()
    stream = _endless(loader)
    recent: list[tuple[float, float]] = []
    for step in tqdm(range(iters), desc="distillation head", disable=not show_progress):
        batch = send_to_device(next(stream), device)
        losses = distiller.head_losses(batch)
        total = sum(value for name, value in losses.items() if name.startswith("loss_dh"))
        if not torch.isfinite(total):
            terms = {name: value.item() for name, value in losses.items()}
            raise FloatingPointError(
                f"non-finite distillation-head loss at pre-training step {step}: {terms}"
            )
        optimizer.zero_grad()
        total.backward()
        if solver.GRAD_CLIP > 0:
            torch.nn.utils.clip_grad_norm_(head.parameters(), solver.GRAD_CLIP)
        optimizer.step()
        schedule.step()
        per_sample = losses["num_focal_queries"].item() / len(batch["gt_boxes"])
        recent = [*recent[-(SUMMARY_WINDOW - 1) :], (total.item(), per_sample)]
    optimizer.zero_grad(set_to_none=True)
    return {
        "steps": iters,
        "loss_dh": sum(loss for loss, _ in recent) / len(recent),
        "focal_queries_per_sample": sum(count for _, count in recent) / len(recent),
    }
