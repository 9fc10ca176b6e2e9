"""Feature pyramid neck on ``torchvision.ops.FeaturePyramidNetwork``, with mmdet-style extra levels.

DETR3D and BEVFormer run an FPN over the ResNet stages and, when they want more levels than the trunk
gives, add stride-2 3x3 convs on the last FPN output (mmdet ``add_extra_convs='on_output'``). The
torchvision FPN does the lateral + top-down part; the extra levels are the small block below.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.ops import FeaturePyramidNetwork
from torchvision.ops.feature_pyramid_network import ExtraFPNBlock


class OnOutputExtraConvs(ExtraFPNBlock):
    """Append ``num_extra`` levels, each a stride-2 3x3 conv on the previous (coarsest) output.

    As mmdet's FPN: the first extra conv reads the last FPN output directly; later ones read it through a
    ReLU when ``relu_before_extra_convs`` (True in the DETR3D and BEVFormer configs).
    """

    def __init__(self, channels: int, num_extra: int, relu_before_extra_convs: bool = True) -> None:
        super().__init__()
        if num_extra < 1:
            raise ValueError(f"num_extra must be >= 1, got {num_extra}")
        self.relu_before_extra_convs = relu_before_extra_convs
        self.convs = nn.ModuleList(
            nn.Conv2d(channels, channels, kernel_size=3, stride=2, padding=1) for _ in range(num_extra)
        )
        for conv in self.convs:
            nn.init.kaiming_uniform_(conv.weight, a=1)
            nn.init.zeros_(conv.bias)

    def forward(
        self, results: list[Tensor], x: list[Tensor], names: list[str]
    ) -> tuple[list[Tensor], list[str]]:
        """results: FPN outputs, low stride first; x (the inputs) is unused ('on_output')."""
        results, names = list(results), list(names)
        for i, conv in enumerate(self.convs):
            source = results[-1]
            if i > 0 and self.relu_before_extra_convs:
                source = F.relu(source)
            results.append(conv(source))
            names.append(f"extra{i}")
        return results, names


class FPN(nn.Module):
    """Lateral 1x1 + top-down nearest upsampling + 3x3 output convs; optional extra coarser levels.

    ``forward`` takes one map per entry of ``in_channels`` (low stride first) and returns ``num_outs``
    maps with ``out_channels`` channels each, same order; extra level k has stride 2**k times the last.
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        out_channels: int = 256,
        num_outs: int | None = None,
        relu_before_extra_convs: bool = True,
    ) -> None:
        super().__init__()
        in_channels = [int(c) for c in in_channels]
        if not in_channels or min(in_channels) <= 0:
            raise ValueError(f"in_channels must be non-empty and positive, got {in_channels}")
        num_outs = len(in_channels) if num_outs is None else num_outs
        if num_outs < len(in_channels):
            raise ValueError(f"num_outs={num_outs} is fewer than the {len(in_channels)} input levels")
        num_extra = num_outs - len(in_channels)
        extra = OnOutputExtraConvs(out_channels, num_extra, relu_before_extra_convs) if num_extra else None
        self.fpn = FeaturePyramidNetwork(in_channels, out_channels, extra_blocks=extra)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.num_outs = num_outs

    def forward(self, features: Sequence[Tensor]) -> list[Tensor]:
        """features: [(N, in_channels[i], H_i, W_i)] low stride first -> [(N, out_channels, H_j, W_j)]."""
        if len(features) != len(self.in_channels):
            raise ValueError(f"expected {len(self.in_channels)} feature maps, got {len(features)}")
        named = OrderedDict((str(i), feature) for i, feature in enumerate(features))
        return list(self.fpn(named).values())
