"""The distiller: a frozen expert teaches a trainable apprentice, any two detectors of the registry.

One forward pass of `Distiller` returns every loss term by name: the apprentice's detection losses, the
distillation head's L_dh (`loss_dh_*`, Eq. 2) and each knowledge-distillation term (`loss_kd_*`, already
weighted: lambda·L_SMGD and eta·L_QFD of Eq. 15, or a baseline's). The trainer sums the entries whose
name starts with "loss"; `num_focal_queries` is a statistic for logging.

Gradient routing (Section 3.4): the expert is frozen and runs without autograd; the head sees detached
expert features, so L_dh moves only the head; focal boxes and sampling locations are detached before
they shape the KD terms, so L_KD moves only the apprentice and the generators/aligners.

Feature shapes are learnt by one probe forward of both detectors on a rig-geometry example at build
time, so nothing here knows a detector's internals ("plug-and-play", Section 3.1); the methods of
`DISTILL.LOSSES` come from `DISTILL_LOSS_REGISTRY`, so nothing here knows a method either: the distiller
runs what they share (the expert and its feature cache, the apprentice, the distillation head and its
focal queries) and hands each method a `DistillationStep`.
"""

from __future__ import annotations

import dataclasses

import torch
from fvcore.common.config import CfgNode
from torch import Tensor, nn

from fd3d.config import ConfigError, config_to_dict
from fd3d.data.example_batch import example_batch
from fd3d.distill.distill_head import DistillationHead, DistillHeadOutputs
from fd3d.distill.expert import build_frozen_expert
from fd3d.distill.feature_cache import ExpertFeatureCache, expert_fingerprint
from fd3d.distill.focal_queries import select_focal_queries
from fd3d.distill.loss_stage_scale import parse_loss_stage_scales
from fd3d.distill.pairing import BEVPair, Stage, StagePairing, feature_shapes
from fd3d.distill.ray_artifacts import smear_along_rays
from fd3d.distill.registry import (
    DISTILL_LOSS_REGISTRY,
    DistillationLoss,
    DistillationStep,
    HeadUse,
    registered_losses,
)
from fd3d.modeling.evaluating import evaluating
from fd3d.modeling.losses import DetectionLoss
from fd3d.modeling.outputs import DetectorFeatures
from fd3d.modeling.registry import build_model
from fd3d.modeling.trainable import TrainableModel, TrainingPhase

HEAD_PRETRAINING = "head_pretraining"  # the phase that trains the distillation head alone


def loss_classes(cfg: CfgNode) -> list[type[DistillationLoss]]:
    """The registered methods `DISTILL.LOSSES` names, in its order; an unknown name is a ConfigError."""
    names = list(cfg.DISTILL.LOSSES)
    unknown = [name for name in names if name not in DISTILL_LOSS_REGISTRY]
    if unknown or not names:
        raise ConfigError(f"DISTILL.LOSSES {names} must be a non-empty subset of {registered_losses()}")
    return [DISTILL_LOSS_REGISTRY.get(name) for name in names]


def build_training_model(cfg: CfgNode) -> nn.Module:
    """A `Distiller` when `DISTILL.LOSSES` names a method, else the detector of `MODEL.META_ARCHITECTURE`."""
    if cfg.DISTILL.LOSSES:
        return Distiller(cfg)
    if cfg.DISTILL.HEAD.PRETRAIN_ITERS:
        raise ConfigError(
            f"DISTILL.HEAD.PRETRAIN_ITERS={cfg.DISTILL.HEAD.PRETRAIN_ITERS} pre-trains a distillation head, "
            "but DISTILL.LOSSES is empty (the detector trains alone)"
        )
    return build_model(cfg)


