"""Masked generative distillation, MGD (Yang et al., ECCV 2022): the global-mask baseline of Table 2."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from fd3d.distill.generator import FeatureGenerator
from fd3d.distill.masks import selective_random_mask
from fd3d.distill.registry import DistillationStep, PairwiseLoss, register_distillation_loss


class MaskedGenerativeDistillation(nn.Module):
    """sum (G(F^A * M) - F^E)^2 / N with M a random mask over the WHOLE map (MGD; cf. FD3D Eq. 5-7).

    Equivalent to SMGD's mask with every position focal, followed by a summed squared error divided by
    the batch size N (MMRazor's convention); the caller applies the loss weight alpha.
    """

    def __init__(
        self, apprentice_channels: int, expert_channels: int, upsample: int = 1, ratio: float = 0.65
    ) -> None:
        super().__init__()
        if not 0.0 <= ratio <= 1.0:
            raise ValueError(f"ratio must be in [0, 1], got {ratio}")
        self.feature_generator = FeatureGenerator(apprentice_channels, expert_channels, upsample)
        self.ratio = ratio

    def forward(self, apprentice: Tensor, expert: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Scalar loss. apprentice (N, Ca, h, w), expert (N, Ce, H, W); `generator` seeds the mask."""
        if apprentice.dim() != 4:
            raise ValueError(f"apprentice must be (N, C, h, w), got {tuple(apprentice.shape)}")
        everywhere = torch.ones(
            apprentice.shape[0], *apprentice.shape[2:], dtype=torch.bool, device=apprentice.device
        )
        keep = selective_random_mask(everywhere, self.ratio, generator).to(apprentice.dtype)
        generated = self.feature_generator(apprentice * keep[:, None])
        if generated.shape != expert.shape:
            raise ValueError(
                f"generated apprentice feature {tuple(generated.shape)} does not match the expert "
                f"{tuple(expert.shape)}"
            )
        return ((generated - expert.detach()) ** 2).sum() / apprentice.shape[0]


@register_distillation_loss("mgd")
class MGD(PairwiseLoss):
    """MGD on every pair of `DISTILL.MGD.STAGES` with mask ratio `DISTILL.MGD.RATIO`, weighted by
    `DISTILL.MGD.WEIGHT` (alpha)."""

    section = "MGD"

    def make_module(self, apprentice_channels: int, expert_channels: int, upsample: int) -> nn.Module:
        return MaskedGenerativeDistillation(
            apprentice_channels, expert_channels, upsample, self.settings.RATIO
        )

    def term(self, module: nn.Module, pair, step: DistillationStep) -> Tensor:
        return self.settings.WEIGHT * module(*step.maps(pair))
