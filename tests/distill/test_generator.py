"""Shapes of the SMGD generator (Eq. 7) with and without the x2 deconvolution."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from fd3d.distill.generator import FeatureGenerator


def test_same_size_keeps_shape_and_changes_channels():
    generator = FeatureGenerator(16, 32, upsample=1)
    assert isinstance(generator.first, nn.Conv2d)
    assert generator(torch.randn(2, 16, 7, 13)).shape == (2, 32, 7, 13)
    assert generator.output_size(7, 13) == (7, 13)


@pytest.mark.parametrize(("size", "expected"), [((25, 25), (50, 50)), ((7, 13), (14, 26))])
def test_upsample_two_doubles_exactly(size, expected):
    generator = FeatureGenerator(16, 32, upsample=2)
    assert isinstance(generator.first, nn.ConvTranspose2d)
    assert generator(torch.randn(1, 16, *size)).shape == (1, 32, *expected)
    assert generator.output_size(*size) == expected


@pytest.mark.parametrize("upsample", [0, 3, 4])
def test_bad_upsample_raises(upsample):
    with pytest.raises(ValueError, match=str(upsample)):
        FeatureGenerator(4, 4, upsample=upsample)