class Distiller(nn.Module, TrainableModel):
    """The frozen expert, the apprentice, the distillation head and the configured methods."""

    def __init__(self, cfg: CfgNode) -> None:
        super().__init__()
        classes = loss_classes(cfg)
        self.loss_names = [cls.name for cls in classes]
        uses = [cls.head_use(cfg) for cls in classes]
        self.cfg = cfg
        self.apprentice = build_model(cfg)
        self.expert, self.expert_cfg = build_frozen_expert(cfg)
        probe = example_batch(tuple(self.expert_cfg.INPUT.IMAGE_SIZE))
        with evaluating(self.apprentice, self.expert):
            self.apprentice_shapes = feature_shapes(self.apprentice.extract_features(probe))
            self.expert_shapes = feature_shapes(self.expert.extract_features(probe))
        self.pairing = StagePairing(self.apprentice_shapes, self.expert_shapes, cfg.DISTILL.ALIGNMENT)
        # Methods that sample at the head's locations are built after the head: parameters are then drawn
        # in the same order whatever the methods, and a config's numbers stay reproducible.
        self.kd_modules = nn.ModuleDict()
        for cls, use in zip(classes, uses, strict=True):
            if use is not HeadUse.SAMPLING:
                self.kd_modules[cls.name] = cls.from_config(cfg, self.pairing)
        self._cache: ExpertFeatureCache | None = None
        self.head = None
        if any(use is not HeadUse.NONE for use in uses):
            self._build_head(cfg)
        for cls, use in zip(classes, uses, strict=True):
            if use is HeadUse.SAMPLING:
                self.kd_modules[cls.name] = cls.from_config(cfg, self.pairing)
        self._check_pretraining(cfg.DISTILL.HEAD.PRETRAIN_ITERS)
        stages_of = {name: module.term_stages().values() for name, module in self.kd_modules.items()}
        self._loss_stage_scales = parse_loss_stage_scales(cfg.DISTILL.LOSS_STAGE_SCALE, stages_of)
        if cfg.DISTILL.EXPERT.RAY_ARTIFACTS.STRENGTH and not self.pairing.expert_has_bev:
            raise ConfigError(
                "DISTILL.EXPERT.RAY_ARTIFACTS corrupts the expert's BEV, and this expert has none"
            )

    def _check_pretraining(self, iters: int) -> None:
        if iters >= 0 and (iters == 0 or self.head is not None):
            return
        users = [name for name, cls in DISTILL_LOSS_REGISTRY if cls.head_use(self.cfg) is not HeadUse.NONE]
        raise ConfigError(
            f"DISTILL.HEAD.PRETRAIN_ITERS={iters} needs a non-negative count and a distillation head "
            f"(DISTILL.LOSSES {self.loss_names} must include one of {sorted(users)}, with their settings)"
        )

    def _build_head(self, cfg: CfgNode) -> None:
        head_cfg = cfg.DISTILL.HEAD
        pair = self.pairing.head_pair()
        self.head = DistillationHead(
            pair.stage,
            pair.expert_channels,
            len(cfg.DATASETS.CLASSES),
            head_cfg.NUM_QUERIES,
            head_cfg.NUM_HEADS,
            head_cfg.NUM_POINTS,
            head_cfg.FFN_DIMS,
            list(self.expert_cfg.MODEL.POINT_CLOUD_RANGE),
            pv_level=pair.expert_level,
            num_layers=head_cfg.NUM_LAYERS,
            box_reference=head_cfg.BOX_REFERENCE and isinstance(pair, BEVPair),
        )
        self.head_loss = DetectionLoss(
            cls_weight=head_cfg.CLS_WEIGHT,
            box_weight=head_cfg.BOX_WEIGHT,
            code_weights=cfg.MODEL.HEAD.CODE_WEIGHTS,
            prefix="loss_dh",
        )

    # ------------------------------------------------------------------------- the engine's questions
    def trained_detector(self) -> nn.Module:
        return self.apprentice

    def data_image_size(self) -> tuple[int, int]:
        """Images are decoded once at the larger of the apprentice's and the expert's input sizes; each
        detector resizes to its own."""
        sizes = [tuple(self.apprentice.image_size), tuple(self.expert.image_size)]
        return max(sizes, key=lambda hw: hw[0] * hw[1])

    def provenance(self) -> dict[str, str]:
        expert = self.cfg.DISTILL.EXPERT
        return {"distilled_from": expert.WEIGHTS or expert.CONFIG_FILE, "method": "+".join(self.loss_names)}

    def training_phases(self) -> list[TrainingPhase]:
        """`DISTILL.HEAD.PRETRAIN_ITERS` steps of the head alone (L_dh, Eq. 2): trained jointly from scratch,
        as in the paper, it finds no focal query for the first part of a short schedule, and SMGD and QFD
        then distil nothing focal."""
        iters = self.cfg.DISTILL.HEAD.PRETRAIN_ITERS
        if not iters:
            return []
        return [TrainingPhase(HEAD_PRETRAINING, iters, tuple(self.head.parameters()))]

    @property
    def queue_length(self) -> int:
        """Previous keyframes the batch must carry: as many as either detector reads."""
        return max(self.apprentice.queue_length, self.expert.queue_length)

    # ---------------------------------------------------------------------------------------- running
    def train(self, mode: bool = True) -> Distiller:
        super().train(mode)
        self.expert.eval()  # frozen statistics and no dropout, whatever the distiller's mode
        return self

    @torch.no_grad()
    def expert_features(self, batch: dict) -> DetectorFeatures:
        """The frozen expert's features of the batch, read from `DISTILL.EXPERT.FEATURE_CACHE` when set, with
        `DISTILL.EXPERT.RAY_ARTIFACTS` added to the BEV when configured (the cache keeps the clean ones)."""
        features = self._clean_expert_features(batch)
        artifacts = self.cfg.DISTILL.EXPERT.RAY_ARTIFACTS
        if artifacts.STRENGTH == 0:
            return features
        bev = smear_along_rays(
            features.bev,
            batch["gt_boxes"],
            features.bev_extent,
            artifacts.STRENGTH,
            artifacts.LENGTH,
            artifacts.DECAY,
        )
        return dataclasses.replace(features, bev=bev)

    def _clean_expert_features(self, batch: dict) -> DetectorFeatures:
        if not self.cfg.DISTILL.EXPERT.FEATURE_CACHE:
            return self.expert.extract_features(batch)
        cache = self._feature_cache(batch)
        tokens = list(batch["sample_token"])
        if all(cache.has(token) for token in tokens):
            return cache.load(tokens, batch["images"].device)
        features = self.expert.extract_features(batch)
        for index, token in enumerate(tokens):
            cache.store(token, features, index)
        return features

    def _feature_cache(self, batch: dict) -> ExpertFeatureCache:
        if self._cache is None:
            levels = [pair.expert_level for pair in self.pairing.pv_pairs]
            if self.head is not None and self.head.mode is Stage.PV:
                levels.append(self.head.pv_level)
            fingerprint = expert_fingerprint(
                self.expert,
                config_to_dict(self.expert_cfg),
                tuple(batch["images"].shape[-2:]),
                len(batch.get("queue") or []),
            )
            self._cache = ExpertFeatureCache(
                self.cfg.DISTILL.EXPERT.FEATURE_CACHE,
                fingerprint,
                levels,
                self.expert_shapes["bev"] is not None,
            )
        return self._cache

    def run_head(
        self, expert: DetectorFeatures, batch: dict, losses: dict
    ) -> tuple[DistillHeadOutputs, Tensor, list[tuple[Tensor, Tensor]]]:
        """Head outputs, focal mask (B, Q) and the last layer's matching; L_dh of every layer into losses."""
        outputs = self.head(expert)
        # every layer supervised (Eq. 2); the focal queries are the last layer's
        head_losses, matches = self.head_loss.losses_and_matches(
            outputs, batch["gt_boxes"], batch["gt_labels"]
        )
        losses.update(head_losses)
        head_cfg = self.cfg.DISTILL.HEAD
        focal = select_focal_queries(
            outputs.cls_logits[-1],
            outputs.box_code[-1],
            matches,
            batch["gt_boxes"],
            head_cfg.CONF_THRESH,
            head_cfg.GIOU_THRESH,
        )
        losses["num_focal_queries"] = focal.sum().float()
        return outputs, focal, matches

    def head_losses(self, batch: dict) -> dict[str, Tensor]:
        """L_dh of the batch and the focal-query count, without the apprentice: head pre-training."""
        if self.head is None:
            raise ConfigError(f"DISTILL.LOSSES {self.loss_names} use no distillation head")
        losses: dict[str, Tensor] = {}
        self.run_head(self.expert_features(batch), batch, losses)
        return losses

    def forward(self, batch: dict, phase: str | None = None) -> dict[str, Tensor]:
        """Every loss term of the step by name; in the head pre-training phase, only the head's."""
        if phase == HEAD_PRETRAINING:
            return self.head_losses(batch)
        if phase is not None:
            raise ValueError(f"unknown training phase {phase!r}; the distiller has {[HEAD_PRETRAINING]}")
        expert = self.expert_features(batch)
        apprentice = self.apprentice.extract_features(batch)
        losses = dict(self.apprentice.losses(self.apprentice.forward_head(apprentice, batch), batch))
        step = DistillationStep(apprentice, expert, batch, self.pairing)
        if self.head is not None:
            step.head, step.focal, _ = self.run_head(expert, batch, losses)
        for name in self.loss_names:
            module = self.kd_modules[name]
            stages = module.term_stages()
            for term, value in module(step).items():
                losses[term] = value * self._stage_scale(name, term, stages.get(term))
        return losses

    def _stage_scale(self, method: str, term: str, stage: str | None) -> float:
        """`DISTILL.STAGE_SCALE` of the term's stage times the method's `DISTILL.LOSS_STAGE_SCALE` there;
        a term of unknown stage only under scales of 1."""
        scales = self.cfg.DISTILL.STAGE_SCALE
        if stage is not None:
            return float(scales[stage.upper()]) * self._loss_stage_scales.get((method, stage), 1.0)
        if scales.PV != 1 or scales.BEV != 1:
            raise ConfigError(
                f"DISTILL.STAGE_SCALE (PV {scales.PV}, BEV {scales.BEV}) scales terms by stage, but method "
                f"{method!r} does not say the stage of {term!r} (its term_stages()); leave both at 1"
            )
        return 1.0
