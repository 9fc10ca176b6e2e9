"""MGD baseline: global random mask, summed squared error divided by the batch size."""

from __future__ import annotations

import pytest
import torch

from fd3d.distill.mgd import MaskedGenerativeDistillation


def _identity_generator(loss: MaskedGenerativeDistillation) -> None:
    with torch.no_grad():
        for conv in (loss.feature_generator.first, loss.feature_generator.second):
            conv.weight.zero_()
            conv.weight[0, 0, 1, 1] = 1.0
            conv.bias.zero_()


def test_identity_generator_without_mask_is_sum_of_squares_over_n():
    torch.manual_seed(0)
    mgd = MaskedGenerativeDistillation(1, 1, ratio=0.0)
    _identity_generator(mgd)
    apprentice, expert = torch.rand(3, 1, 4, 5) + 0.1, torch.randn(3, 1, 4, 5)
    expected = ((apprentice - expert) ** 2).sum() / 3
    assert mgd(apprentice, expert).item() == pytest.approx(expected.item(), rel=1e-6)


def test_global_mask_ratio_and_detached_expert():
    mgd = MaskedGenerativeDistillation(2, 2)
    seen = {}
    mgd.feature_generator.first.register_forward_pre_hook(lambda _module, args: seen.update(x=args[0]))
    apprentice = (torch.rand(1, 2, 100, 100) + 0.1).requires_grad_()
    expert = torch.randn(1, 2, 100, 100, requires_grad=True)
    mgd(apprentice, expert, torch.Generator().manual_seed(0)).backward()
    zeroed = seen["x"] == 0
    assert torch.equal(zeroed[:, 0], zeroed[:, 1])
    assert zeroed[:, 0].float().mean().item() == pytest.approx(0.65, abs=0.02)
    assert expert.grad is None and apprentice.grad is not None
