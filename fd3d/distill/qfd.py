"""Query-based focal distillation, QFD (Sec. 3.3, Eq. 12-14).

Expert and apprentice are sampled at the same deformable-attention positions p_q + Delta p_mqk of the
focal queries, so the apprentice learns the expert's local pattern where the detector actually looks.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from fvcore.common.config import CfgNode
from torch import Tensor, nn

from fd3d.config import ConfigError
from fd3d.distill.alignment import FeatureAligner
from fd3d.distill.pairing import FeaturePair, StagePairing
from fd3d.distill.registry import DistillationLoss, DistillationStep, HeadUse, register_distillation_loss


def sample_at(features: Tensor, locations: Tensor) -> Tensor:
    """Bilinear samples (B, Q, M, K, C) of features (B, C, H, W) at locations (B, Q, M, K, 2) (Eq. 12-13).

    Locations are (x, y) in [0, 1] of the map, x along W, pixel centres at (i + 0.5) / size (the
    deformable-attention convention: grid = 2 * loc - 1, align_corners False); outside reads zeros.
    """
    if features.dim() != 4 or locations.dim() != 5 or locations.shape[-1] != 2:
        raise ValueError(
            f"need features (B, C, H, W) and locations (B, Q, M, K, 2), got {tuple(features.shape)} "
            f"and {tuple(locations.shape)}"
        )
    if features.shape[0] != locations.shape[0]:
        raise ValueError(
            f"batch sizes differ: features {tuple(features.shape)}, locations {tuple(locations.shape)}"
        )
    batch, queries, heads, points, _ = locations.shape
    grid = (2.0 * locations - 1.0).reshape(batch, queries, heads * points, 2).to(features.dtype)
    sampled = F.grid_sample(features, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    # (B, C, Q, M*K) -> (B, Q, M, K, C)
    return sampled.permute(0, 2, 3, 1).reshape(batch, queries, heads, points, features.shape[1])


# how the samples are min-max normalised ("according to their maximum and minimum", ambiguous in the paper)
NORMALIZATIONS = ("query", "channel")
# what meets the expert: the aligned apprentice map (deconvolution when its grid is smaller), or the
# apprentice's own map sampled at the same normalised locations through a 1x1 (linear) adapter
ADAPTERS = ("aligner", "linear")


def _min_max(samples: Tensor, eps: float) -> Tensor:
    """Samples (N_f, S, ...) scaled to [0, 1] by their minimum and maximum along dim 1."""
    low = samples.amin(dim=1, keepdim=True)
    high = samples.amax(dim=1, keepdim=True)
    return (samples - low) / (high - low + eps)


def query_focal_distillation(
    expert: Tensor,
    apprentice: Tensor,
    locations: Tensor,
    focal: Tensor,
    eps: float = 1e-6,
    normalize: str = "query",
    adapter: nn.Module | None = None,
) -> Tensor:
    """L_QFD of Eq. 14: squared distance of min-max normalised samples, summed, over N_f focal queries.

    expert, apprentice: (B, C, H, W); locations (B, Q, M, K, 2) as in `sample_at`; focal (B, Q) bool.
    The paper normalises the samples "according to their maximum and minimum". `normalize="query"`
    takes min and max over each focal query's M*K*C samples; "channel" over its M*K samples of each
    channel. Either way separately for expert and apprentice: (F - min) / (max - min + eps).
    With an `adapter` (C_a -> C), the apprentice map keeps its own size and channels: it is sampled at
    the same normalised locations and the adapter maps each sample (Sec. 3.3 leaves the alignment open).
    L_2 is the squared Euclidean distance over channels, summed over heads m and points k, then over the
    focal queries of the whole batch and divided by their number N_f. The expert is detached. With no
    focal query the loss is `apprentice.sum() * 0.0`: zero, finite, still part of the graph.
    """
    if normalize not in NORMALIZATIONS:
        raise ValueError(f"QFD normalize must be one of {NORMALIZATIONS}, got {normalize!r}")
    if adapter is None and expert.shape != apprentice.shape:
        raise ValueError(
            f"expert and apprentice must have the same shape, got expert {tuple(expert.shape)} "
            f"and apprentice {tuple(apprentice.shape)}"
        )
    if focal.dtype != torch.bool or focal.shape != locations.shape[:2]:
        raise ValueError(
            f"focal must be a (B, Q) bool tensor matching locations {tuple(locations.shape)}, "
            f"got {focal.dtype} {tuple(focal.shape)}"
        )
    num_focal = int(focal.sum())
    if num_focal == 0:
        return apprentice.sum() * 0.0
    expert_samples = sample_at(expert.detach(), locations)[focal]  # (N_f, M, K, C)
    apprentice_samples = sample_at(apprentice, locations)[focal]
    if adapter is not None:
        apprentice_samples = adapter(apprentice_samples)
    # rows of (N_f, M*K*C) for "query", (N_f, M*K, C) for "channel": min and max along dim 1
    end = -1 if normalize == "query" else 2
    apprentice_rows, expert_rows = apprentice_samples.flatten(1, end), expert_samples.flatten(1, end)
    difference = _min_max(apprentice_rows, eps) - _min_max(expert_rows, eps)
    return (difference**2).sum() / num_focal


@register_distillation_loss("qfd")
class QFD(DistillationLoss):
    """eta * L_QFD (Eq. 15): expert and aligned apprentice sampled where the head's focal queries look, on
    the feature the head reads (the expert's BEV, or a PV level for a BEV-free expert), weighted by
    `DISTILL.QFD.WEIGHT`. In PV mode a query counts on the cameras that see its reference point."""

    @classmethod
    def head_use(cls, cfg: CfgNode) -> HeadUse:
        return HeadUse.SAMPLING

    def __init__(
        self,
        weight: float,
        pair: FeaturePair,
        apprentice_channels: int,
        expert_channels: int,
        normalize: str = "query",
        adapter: str = "aligner",
    ) -> None:
        super().__init__()
        if normalize not in NORMALIZATIONS:
            raise ConfigError(f"DISTILL.QFD.NORMALIZE must be one of {NORMALIZATIONS}, got {normalize!r}")
        if adapter not in ADAPTERS:
            raise ConfigError(f"DISTILL.QFD.ADAPTER must be one of {ADAPTERS}, got {adapter!r}")
        self.weight, self.pair, self.normalize = weight, pair, normalize
        # "aligner" grows the apprentice map before sampling, "linear" maps each of its samples; only
        # that module exists, so checkpoints hold the chosen variant's weights alone
        self.adapter_kind = adapter
        if adapter == "aligner":
            self.aligner = FeatureAligner(apprentice_channels, expert_channels, pair.upsample)
        else:
            self.adapter = nn.Linear(apprentice_channels, expert_channels)

    @classmethod
    def from_config(cls, cfg: CfgNode, pairing: StagePairing) -> QFD:
        pair = pairing.head_pair()
        qfd = cfg.DISTILL.QFD
        return cls(qfd.WEIGHT, pair, *pairing.channels(pair), qfd.NORMALIZE, qfd.ADAPTER)

    def forward(self, step: DistillationStep) -> dict[str, Tensor]:
        apprentice, expert = step.maps(self.pair)
        adapter = self.adapter if self.adapter_kind == "linear" else None
        if adapter is None:
            apprentice = self.aligner(apprentice)
        locations, focal = self.pair.per_map(step.head.locations.detach(), step.focal, step.head.visible)
        loss = query_focal_distillation(
            expert, apprentice, locations, focal, normalize=self.normalize, adapter=adapter
        )
        return {"loss_kd_qfd": self.weight * loss}

    def term_stages(self) -> dict[str, str]:
        return {"loss_kd_qfd": self.pair.stage}
