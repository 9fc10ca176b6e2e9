"""Where apprentice and expert features meet: the stages (PV levels, BEV) of two probed detectors.

Shapes come from one probe forward of both detectors, so a distillation method asks this object for the
pairs it reads and for the two maps of a pair, and never learns a detector's internals (Section 3.1,
"plug-and-play").
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar

import torch
from torch import Tensor

from fd3d.config import ConfigError
from fd3d.distill.alignment import ALIGNMENTS, downsample_to, pair_pyramid_levels, upsample_factor
from fd3d.distill.masks import bev_box_mask, pv_box_mask
from fd3d.modeling.outputs import DetectorFeatures


class Stage(StrEnum):
    """Where two detectors' features meet (Section 3.1): the image features or the bird's-eye view. The
    values are the config's spelling (`DISTILL.<METHOD>.STAGES`, `DISTILL.STAGE_SCALE.PV/BEV`)."""

    PV = "pv"
    BEV = "bev"


STAGES = tuple(stage.value for stage in Stage)


@dataclass(frozen=True)
class FeaturePair:
    """Where one distillation term meets: apprentice and expert feature of a stage, their channels, and
    how much the apprentice map must grow to the expert's (`upsample`, 1 or 2). `PVPair` and `BEVPair`
    say where each map lives in `DetectorFeatures` and how the boxes project onto it."""

    stage: ClassVar[Stage]
    name: str  # "bev" or "pv<apprentice level>"
    apprentice_level: int
    expert_level: int
    upsample: int
    apprentice_channels: int
    expert_channels: int

    def apprentice_map(self, features: DetectorFeatures) -> Tensor:
        """(N, C, h, w) apprentice map of the pair."""
        raise NotImplementedError

    def expert_map(self, features: DetectorFeatures) -> Tensor:
        """(N, C, H, W) expert map of the pair, on the expert's own grid."""
        raise NotImplementedError

    def box_masks(self, boxes: list[Tensor], features: DetectorFeatures) -> Tensor:
        """(N, h, w) union of the box projections on the apprentice's grid of the pair."""
        raise NotImplementedError

    def per_map(self, locations: Tensor, focal: Tensor, visible: Tensor | None) -> tuple[Tensor, Tensor]:
        """The distillation head's sampling locations and (B, Q) focal mask laid out like this pair's maps
        (one map per sample, or per camera of a sample)."""
        raise NotImplementedError


@dataclass(frozen=True)
class PVPair(FeaturePair):
    """One paired pyramid level; the cameras are folded into the batch: N = B * Ncam."""

    stage: ClassVar[Stage] = Stage.PV

    def apprentice_map(self, features: DetectorFeatures) -> Tensor:
        return features.pv[self.apprentice_level].flatten(0, 1)

    def expert_map(self, features: DetectorFeatures) -> Tensor:
        return features.pv[self.expert_level].flatten(0, 1)

    def box_masks(self, boxes: list[Tensor], features: DetectorFeatures) -> Tensor:
        size = tuple(features.pv[self.apprentice_level].shape[-2:])
        geometry = features.geometry
        masks = [
            pv_box_mask(b, geometry.lidar2img[i], geometry.image_size, size) for i, b in enumerate(boxes)
        ]
        return torch.stack(masks).flatten(0, 1)

    def per_map(self, locations: Tensor, focal: Tensor, visible: Tensor | None) -> tuple[Tensor, Tensor]:
        """A query counts on the cameras that see its reference point: (B*Ncam, Q, M, K, 2), (B*Ncam, Q)."""
        return locations.flatten(0, 1), (focal[:, None] & visible).flatten(0, 1)


@dataclass(frozen=True)
class BEVPair(FeaturePair):
    """The two BEV grids: N = B."""

    stage: ClassVar[Stage] = Stage.BEV

    def apprentice_map(self, features: DetectorFeatures) -> Tensor:
        return features.bev

    def expert_map(self, features: DetectorFeatures) -> Tensor:
        return features.bev

    def box_masks(self, boxes: list[Tensor], features: DetectorFeatures) -> Tensor:
        height, width = features.bev.shape[-2:]
        return torch.stack([bev_box_mask(b, height, width, features.bev_extent) for b in boxes])

    def per_map(self, locations: Tensor, focal: Tensor, visible: Tensor | None) -> tuple[Tensor, Tensor]:
        return locations, focal


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
            PVPair(f"pv{a}", a, e, self._factor(app[a][0], exp[e][0]), app[a][1], exp[e][1])
            for a, e in pair_pyramid_levels([s for s, _ in app], [s for s, _ in exp])
        ]

    def _factor(self, apprentice_size: tuple[int, int], expert_size: tuple[int, int]) -> int:
        return upsample_factor(apprentice_size, expert_size) if self.alignment == "deconv" else 1

    @property
    def expert_has_bev(self) -> bool:
        return self.expert_shapes["bev"] is not None

    def bev_pair(self) -> BEVPair:
        app, exp = self.apprentice_shapes["bev"], self.expert_shapes["bev"]
        if app is None or exp is None:
            raise ConfigError(
                "a BEV stage was requested but "
                + ("the apprentice" if app is None else "the expert")
                + " has no BEV feature; use STAGES ['pv'] for BEV-free detectors"
            )
        return BEVPair("bev", 0, 0, self._factor(app[0], exp[0]), app[1], exp[1])

    def pairs(self, stages: list[str], key: str) -> list[FeaturePair]:
        """The pairs of `stages` (a non-empty subset of STAGES, read from config `key`), PV levels first."""
        bad = sorted(set(stages) - set(STAGES))
        if bad or not stages:
            raise ConfigError(f"{key} {list(stages)} must be a non-empty subset of {list(STAGES)}")
        bev = [self.bev_pair()] if Stage.BEV in stages else []
        return (self.pv_pairs if Stage.PV in stages else []) + bev

    def head_pair(self) -> FeaturePair:
        """The feature the distillation head reads: the expert's BEV, or for a BEV-free expert its first
        paired PV level; QFD samples both detectors there."""
        if self.expert_has_bev:
            return self.bev_pair()
        if not self.pv_pairs:
            raise ConfigError("the expert has neither a BEV nor PV levels paired with the apprentice")
        return self.pv_pairs[0]

    @staticmethod
    def channels(pair: FeaturePair) -> tuple[int, int]:
        """(apprentice, expert) channels of a pair: what a method's aligner or generator maps between."""
        return pair.apprentice_channels, pair.expert_channels

    def expert_map(self, features: DetectorFeatures, pair: FeaturePair, apprentice_map: Tensor) -> Tensor:
        """(N, C, H, W) expert map of a pair, pooled to `apprentice_map`'s grid under "downsample"."""
        expert = pair.expert_map(features)
        if self.alignment == "downsample":
            return downsample_to(expert, apprentice_map.shape[-2:])
        return expert
