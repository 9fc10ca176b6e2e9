"""FitNet (Romero et al., ICLR 2015): the plain feature-mimicking baseline of Table 2."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from fd3d.distill.alignment import resampling_conv
from fd3d.distill.registry import DistillationStep, PairwiseLoss, register_distillation_loss


class FitNetLoss(nn.Module):
    """mean (BN(adapter(F^A)) - F^E)^2 over all elements: the FitNet hint loss with MMRazor's adapter.

    The adapter is a 1x1 convolution (upsample 1) or a x2 ConvTranspose2d(k4, s2, p1) (upsample 2, for an
    expert map twice the apprentice's size), followed by BatchNorm2d. The expert is detached.
    """

    def __init__(self, apprentice_channels: int, expert_channels: int, upsample: int = 1) -> None:
        super().__init__()
        conv = resampling_conv(apprentice_channels, expert_channels, upsample, kernel_size=1)
        self.adapter = nn.Sequential(conv, nn.BatchNorm2d(expert_channels))

    def forward(self, apprentice: Tensor, expert: Tensor) -> Tensor:
        """Scalar loss. apprentice (N, Ca, h, w), expert (N, Ce, h * upsample, w * upsample)."""
        adapted = self.adapter(apprentice)
        if adapted.shape != expert.shape:
            raise ValueError(
                f"adapted apprentice feature {tuple(adapted.shape)} does not match the expert "
                f"{tuple(expert.shape)}"
            )
        return F.mse_loss(adapted, expert.detach())


@register_distillation_loss("fitnet")
class FitNet(PairwiseLoss):
    """FitNet on every pair of `DISTILL.FITNET.STAGES`, weighted by `DISTILL.FITNET.WEIGHT`."""

    section = "FITNET"

    def make_module(self, apprentice_channels: int, expert_channels: int, upsample: int) -> nn.Module:
        return FitNetLoss(apprentice_channels, expert_channels, upsample)

    def term(self, module: nn.Module, pair, step: DistillationStep) -> Tensor:
        return self.settings.WEIGHT * module(*step.maps(pair))
