"""Detectron2-style registry of distillation methods: one file per method registers one class.

A method says which features it reads (through the `StagePairing`: PV levels, BEV, the head's feature),
whether it needs the distillation head, builds itself from its `DISTILL.<SECTION>` config and the probed
feature shapes, and returns its named, weighted terms for a step. The `Distiller` only runs what is common
(expert, apprentice, the head, the feature cache) and never names a method.

To add a method: a module in `fd3d/distill/` with a `DistillationLoss` subclass decorated by
`@register_distillation_loss("name")`, its section `_C.DISTILL.<NAME>` in `fd3d/config/defaults.py`, and
its import in `fd3d/distill/__init__.py`; then `DISTILL.LOSSES ['name']` selects it.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from fvcore.common.config import CfgNode
from fvcore.common.registry import Registry
from torch import Tensor, nn

from fd3d.distill.distill_head import DistillHeadOutputs
from fd3d.distill.focal_queries import focal_boxes
from fd3d.distill.pairing import FeaturePair, StagePairing
from fd3d.modeling.outputs import DetectorFeatures

DISTILL_LOSS_REGISTRY = Registry("DISTILL_LOSS")
DISTILL_LOSS_REGISTRY.__doc__ = """
Distillation methods, by the name `DISTILL.LOSSES` uses. A registered class is built as
`cls.from_config(cfg, pairing)` and must implement `fd3d.distill.registry.DistillationLoss`.
"""


class HeadUse(enum.Enum):
    """What a method takes from the distillation head (Section 3.1)."""

    NONE = "none"
    FOCAL_BOXES = "focal boxes"  # the boxes of the focal queries (SMGD's masks)
    SAMPLING = "sampling"  # the focal queries' sampling locations on the head's feature (QFD)


@dataclass
class DistillationStep:
    """Everything a method may read in one step; `head` and `focal` are None without a head."""

    apprentice: DetectorFeatures
    expert: DetectorFeatures
    batch: dict
    pairing: StagePairing
    head: DistillHeadOutputs | None = None
    focal: Tensor | None = None  # (B, Q) bool: the focal queries (Section 3.1)
    _focal_boxes: list[Tensor] | None = field(default=None, repr=False)

    def maps(self, pair: FeaturePair) -> tuple[Tensor, Tensor]:
        """(apprentice, expert) maps of a pair, the expert's pooled to the apprentice's grid if configured."""
        apprentice = pair.apprentice_map(self.apprentice)
        return apprentice, self.pairing.expert_map(self.expert, pair, apprentice)

    def focal_boxes(self) -> list[Tensor]:
        """Per sample, the decoded (N_f, 9) boxes of the focal queries, detached (Section 3.4)."""
        if self._focal_boxes is None:
            with torch.no_grad():
                self._focal_boxes = focal_boxes(self.head.box_code[-1], self.focal)
        return self._focal_boxes


class DistillationLoss(nn.Module):
    """One distillation method: its trainable parts (generators, aligners) and its terms.

    `forward(step)` returns {"loss_kd_<...>": weighted scalar}; the trainer sums every "loss*" entry.
    """

    name: str = ""  # set by the registration

    @classmethod
    def head_use(cls, cfg: CfgNode) -> HeadUse:
        """What this method needs from the distillation head under `cfg` (default: nothing)."""
        return HeadUse.NONE

    @classmethod
    def from_config(cls, cfg: CfgNode, pairing: StagePairing) -> DistillationLoss:
        raise NotImplementedError

    def forward(self, step: DistillationStep) -> dict[str, Tensor]:
        raise NotImplementedError

    def term_stages(self) -> dict[str, str]:
        """{term name: the stage ("pv" or "bev") of the apprentice feature it distils}, for the terms
        `forward` returns: `DISTILL.STAGE_SCALE` scales a term by its stage. A method that does not say
        (the default, {}) trains only while both scales are 1."""
        return {}


def register_distillation_loss(name: str) -> Callable[[type[DistillationLoss]], type[DistillationLoss]]:
    """Class decorator: registers a `DistillationLoss` under the name `DISTILL.LOSSES` uses."""

    def decorator(cls: type[DistillationLoss]) -> type[DistillationLoss]:
        cls.name = name
        DISTILL_LOSS_REGISTRY._do_register(name, cls)  # fvcore registers by __name__ only; keep its checks
        return cls

    return decorator


def registered_losses() -> list[str]:
    """Names of every registered method, sorted."""
    return sorted(name for name, _ in DISTILL_LOSS_REGISTRY)


class PairwiseLoss(DistillationLoss):
    """A method with one trainable module per feature pair of its `DISTILL.<SECTION>.STAGES`, its terms
    named `loss_kd_<name>_<pair>`. Subclasses give `section`, `make_module` and `term`."""

    section: str = ""

    def __init__(self, cfg: CfgNode, pairing: StagePairing, pairs: list[FeaturePair]) -> None:
        super().__init__()
        self.settings = getattr(cfg.DISTILL, self.section)
        self.pairs = pairs
        self.per_pair = nn.ModuleDict()
        for pair in pairs:
            self.per_pair[pair.name] = self.make_module(*pairing.channels(pair), pair.upsample)

    @classmethod
    def from_config(cls, cfg: CfgNode, pairing: StagePairing) -> PairwiseLoss:
        stages = list(getattr(cfg.DISTILL, cls.section).STAGES)
        return cls(cfg, pairing, pairing.pairs(stages, f"DISTILL.{cls.section}.STAGES"))

    def make_module(self, apprentice_channels: int, expert_channels: int, upsample: int) -> nn.Module:
        raise NotImplementedError

    def term(self, module: nn.Module, pair: FeaturePair, step: DistillationStep) -> Tensor:
        """The weighted term of one pair."""
        raise NotImplementedError

    def forward(self, step: DistillationStep) -> dict[str, Tensor]:
        return {
            f"loss_kd_{self.name}_{pair.name}": self.term(self.per_pair[pair.name], pair, step)
            for pair in self.pairs
        }

    def term_stages(self) -> dict[str, str]:
        return {f"loss_kd_{self.name}_{pair.name}": pair.stage for pair in self.pairs}
