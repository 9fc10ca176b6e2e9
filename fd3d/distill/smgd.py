"""Selective masked generative distillation, SMGD (Sec. 3.2, Eq. 3-9).

Unlike MGD's global random mask, only positions inside the focal boxes are masked, so the generator must
recover the expert's object features from their surroundings. The loss itself (Eq. 8) still runs over
the whole H x W map: background positions are kept in the input and their distribution is matched too.
"""

from __future__ import annotations

import torch
from fvcore.common.config import CfgNode
from torch import Tensor, nn

from fd3d.config import ConfigError
from fd3d.distill.cwd import channel_wise_divergence
from fd3d.distill.generator import FeatureGenerator
from fd3d.distill.masks import selective_random_mask
from fd3d.distill.registry import DistillationStep, HeadUse, PairwiseLoss, register_distillation_loss

MASK_SOURCES = ("focal", "gt")


class SelectiveMaskedGeneration(nn.Module):
    """L_SMGD (Eq. 8) between G(F^A * I^m) (Eq. 7) and the detached expert F^E; the caller applies lambda.

    `ratio` is r of Eq. 5, `tau` the temperature of Eq. 9, `upsample` the generator's size factor.
    """

    def __init__(
        self,
        apprentice_channels: int,
        expert_channels: int,
        upsample: int = 1,
        ratio: float = 0.5,
        tau: float = 2.0,
    ) -> None:
        super().__init__()
        if not 0.0 <= ratio <= 1.0:
            raise ValueError(f"ratio must be in [0, 1], got {ratio}")
        if tau <= 0:
            raise ValueError(f"tau must be positive, got {tau}")
        self.feature_generator = FeatureGenerator(apprentice_channels, expert_channels, upsample)
        self.ratio = ratio
        self.tau = tau

    def forward(
        self,
        apprentice: Tensor,
        expert: Tensor,
        focal: Tensor,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Scalar loss. apprentice (N, Ca, h, w), expert (N, Ce, H, W), focal (N, h, w) bool (True in a box).

        `generator` seeds the random mask R of Eq. 5.
        """
        if apprentice.dim() != 4 or focal.shape != (apprentice.shape[0], *apprentice.shape[2:]):
            raise ValueError(
                f"focal must be (N, h, w) of apprentice (N, C, h, w), got focal {tuple(focal.shape)} "
                f"and apprentice {tuple(apprentice.shape)}"
            )
        keep = selective_random_mask(focal, self.ratio, generator).to(apprentice.dtype)  # I^m, (N, h, w)
        generated = self.feature_generator(apprentice * keep[:, None])
        if generated.shape != expert.shape:
            raise ValueError(
                f"generated apprentice feature {tuple(generated.shape)} does not match the expert "
                f"{tuple(expert.shape)}"
            )
        return channel_wise_divergence(generated, expert.detach(), self.tau)


@register_distillation_loss("smgd")
class SMGD(PairwiseLoss):
    """lambda * L_SMGD (Eq. 15) on every pair of `DISTILL.SMGD.STAGES`. The masked regions are the focal
    queries' boxes (`DISTILL.SMGD.MASKS` "focal", FD3D) or the ground-truth boxes ("gt", Table 4a's mask
    on GT), projected on each pair's apprentice grid."""

    section = "SMGD"

    @classmethod
    def head_use(cls, cfg: CfgNode) -> HeadUse:
        masks = cfg.DISTILL.SMGD.MASKS
        if masks not in MASK_SOURCES:
            raise ConfigError(f"DISTILL.SMGD.MASKS {masks!r} must be one of {list(MASK_SOURCES)}")
        return HeadUse.FOCAL_BOXES if masks == "focal" else HeadUse.NONE

    def make_module(self, apprentice_channels: int, expert_channels: int, upsample: int) -> nn.Module:
        return SelectiveMaskedGeneration(
            apprentice_channels, expert_channels, upsample, self.settings.RATIO, self.settings.TAU
        )

    def term(self, module: nn.Module, pair, step: DistillationStep) -> Tensor:
        apprentice, expert = step.maps(pair)
        if self.settings.MASKS == "gt":
            boxes = [b.to(apprentice) for b in step.batch["gt_boxes"]]
        else:
            boxes = step.focal_boxes()
        masks = pair.box_masks(boxes, step.apprentice)
        return self.settings.WEIGHT * module(apprentice, expert, masks)
