"""Meeting points of apprentice and expert features of different resolution.

PV: an apprentice at half the image resolution has, at FPN stride s, the size the expert has at stride
2s, so levels are paired by equal size ("feature pyramid position shift"); with equal resolutions they
pair level by level. BEV: a smaller apprentice grid is upsampled by a transposed convolution (default)
or the expert's is average-pooled down (Table 4d).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

ALIGNMENTS = ("deconv", "downsample")


def pair_pyramid_levels(
    apprentice_shapes: Sequence[tuple[int, int]], expert_shapes: Sequence[tuple[int, int]]
) -> list[tuple[int, int]]:
    """(apprentice level, expert level) pairs: by equal spatial size when any, else index by index."""
    by_size = [
        (a, expert_shapes.index(shape)) for a, shape in enumerate(apprentice_shapes) if shape in expert_shapes
    ]
    if by_size:
        return by_size
    return [(level, level) for level in range(min(len(apprentice_shapes), len(expert_shapes)))]


def upsample_factor(apprentice_size: Sequence[int], expert_size: Sequence[int]) -> int:
    """1 or 2: how much the apprentice map must grow to match the expert's; anything else is an error."""
    for factor in (1, 2):
        if tuple(s * factor for s in apprentice_size) == tuple(expert_size):
            return factor
    raise ValueError(
        f"apprentice feature {tuple(apprentice_size)} and expert feature {tuple(expert_size)} are not "
        "1x or 2x apart; choose BEV and image sizes that differ by a factor of 1 or 2"
    )


def downsample_to(expert: Tensor, size: Sequence[int]) -> Tensor:
    """Average-pool an expert map (N, C, H, W) down to `size` (the ablation of Table 4d)."""
    if tuple(expert.shape[-2:]) == tuple(size):
        return expert
    return F.adaptive_avg_pool2d(expert, tuple(size))


def resampling_conv(in_channels: int, out_channels: int, upsample: int, kernel_size: int) -> nn.Module:
    """The first layer of every apprentice-side module: a `kernel_size` convolution keeping the grid
    (upsample 1, padding kernel_size // 2), or a ConvTranspose2d(k4, s2, p1) that exactly doubles H and W
    (upsample 2: the paper's deconvolution for a smaller apprentice map, e.g. BEV 100x100 -> 200x200)."""
    if upsample == 1:
        return nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
    if upsample == 2:
        return nn.ConvTranspose2d(in_channels, out_channels, kernel_size=4, stride=2, padding=1)
    raise ValueError(f"upsample must be 1 or 2, got {upsample}")


class FeatureAligner(nn.Module):
    """Apprentice map -> expert channels and grid: deconv(k4, s2) -> BN -> ReLU -> 3x3 conv when the grid
    doubles (the released HeatmapDistiller's BEV aligner), a 1x1 conv otherwise."""

    def __init__(self, apprentice_channels: int, expert_channels: int, upsample: int = 1) -> None:
        super().__init__()
        first = resampling_conv(apprentice_channels, expert_channels, upsample, kernel_size=1)
        if upsample == 2:
            self.layers: nn.Module = nn.Sequential(
                first,
                nn.BatchNorm2d(expert_channels),
                nn.ReLU(inplace=True),
                nn.Conv2d(expert_channels, expert_channels, 3, padding=1),
            )
        else:
            self.layers = first

    def forward(self, apprentice: Tensor) -> Tensor:
        return self.layers(apprentice)
