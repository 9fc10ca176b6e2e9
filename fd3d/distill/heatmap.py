"""The released HeatmapDistiller baseline's BEV term: L2 inside a Gaussian heatmap of ground-truth boxes.

Every ground-truth box adds a class-agnostic Gaussian centred on it, sigma = a third of its footprint's
half-diagonal in cells (at least one cell), merged by maximum; the squared feature error summed over
channels is weighted by the heatmap and divided by its sum, so the loss is a weighted mean over objects.
"""

from __future__ import annotations

import torch
from fvcore.common.config import CfgNode
from torch import Tensor, nn

from fd3d.distill.alignment import FeatureAligner
from fd3d.distill.cwd import channel_wise_divergence
from fd3d.distill.masks import bev_cell_centres
from fd3d.distill.pairing import FeaturePair, PVPair, StagePairing
from fd3d.distill.registry import DistillationStep, PairwiseLoss, register_distillation_loss


def gaussian_heatmap(
    boxes_lidar: Tensor, bev_h: int, bev_w: int, extent: tuple[float, float, float, float]
) -> Tensor:
    """(N, >=7) boxes -> (bev_h, bev_w) heatmap in [0, 1] peaking (value 1) at the box centres."""
    x0, y0, x1, y1 = extent
    cell_x, cell_y = (x1 - x0) / bev_w, (y1 - y0) / bev_h
    heat = boxes_lidar.new_zeros(bev_h, bev_w)
    if len(boxes_lidar) == 0:
        return heat
    cols, rows = bev_cell_centres(extent, bev_h, bev_w, heat)
    grid_y, grid_x = torch.meshgrid(rows, cols, indexing="ij")
    half_diagonal = 0.5 * torch.sqrt(boxes_lidar[:, 3] ** 2 + boxes_lidar[:, 4] ** 2)
    sigma = (half_diagonal / 3.0).clamp(min=max(cell_x, cell_y))  # metres
    dx = grid_x[None] - boxes_lidar[:, 0, None, None]
    dy = grid_y[None] - boxes_lidar[:, 1, None, None]
    per_box = torch.exp(-(dx**2 + dy**2) / (2 * sigma[:, None, None] ** 2))
    return per_box.amax(0)


def heatmap_l2(apprentice: Tensor, expert: Tensor, heatmaps: Tensor, eps: float = 1e-6) -> Tensor:
    """(B, C, H, W) aligned apprentice and expert, (B, H, W) heatmaps -> Σ heat·‖F_A − F_E‖² / Σ heat."""
    squared = (apprentice - expert.detach()).pow(2).sum(1)
    return (squared * heatmaps).sum() / heatmaps.sum().clamp(min=eps)


@register_distillation_loss("heatmap")
class HeatmapDistillation(PairwiseLoss):
    """The released HeatmapDistiller: CWD (`DISTILL.HEATMAP.TAU`, `PV_WEIGHT`) on every paired PV level and
    the heatmap-weighted L2 (`BEV_WEIGHT`) on the BEV, each on an aligned apprentice map."""

    section = "HEATMAP"

    @classmethod
    def from_config(cls, cfg: CfgNode, pairing: StagePairing) -> HeatmapDistillation:
        return cls(cfg, pairing, pairing.pv_pairs + [pairing.bev_pair()])

    def make_module(self, apprentice_channels: int, expert_channels: int, upsample: int) -> nn.Module:
        return FeatureAligner(apprentice_channels, expert_channels, upsample)

    def term(self, module: nn.Module, pair: FeaturePair, step: DistillationStep) -> Tensor:
        apprentice, expert = step.maps(pair)
        aligned = module(apprentice)
        if isinstance(pair, PVPair):
            return self.settings.PV_WEIGHT * channel_wise_divergence(
                aligned, expert.detach(), self.settings.TAU
            )
        height, width = expert.shape[-2:]
        extent = step.apprentice.bev_extent
        heat = torch.stack(
            [gaussian_heatmap(b.to(expert), height, width, extent) for b in step.batch["gt_boxes"]]
        )
        return self.settings.BEV_WEIGHT * heatmap_l2(aligned, expert, heat)
