"""The generator G of SMGD (Eq. 7): recovers the expert feature from the masked apprentice feature."""

from __future__ import annotations

from torch import Tensor, nn

from fd3d.distill.alignment import resampling_conv


class FeatureGenerator(nn.Module):
    """Two convolutions with a ReLU between them (Eq. 7); the first is a x2 deconvolution when needed.

    The paper switches the first layer to a deconvolution when apprentice and expert sizes differ (e.g.
    BEV 100x100 -> 200x200): upsample 1 uses Conv2d(3x3, padding 1), upsample 2 ConvTranspose2d(k4, s2,
    p1), which exactly doubles H and W. The second layer is a 3x3 convolution, as in MGD.
    """

    def __init__(self, in_channels: int, out_channels: int, upsample: int = 1) -> None:
        super().__init__()
        self.first = resampling_conv(in_channels, out_channels, upsample, kernel_size=3)
        self.upsample = upsample
        self.act = nn.ReLU(inplace=True)
        self.second = nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1)

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        """(H, W) of the output for an (h, w) input: (h * upsample, w * upsample)."""
        return height * self.upsample, width * self.upsample

    def forward(self, x: Tensor) -> Tensor:
        """(N, in, h, w) -> (N, out, h * upsample, w * upsample)."""
        return self.second(self.act(self.first(x)))
