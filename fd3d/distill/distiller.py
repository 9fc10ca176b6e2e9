"""The distiller: a frozen expert teaches a trainable apprentice, any two detectors of the registry.

One forward pass of `Distiller` returns every loss term by name: the apprentice's detection losses, the
distillation head's L_dh (`loss_dh_*`, Eq. 2) and each knowledge-distillation term (`loss_kd_*`, already
weighted: lambda·L_SMGD and eta·L_QFD of Eq. 15, or a baseline's). The trainer sums the entries whose
name starts with "loss"; `num_focal_queries` is a statistic for logging.

Gradient routing (Section 3.4): the expert is frozen and runs without autograd; the head sees detached
expert features, so L_dh moves only the head; focal boxes and sampling locations are detached before
they shape the KD terms, so L_KD moves only the apprentice and the generators/aligners.

Feature shapes are learnt by one probe forward of both detectors on a rig-geometry example at build
time, so nothing here knows a detector's internals ("plug-and-play", Section 3.1).
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import torch
from fvcore.common.config import CfgNode
from torch import Tensor, nn

from fd3d.config import ConfigError, config_to_dict
from fd3d.data.example_batch import example_batch
from fd3d.distill.alignment import (
    ALIGNMENTS,
    FeatureAligner,
    downsample_to,
    pair_pyramid_levels,
    upsample_factor,
)
from fd3d.distill.cwd import channel_wise_divergence
from fd3d.distill.distill_head import DistillationHead, DistillHeadOutputs
from fd3d.distill.expert import build_frozen_expert
from fd3d.distill.feature_cache import ExpertFeatureCache, expert_fingerprint
from fd3d.distill.fitnet import FitNetLoss
from fd3d.distill.focal_queries import focal_boxes, select_focal_queries
from fd3d.distill.heatmap import gaussian_heatmap, heatmap_l2
from fd3d.distill.masks import bev_box_mask, pv_box_mask
from fd3d.distill.mgd import MaskedGenerativeDistillation
from fd3d.distill.qfd import query_focal_distillation
from fd3d.distill.smgd import SelectiveMaskedGeneration
from fd3d.modeling.losses import DetectionLoss
from fd3d.modeling.outputs import DetectorFeatures
from fd3d.modeling.registry import build_model

LOSSES = ("fitnet", "cwd", "mgd", "smgd", "qfd", "heatmap")
STAGES = ("pv", "bev")
MASK_SOURCES = ("focal", "gt")
HEAD_USERS = "'qfd', or 'smgd' with DISTILL.SMGD.MASKS 'focal'"  # the losses that build the head


@dataclass(frozen=True)
class FeaturePair:
    """Where one distillation term meets: apprentice and expert feature of a stage (and PV level)."""

    name: str  # "bev" or "pv<apprentice level>"
    stage: str
    apprentice_level: int
    expert_level: int
    upsample: int  # how much the apprentice map must grow to the expert's (1 or 2)


@contextmanager
def _probing(*modules: nn.Module):
    modes = [m.training for m in modules]
    for m in modules:
        m.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        for m, mode in zip(modules, modes, strict=True):
            m.train(mode)


def _shapes(features: DetectorFeatures) -> dict:
    return {
        "pv": [(tuple(level.shape[-2:]), level.shape[2]) for level in features.pv],
        "bev": (tuple(features.bev.shape[-2:]), features.bev.shape[1]) if features.bev is not None else None,
    }


class Distiller(nn.Module):
    def __init__(self, cfg: CfgNode) -> None:
        super().__init__()
        distill = cfg.DISTILL
        self.loss_names = list(distill.LOSSES)
        unknown = sorted(set(self.loss_names) - set(LOSSES))
        if unknown or not self.loss_names:
            raise ConfigError(
                f"DISTILL.LOSSES {self.loss_names} must be a non-empty subset of {list(LOSSES)}"
            )
        if distill.ALIGNMENT not in ALIGNMENTS:
            raise ConfigError(f"DISTILL.ALIGNMENT {distill.ALIGNMENT!r} must be one of {list(ALIGNMENTS)}")
        if distill.SMGD.MASKS not in MASK_SOURCES:
            raise ConfigError(
                f"DISTILL.SMGD.MASKS {distill.SMGD.MASKS!r} must be one of {list(MASK_SOURCES)}"
            )
        self.cfg = cfg
        self.alignment = distill.ALIGNMENT
        self.apprentice = build_model(cfg)
        self.expert, self.expert_cfg = build_frozen_expert(cfg)
        probe = example_batch(tuple(self.expert_cfg.INPUT.IMAGE_SIZE))
        with _probing(self.apprentice, self.expert):
            self.apprentice_shapes = _shapes(self.apprentice.extract_features(probe))
            self.expert_shapes = _shapes(self.expert.extract_features(probe))
        self.pv_pairs = self._pv_pairs()
        self.kd_modules = nn.ModuleDict()
        for loss in self.loss_names:
            if loss != "qfd":
                for pair in self._pairs_for(loss):
                    self.kd_modules[f"{loss}_{pair.name}"] = self._make_module(loss, pair)
        self._cache: ExpertFeatureCache | None = None
        self.head = None
        if "qfd" in self.loss_names or ("smgd" in self.loss_names and distill.SMGD.MASKS == "focal"):
            self._build_head(cfg)

    # ----------------------------------------------------------------------------------------- building
    def _pv_pairs(self) -> list[FeaturePair]:
        app, exp = self.apprentice_shapes["pv"], self.expert_shapes["pv"]
        pairs = pair_pyramid_levels([s for s, _ in app], [s for s, _ in exp])
        return [FeaturePair(f"pv{a}", "pv", a, e, self._factor(app[a][0], exp[e][0])) for a, e in pairs]

    def _factor(self, apprentice_size: tuple[int, int], expert_size: tuple[int, int]) -> int:
        return upsample_factor(apprentice_size, expert_size) if self.alignment == "deconv" else 1

    def bev_pair(self) -> FeaturePair:
        app, exp = self.apprentice_shapes["bev"], self.expert_shapes["bev"]
        if app is None or exp is None:
            raise ConfigError(
                "a BEV stage was requested but "
                + ("the apprentice" if app is None else "the expert")
                + " has no BEV feature; use STAGES ['pv'] for BEV-free detectors"
            )
        return FeaturePair("bev", "bev", 0, 0, self._factor(app[0], exp[0]))

    def _pairs_for(self, loss: str) -> list[FeaturePair]:
        if loss == "heatmap":
            return self.pv_pairs + [self.bev_pair()]
        stages = list(getattr(self.cfg.DISTILL, loss.upper()).STAGES)
        bad = sorted(set(stages) - set(STAGES))
        if bad or not stages:
            raise ConfigError(
                f"DISTILL.{loss.upper()}.STAGES {stages} must be a non-empty subset of {list(STAGES)}"
            )
        pairs = []
        if "pv" in stages:
            pairs += self.pv_pairs
        if "bev" in stages:
            pairs.append(self.bev_pair())
        return pairs

    def _channels(self, pair: FeaturePair) -> tuple[int, int]:
        if pair.stage == "bev":
            return self.apprentice_shapes["bev"][1], self.expert_shapes["bev"][1]
        return self.apprentice_shapes["pv"][pair.apprentice_level][1], self.expert_shapes["pv"][
            pair.expert_level
        ][1]

    def _make_module(self, loss: str, pair: FeaturePair) -> nn.Module:
        app_ch, exp_ch = self._channels(pair)
        distill = self.cfg.DISTILL
        if loss == "smgd":
            return SelectiveMaskedGeneration(
                app_ch, exp_ch, pair.upsample, distill.SMGD.RATIO, distill.SMGD.TAU
            )
        if loss == "mgd":
            return MaskedGenerativeDistillation(app_ch, exp_ch, pair.upsample, distill.MGD.RATIO)
        if loss == "fitnet":
            return FitNetLoss(app_ch, exp_ch, pair.upsample)
        return FeatureAligner(app_ch, exp_ch, pair.upsample)  # cwd, heatmap

    def _build_head(self, cfg: CfgNode) -> None:
        head_cfg = cfg.DISTILL.HEAD
        if self.expert_shapes["bev"] is not None:
            mode, pv_level, dims = "bev", 0, self.expert_shapes["bev"][1]
            qfd_pair = self.bev_pair()
        else:
            if not self.pv_pairs:
                raise ConfigError("the expert has neither a BEV nor PV levels paired with the apprentice")
            qfd_pair = self.pv_pairs[0]
            mode, pv_level = "pv", qfd_pair.expert_level
            dims = self.expert_shapes["pv"][pv_level][1]
        self.qfd_pair = qfd_pair
        self.head = DistillationHead(
            mode,
            dims,
            len(cfg.DATASETS.CLASSES),
            head_cfg.NUM_QUERIES,
            head_cfg.NUM_HEADS,
            head_cfg.NUM_POINTS,
            head_cfg.FFN_DIMS,
            list(self.expert_cfg.MODEL.POINT_CLOUD_RANGE),
            pv_level=pv_level,
            num_layers=head_cfg.NUM_LAYERS,
            box_reference=head_cfg.BOX_REFERENCE and mode == "bev",
        )
        self.head_loss = DetectionLoss(
            cls_weight=head_cfg.CLS_WEIGHT,
            box_weight=head_cfg.BOX_WEIGHT,
            code_weights=cfg.MODEL.HEAD.CODE_WEIGHTS,
        )
        if "qfd" in self.loss_names:
            app_ch, exp_ch = self._channels(qfd_pair)
            self.kd_modules[f"qfd_{qfd_pair.name}"] = FeatureAligner(app_ch, exp_ch, qfd_pair.upsample)

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
        """The frozen expert's features of the batch, read from `DISTILL.EXPERT.FEATURE_CACHE` when set."""
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
            levels = [pair.expert_level for pair in self.pv_pairs]
            if self.head is not None and self.head.mode == "pv":
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

    def _feature(self, features: DetectorFeatures, pair: FeaturePair, expert: bool) -> Tensor:
        """(N, C, H, W) map of a pair's side; PV cameras are folded into the batch."""
        if pair.stage == "bev":
            return features.bev
        level = pair.expert_level if expert else pair.apprentice_level
        return features.pv[level].flatten(0, 1)

    def _expert_side(self, expert: Tensor, apprentice: Tensor) -> Tensor:
        if self.alignment == "downsample":
            return downsample_to(expert, apprentice.shape[-2:])
        return expert

    def box_masks(self, boxes: list[Tensor], features: DetectorFeatures, pair: FeaturePair) -> Tensor:
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

    def run_head(
        self, expert: DetectorFeatures, batch: dict, losses: dict
    ) -> tuple[DistillHeadOutputs, Tensor, list[tuple[Tensor, Tensor]]]:
        """Head outputs, focal mask (B, Q) and the last layer's matching; L_dh of every layer into losses."""
        outputs = self.head(expert)
        num_layers = len(outputs.all_cls_logits)
        for layer, (logits, code) in enumerate(
            zip(outputs.all_cls_logits, outputs.all_box_codes, strict=True)
        ):
            focal_loss, l1_loss, matches = self.head_loss.layer_loss(
                logits, code, batch["gt_boxes"], batch["gt_labels"]
            )
            suffix = "" if layer == num_layers - 1 else f"_d{layer}"  # every layer supervised (Eq. 2)
            losses[f"loss_dh_cls{suffix}"] = self.head_loss.cls_weight * focal_loss
            losses[f"loss_dh_box{suffix}"] = self.head_loss.box_weight * l1_loss
        head_cfg = self.cfg.DISTILL.HEAD
        focal = select_focal_queries(
            outputs.cls_logits,
            outputs.box_code,
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
            raise ConfigError(
                f"DISTILL.LOSSES {self.loss_names} use no distillation head (needs {HEAD_USERS})"
            )
        losses: dict[str, Tensor] = {}
        self.run_head(self.expert_features(batch), batch, losses)
        return losses

    def _qfd(
        self, head: DistillHeadOutputs, focal: Tensor, app: DetectorFeatures, exp: DetectorFeatures
    ) -> Tensor:
        pair = self.qfd_pair
        aligned = self.kd_modules[f"qfd_{pair.name}"](self._feature(app, pair, expert=False))
        expert = self._expert_side(self._feature(exp, pair, expert=True), aligned)
        locations = head.locations.detach()
        if pair.stage == "pv":
            locations = locations.flatten(0, 1)  # (B*Ncam, Q, M, K, 2)
            focal = (focal[:, None] & head.visible).flatten(0, 1)
        return query_focal_distillation(expert, aligned, locations, focal)

    def forward(self, batch: dict) -> dict[str, Tensor]:
        expert = self.expert_features(batch)
        apprentice = self.apprentice.extract_features(batch)
        losses = dict(self.apprentice.losses(self.apprentice.forward_head(apprentice, batch), batch))
        distill = self.cfg.DISTILL
        head_outputs, focal = (None, None)
        if self.head is not None:
            head_outputs, focal, _ = self.run_head(expert, batch, losses)

        for loss in self.loss_names:
            if loss == "qfd":
                losses["loss_kd_qfd"] = distill.QFD.WEIGHT * self._qfd(
                    head_outputs, focal, apprentice, expert
                )
                continue
            for pair in self._pairs_for(loss):
                module = self.kd_modules[f"{loss}_{pair.name}"]
                app_map = self._feature(apprentice, pair, expert=False)
                exp_map = self._expert_side(self._feature(expert, pair, expert=True), app_map)
                losses[f"loss_kd_{loss}_{pair.name}"] = self._term(
                    loss, module, pair, app_map, exp_map, apprentice, batch, head_outputs, focal
                )
        return losses

    def _term(self, loss, module, pair, app_map, exp_map, apprentice, batch, head_outputs, focal) -> Tensor:
        distill = self.cfg.DISTILL
        if loss == "smgd":
            if distill.SMGD.MASKS == "gt":
                boxes = [b.to(app_map) for b in batch["gt_boxes"]]
            else:
                with torch.no_grad():
                    boxes = focal_boxes(head_outputs.box_code, focal)
            masks = self.box_masks(boxes, apprentice, pair)
            return distill.SMGD.WEIGHT * module(app_map, exp_map, masks)
        if loss == "mgd":
            return distill.MGD.WEIGHT * module(app_map, exp_map)
        if loss == "fitnet":
            return distill.FITNET.WEIGHT * module(app_map, exp_map)
        if loss == "cwd":
            return distill.CWD.WEIGHT * channel_wise_divergence(
                module(app_map), exp_map.detach(), distill.CWD.TAU
            )
        # heatmap: CWD on PV levels, heatmap-weighted L2 on the BEV
        aligned = module(app_map)
        if pair.stage == "pv":
            return distill.HEATMAP.PV_WEIGHT * channel_wise_divergence(
                aligned, exp_map.detach(), distill.HEATMAP.TAU
            )
        height, width = exp_map.shape[-2:]
        heat = torch.stack(
            [gaussian_heatmap(b.to(exp_map), height, width, apprentice.bev_extent) for b in batch["gt_boxes"]]
        )
        return distill.HEATMAP.BEV_WEIGHT * heatmap_l2(aligned, exp_map, heat)
