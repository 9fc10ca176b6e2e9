"""SMGD (Eq. 7-9): masking only inside the focal union, then CWD against the detached expert."""

from __future__ import annotations

import math

import pytest
import torch

from fd3d.distill.cwd import channel_wise_divergence
from fd3d.distill.generator import FeatureGenerator
from fd3d.distill.smgd import SelectiveMaskedGeneration


def _identity_generator(
    generator: FeatureGenerator, bias_first: float = 0.0, bias_second: float = 0.0
) -> None:
    """1 -> 1 channel 3x3 kernels with only the centre tap: G(x) = relu(x + b1) + b2."""
    with torch.no_grad():
        for conv, bias in ((generator.first, bias_first), (generator.second, bias_second)):
            conv.weight.zero_()
            conv.weight[0, 0, 1, 1] = 1.0
            conv.bias.fill_(bias)


def test_no_focal_position_reduces_to_cwd_of_apprentice():
    torch.manual_seed(0)
    smgd = SelectiveMaskedGeneration(1, 1, ratio=0.5, tau=2.0)
    _identity_generator(smgd.feature_generator)
    apprentice = torch.rand(2, 1, 4, 5) + 0.1  # positive: the ReLU passes it unchanged
    expert = torch.randn(2, 1, 4, 5)
    focal = torch.zeros(2, 4, 5, dtype=torch.bool)
    loss = smgd(apprentice, expert, focal, torch.Generator().manual_seed(0))
    assert loss.item() == pytest.approx(channel_wise_divergence(apprentice, expert, 2.0).item(), rel=1e-6)


def test_fully_masked_apprentice_gives_uniform_distribution():
    smgd = SelectiveMaskedGeneration(1, 1, ratio=1.0, tau=2.0)
    _identity_generator(smgd.feature_generator, bias_first=0.3, bias_second=-0.2)  # G(0) = 0.1 everywhere
    expert_values = [0.5, -1.0, 2.0, 0.0, 1.5, -0.5]
    expert = torch.tensor(expert_values).view(1, 1, 2, 3)
    apprentice = torch.randn(1, 1, 2, 3)
    loss = smgd(apprentice, expert, torch.ones(1, 2, 3, dtype=torch.bool))
    exps = [math.exp(v / 2.0) for v in expert_values]
    p_expert = [e / sum(exps) for e in exps]
    expected = 2.0**2 / (1 * 1) * sum(p * (math.log(p) - math.log(1 / 6)) for p in p_expert)
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_only_focal_positions_are_zeroed():
    smgd = SelectiveMaskedGeneration(3, 3, ratio=0.5)
    seen = {}
    smgd.feature_generator.first.register_forward_pre_hook(lambda _module, args: seen.update(x=args[0]))
    apprentice = torch.rand(2, 3, 20, 30) + 0.1
    focal = torch.zeros(2, 20, 30, dtype=torch.bool)
    focal[0, 5:15, 10:25] = True
    focal[1, :4, :] = True
    smgd(apprentice, torch.randn(2, 3, 20, 30), focal, torch.Generator().manual_seed(3))
    masked = seen["x"]
    zeroed = (masked == 0).all(dim=1)  # (N, h, w): all channels share a position's mask
    kept = (~zeroed)[:, None]
    assert torch.equal(masked * kept, apprentice * kept)
    assert not zeroed[~focal].any()
    assert zeroed[focal].float().mean().item() == pytest.approx(0.5, abs=0.1)


def test_gradients_reach_generator_and_apprentice_not_expert():
    smgd = SelectiveMaskedGeneration(4, 8, upsample=2)
    apprentice = torch.randn(2, 4, 5, 6, requires_grad=True)
    expert = torch.randn(2, 8, 10, 12, requires_grad=True)
    focal = torch.zeros(2, 5, 6, dtype=torch.bool)
    focal[:, 1:3, 2:5] = True
    smgd(apprentice, expert, focal).backward()
    assert expert.grad is None
    assert apprentice.grad is not None and apprentice.grad.abs().sum() > 0
    for parameter in smgd.feature_generator.parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0


def test_size_mismatches_raise():
    smgd = SelectiveMaskedGeneration(4, 8, upsample=1)
    focal = torch.zeros(1, 5, 6, dtype=torch.bool)
    with pytest.raises(ValueError, match=r"\(1, 8, 5, 6\).*\(1, 8, 10, 12\)"):
        smgd(torch.randn(1, 4, 5, 6), torch.randn(1, 8, 10, 12), focal)
    with pytest.raises(ValueError, match=r"\(1, 5, 5\)"):
        smgd(torch.randn(1, 4, 5, 6), torch.randn(1, 8, 5, 6), torch.zeros(1, 5, 5, dtype=torch.bool))
