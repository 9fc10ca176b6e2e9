"""FitNet hint loss: an identity adapter reduces it to the plain MSE."""

from __future__ import annotations

import pytest
import torch

from fd3d.distill.fitnet import FitNetLoss


def _identity(loss: FitNetLoss, channels: int) -> FitNetLoss:
    conv, norm = loss.adapter
    with torch.no_grad():
        conv.weight.copy_(torch.eye(channels).view(channels, channels, 1, 1))
        conv.bias.zero_()
        norm.running_mean.zero_()
        norm.running_var.fill_(1.0)
        norm.weight.fill_(1.0)
        norm.bias.zero_()
    norm.eps = 0.0
    return loss.eval()


def test_identity_adapter_equals_mse_by_hand():
    torch.manual_seed(0)
    apprentice, expert = torch.randn(2, 3, 4, 5), torch.randn(2, 3, 4, 5)
    loss = _identity(FitNetLoss(3, 3), 3)
    expected = ((apprentice - expert) ** 2).sum() / apprentice.numel()
    assert loss(apprentice, expert).item() == pytest.approx(expected.item(), rel=1e-6)
    assert loss(expert, expert).item() == pytest.approx(0.0, abs=1e-12)


def test_upsample_and_detached_expert():
    loss = FitNetLoss(4, 8, upsample=2)
    apprentice = torch.randn(2, 4, 5, 6, requires_grad=True)
    expert = torch.randn(2, 8, 10, 12, requires_grad=True)
    loss(apprentice, expert).backward()
    assert apprentice.grad is not None and expert.grad is None
    with pytest.raises(ValueError, match=r"\(2, 8, 10, 12\).*\(2, 8, 5, 6\)"):
        loss(apprentice, torch.randn(2, 8, 5, 6))
    with pytest.raises(ValueError, match="3"):
        FitNetLoss(4, 8, upsample=3)
