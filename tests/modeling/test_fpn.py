"""FPN neck: output geometry, hand-computed values from the module's own weights, extra levels."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from fd3d.modeling.fpn import FPN


def _maps(channels, sizes, n: int = 2, seed: int = 0) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(n, c, h, w, generator=gen) for c, (h, w) in zip(channels, sizes, strict=True)]


def _conv(x: torch.Tensor, block: torch.nn.Module, padding: int) -> torch.Tensor:
    conv = block[0]  # torchvision Conv2dNormActivation without norm: a Sequential holding one conv
    return F.conv2d(x, conv.weight, conv.bias, padding=padding)


def test_output_count_shapes_and_strides():
    fpn = FPN([16, 32, 64], out_channels=8, num_outs=4)
    outs = fpn(_maps([16, 32, 64], [(8, 12), (4, 6), (2, 3)]))
    assert fpn.num_outs == 4 and fpn.out_channels == 8
    # strides 8, 16, 32 in, plus a stride-64 extra level: 3x3 s2 p1 maps n -> ceil(n / 2)
    assert [tuple(o.shape) for o in outs] == [(2, 8, 8, 12), (2, 8, 4, 6), (2, 8, 2, 3), (2, 8, 1, 2)]


def test_default_num_outs_equals_inputs():
    fpn = FPN([4, 8], out_channels=6)
    assert fpn.num_outs == 2
    assert [tuple(o.shape) for o in fpn(_maps([4, 8], [(6, 6), (3, 3)]))] == [(2, 6, 6, 6), (2, 6, 3, 3)]


def test_single_level_equals_layer_of_inner_by_hand():
    fpn = FPN([5], out_channels=7)
    (x,) = _maps([5], [(6, 9)])
    (out,) = fpn([x])
    expected = _conv(_conv(x, fpn.fpn.inner_blocks[0], 0), fpn.fpn.layer_blocks[0], 1)
    torch.testing.assert_close(out, expected)
    assert out.abs().sum() > 0


def test_two_levels_top_down_by_hand():
    fpn = FPN([3, 5], out_channels=4)
    with torch.no_grad():
        for block in list(fpn.fpn.inner_blocks) + list(fpn.fpn.layer_blocks):
            block[0].bias.uniform_(-1, 1)  # default init is zero; make the bias path count
    fine, coarse = _maps([3, 5], [(6, 8), (3, 4)])
    out_fine, out_coarse = fpn([fine, coarse])
    inner_coarse = _conv(coarse, fpn.fpn.inner_blocks[1], 0)
    # nearest 2x upsampling written out as repeat_interleave, independent of F.interpolate
    top_down = inner_coarse.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
    inner_fine = _conv(fine, fpn.fpn.inner_blocks[0], 0) + top_down
    torch.testing.assert_close(out_fine, _conv(inner_fine, fpn.fpn.layer_blocks[0], 1))
    torch.testing.assert_close(out_coarse, _conv(inner_coarse, fpn.fpn.layer_blocks[1], 1))


def test_extra_levels_are_stride2_convs_on_output_with_relu_between():
    fpn = FPN([4], out_channels=4, num_outs=3)
    (x,) = _maps([4], [(8, 10)])
    last, extra1, extra2 = fpn([x])
    conv1, conv2 = fpn.fpn.extra_blocks.convs
    torch.testing.assert_close(extra1, F.conv2d(last, conv1.weight, conv1.bias, stride=2, padding=1))
    torch.testing.assert_close(
        extra2, F.conv2d(F.relu(extra1), conv2.weight, conv2.bias, stride=2, padding=1)
    )
    assert extra1.shape[-2:] == (4, 5) and extra2.shape[-2:] == (2, 3)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="num_outs"):
        FPN([4, 8], num_outs=1)
    with pytest.raises(ValueError, match="expected 2 feature maps"):
        FPN([4, 8], out_channels=4)(_maps([4], [(4, 4)]))
