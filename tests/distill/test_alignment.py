"""Pyramid pairing and alignment reach the expert's grid (deconv) or the apprentice's (downsample)."""

from __future__ import annotations

import pytest
import torch

from fd3d.distill.alignment import FeatureAligner, downsample_to, pair_pyramid_levels, upsample_factor
from fd3d.distill.smgd import SelectiveMaskedGeneration


def test_pyramid_position_shift_pairs_equal_sizes():
    apprentice = [(14, 25), (7, 13), (4, 7)]  # strides 8/16/32 on 112x200
    expert = [(28, 50), (14, 25), (7, 13)]  # strides 8/16/32 on 224x400
    assert pair_pyramid_levels(apprentice, expert) == [(0, 1), (1, 2)]
    assert pair_pyramid_levels(expert, expert) == [(0, 0), (1, 1), (2, 2)]
    assert pair_pyramid_levels([(5, 5)], [(9, 9), (3, 3)]) == [(0, 0)]


def test_upsample_factor_and_its_error():
    assert upsample_factor((25, 25), (50, 50)) == 2 and upsample_factor((7, 13), (7, 13)) == 1
    with pytest.raises(ValueError, match=r"\(25, 25\).*\(75, 75\)"):
        upsample_factor((25, 25), (75, 75))


def test_deconv_reaches_the_expert_grid_and_downsample_the_apprentice_grid():
    apprentice, expert = torch.rand(2, 16, 25, 25), torch.rand(2, 32, 50, 50)
    assert FeatureAligner(16, 32, upsample=2)(apprentice).shape == expert.shape
    assert FeatureAligner(16, 32, upsample=1)(apprentice).shape == (2, 32, 25, 25)
    pooled = downsample_to(expert, (25, 25))
    assert pooled.shape == (2, 32, 25, 25)
    torch.testing.assert_close(pooled[0, 0, 0, 0], expert[0, 0, :2, :2].mean())
    # the generator handles both the size and the channel change
    smgd = SelectiveMaskedGeneration(16, 32, upsample=2)
    loss = smgd(apprentice, expert, torch.zeros(2, 25, 25, dtype=torch.bool))
    assert torch.isfinite(loss)
    smgd_down = SelectiveMaskedGeneration(16, 32, upsample=1)
    assert torch.isfinite(smgd_down(apprentice, pooled, torch.ones(2, 25, 25, dtype=torch.bool)))
