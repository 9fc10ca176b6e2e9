"""Where apprentice and expert features meet: the stages (PV levels, BEV) of two probed detectors.

Shapes come from one probe forward of both detectors, so a distillation method asks this object for the
pairs it reads and for the two maps of a pair, and never learns a detector's internals (Section 3.1,
"plug-and-play").
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from fd3d.config import ConfigError
from fd3d.distill.alignment import ALIGNMENTS, downsample_to, pair_pyramid_levels, upsample_factor
from fd3d.distill.masks import bev_box_mask, pv_box_mask
from fd3d.modeling.outputs import DetectorFeatures

STAGES = ("pv", "bev")


@dataclass(frozen=True)
class FeaturePair:
    """Where one distillation term meets: apprentice and expert feature of a stage (and PV level)."""

    name: str  # "bev" or "pv<apprentice level>"
    stage: str
    apprentice_level: int
    expert_level: int
    upsample: int  # how much the apprentice map must grow to the expert's (1 or 2)


def feature_shapes(features: DetectorFeatures) -> dict:
    """{"pv": [((h, w), channels) per level], "bev": ((h, w), channels) or None}."""
    return {
        "pv": [(tuple(level.shape[-2:]), level.shape[2]) for level in features.pv],
        "bev": (tuple(features.bev.shape[-2:]), features.bev.shape[1]) if features.bev is not None else None,
    }


class StagePairing:
    """The pairs of apprentice and expert features, their channels, and the two maps of a pair.

    `alignment` (DISTILL.ALIGNMENT, Table 4d): "deconv" grows a smaller apprentice map to the expert's
    (upsample 2), "downsample" average-pools the expert map to the apprentice's (upsample 1).
    """

    def __init__(self, apprentice_shapes: dict, expert_shapes: dict, alignment: str) -> None:
        if alignment not in ALIGNMENTS:
            raise ConfigError(f"DISTILL.ALIGNMENT {alignment!r} must be one of {list(ALIGNMENTS)}")
        self.apprentice_shapes, self.expert_shapes, self.alignment = (
            apprentice_shapes,
            expert_shapes,
            alignment,
        )
        app, exp = apprentice_shapes["pv"], expert_shapes["pv"]
        self.pv_pairs = [
            FeaturePair(f"pv{a}", "pv", a, e, self._factor(app[a][0], exp[e][0]))
            for a, e in pair_pyramid_levels([s for s, _ in app], [s for s, _ in exp])
        ]

    def _factor(self, apprentice_size: tuple[int, int], expert_size: tuple[int, int]) -> int:
        return upsample_factor(apprentice_size, expert_size) if self.alignment == "deconv" else 1

    @property
    def expert_has_bev(self) -> bool:
        return self.expert_shapes["bev"] is not None

    def bev_pair(self) -> FeaturePair:
        app, exp = self.apprentice_shapes["bev"], self.expert_shapes["bev"]
        if app is None or exp is None:
            raise ConfigError(
                "a BEV stage was requested but "
                + ("the apprentice" if app is None else "the expert")
                + " has no BEV feature; use STAGES ['pv'] for BEV-free detectors"
            )
        return FeaturePair("bev", "bev", 0, 0, self._factor(app[0], exp[0]))

    def pairs(self, stages: list[str], key: str) -> list[FeaturePair]:
        """The pairs of `stages` (a non-empty subset of STAGES, read from config `key`), PV levels first."""
        bad = sorted(set(stages) - set(STAGES))
        if bad or not stages:
            raise ConfigError(f"{key} {list(stages)} must be a non-empty subset of {list(STAGES)}")
        return (self.pv_pairs if "pv" in stages else []) + ([self.bev_pair()] if "bev" in stages else [])

    def head_pair(self) -> FeaturePair:
        """The feature the distillation head reads: the expert's BEV, or for a BEV-free expert its first
        paired PV level; QFD samples both detectors there."""
        if self.expert_has_bev:
            return self.bev_pair()
        if not self.pv_pairs:
            raise ConfigError("the expert has neither a BEV nor PV levels paired with the apprentice")
        return self.pv_pairs[0]

    def channels(self, pair: FeaturePair) -> tuple[int, int]:
        """(apprentice, expert) channels of a pair."""
        if pair.stage == "bev":
            return self.apprentice_shapes["bev"][1], self.expert_shapes["bev"][1]
        return (
            self.apprentice_shapes["pv"][pair.apprentice_level][1],
            self.expert_shapes["pv"][pair.expert_level][1],
        )

    def apprentice_map(self, features: DetectorFeatures, pair: FeaturePair) -> Tensor:
        """(N, C, h, w) apprentice map of a pair; PV cameras are folded into the batch."""
        if pair.stage == "bev":
            return features.bev
        return features.pv[pair.apprentice_level].flatten(0, 1)

    def expert_map(self, features: DetectorFeatures, pair: FeaturePair, apprentice_map: Tensor) -> Tensor:
        """(N, C, H, W) expert map of a pair, pooled to `apprentice_map`'s grid under "downsample"."""
        expert = features.bev if pair.stage == "bev" else features.pv[pair.expert_level].flatten(0, 1)
        if self.alignment == "downsample":
            return downsample_to(expert, apprentice_map.shape[-2:])
        return expert

    @staticmethod
    def box_masks(boxes: list[Tensor], features: DetectorFeatures, pair: FeaturePair) -> Tensor:
        """Union of box projections on the apprentice's grid of `pair`: (B, h, w) BEV or (B*Ncam, h, w) PV."""
        if pair.stage == "bev":
            height, width = features.bev.shape[-2:]
            masks = [bev_box_mask(b, height, width, features.bev_extent) for b in boxes]
        else:
            size = tuple(features.pv[pair.apprentice_level].shape[-2:])
            lidar2img = features.geometry.lidar2img
            masks = [
                pv_box_mask(b, lidar2img[i], features.geometry.image_size, size) for i, b in enumerate(boxes)
            ]
        return torch.stack(masks).flatten(0, -3)
