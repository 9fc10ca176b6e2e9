"""Channel-wise divergence (Shu et al., ICCV 2021), the distribution loss of SMGD (Eq. 8-9).

Each channel is turned into a distribution over its H*W positions, so the loss asks the student to put
its activation mass where the teacher does, channel by channel, rather than to match raw magnitudes.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from fd3d.distill.alignment import FeatureAligner
from fd3d.distill.registry import DistillationStep, PairwiseLoss, register_distillation_loss


def channel_wise_divergence(student: Tensor, teacher: Tensor, tau: float = 2.0) -> Tensor:
    """tau^2 / (C * N) * sum_{n,c,i} p_T (log p_T - log p_S): the KL of Eq. 8 with phi of Eq. 9.

    student, teacher: (N, C, H, W). p = softmax over the H*W positions of each channel at temperature
    tau. Dividing by N averages Eq. 8 (written for one sample) over the batch, as MMRazor's
    ChannelWiseDivergence does. The teacher is NOT detached here: the caller decides whether gradients
    reach it (SMGD detaches its expert). Returns a scalar.
    """
    if student.shape != teacher.shape:
        raise ValueError(
            f"student and teacher must have the same shape, got student {tuple(student.shape)} "
            f"and teacher {tuple(teacher.shape)}"
        )
    if student.dim() != 4:
        raise ValueError(f"expected (N, C, H, W) features, got shape {tuple(student.shape)}")
    if tau <= 0:
        raise ValueError(f"tau must be positive, got {tau}")
    batch, channels = student.shape[:2]
    # (N, C, H*W) log-distributions over positions
    log_p_student = F.log_softmax(student.flatten(2) / tau, dim=-1)
    log_p_teacher = F.log_softmax(teacher.flatten(2) / tau, dim=-1)
    kl = (log_p_teacher.exp() * (log_p_teacher - log_p_student)).sum()
    return kl * (tau**2 / (channels * batch))


@register_distillation_loss("cwd")
class CWD(PairwiseLoss):
    """CWD between the aligned apprentice and the detached expert on every pair of `DISTILL.CWD.STAGES`,
    at temperature `DISTILL.CWD.TAU`, weighted by `DISTILL.CWD.WEIGHT` (Table 2, Table 4c for PV/BEV only)."""

    section = "CWD"

    def make_module(self, apprentice_channels: int, expert_channels: int, upsample: int) -> nn.Module:
        return FeatureAligner(apprentice_channels, expert_channels, upsample)

    def term(self, module: nn.Module, pair, step: DistillationStep) -> Tensor:
        apprentice, expert = step.maps(pair)
        return self.settings.WEIGHT * channel_wise_divergence(
            module(apprentice), expert.detach(), self.settings.TAU
        )
