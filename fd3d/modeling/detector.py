"""The interface every camera-only 3D detector implements, and what the distiller relies on.

A detector is a plain `nn.Module` built from a config (`cls(cfg)`) whose forward pass is split into
three public steps, so a distiller can take the features without running the detection head twice:

1. `extract_features(batch) -> DetectorFeatures`
   - `pv`: list over FPN levels (low stride first) of perspective-view maps `(B, Ncam, C, H_l, W_l)`;
     `pv_strides` their strides in pixels of the network input.
   - `bev`: the bird's-eye-view map `(B, C, bev_h, bev_w)` or None for BEV-free detectors (DETR3D).
     Row i covers y in [y0 + i*dy, y0 + (i+1)*dy], column j covers x likewise, in the LiDAR frame;
     `bev_extent` = (x0, y0, x1, y1) metres.
   - `geometry`: `lidar2img (B, Ncam, 4, 4)` mapping homogeneous LiDAR points to pixel·depth of the
     network input of size `image_size` (H, W) — the images may have been resized by the detector.
2. `forward_head(features, batch) -> HeadOutputs`: per decoder layer, class logits `(L, B, Q, K)` and
   box codes `(L, B, Q, 10)` with metric centres (see `fd3d.modeling.box_coder`).
3. `losses(head_outputs, batch) -> dict[str, Tensor]` (named detection losses, one entry per term and
   decoder layer) and `predict(head_outputs) -> list[dict]` (per sample `boxes_lidar (N, 9)`,
   `scores (N,)`, `labels (N,)`, what `fd3d.evaluation.Detections(**d)` takes).
4. `queue_length`: how many previous keyframes the detector wants in `batch["queue"]` (data loaders
   read it; 0 for single-frame detectors). A temporal detector with a BEV also takes the history as
   state instead: `batch["prev_bev"]`, the `bev` it returned for the previous frame `(B, C, H, W)`,
   with `curr2prev_lidar` and `prev_exists` (streaming inference, `fd3d.deploy`); `next_state(features,
   batch)` names those entries for the next frame (the official test protocol,
   `fd3d.evaluation.scene_protocol`).

`forward(batch)` chains them: a loss dict in training mode, predictions in eval mode (Detectron2's
convention). The batch is `fd3d.data.collate_samples` output: `images (B, Ncam, 3, H, W)` uint8 RGB (or
`normalized_images`, float, already normalised: see `Camera3DDetector.normalized_images`),
`lidar2img`, `curr2prev_lidar (B, 4, 4)`, `prev_exists (B,)`, lists `gt_boxes` / `gt_labels`, and
optionally `queue` (previous frames, oldest first).
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from pathlib import Path

import torch
import torch.nn.functional as F
from fvcore.common.config import CfgNode
from torch import Tensor, nn

from fd3d.data.resize import check_resize_mode
from fd3d.modeling.backbone import build_resnet_backbone, normalize_images
from fd3d.modeling.box_coder import decode_topk
from fd3d.modeling.fpn import FPN
from fd3d.modeling.losses import DetectionLoss
from fd3d.modeling.outputs import CameraGeometry, DetectorFeatures, HeadOutputs
from fd3d.modeling.trainable import TrainableModel

INPUT_FORMATS = ("RGB", "BGR")


def resize_inputs(
    images: Tensor, lidar2img: Tensor, size: tuple[int, int], antialias: bool = True
) -> tuple[Tensor, Tensor]:
    """Resize (B, Ncam, 3, H, W) float images to `size` and scale lidar2img's pixel rows to match;
    without `antialias`, bilinear at half-pixel centres (OpenCV's INTER_LINEAR, mmcv.imresize)."""
    batch, cams, _, height, width = images.shape
    if (height, width) == tuple(size):
        return images, lidar2img
    resized = F.interpolate(
        images.flatten(0, 1), size=tuple(size), mode="bilinear", align_corners=False, antialias=antialias
    ).unflatten(0, (batch, cams))
    scale = torch.ones(4, dtype=lidar2img.dtype, device=lidar2img.device)
    scale[0], scale[1] = size[1] / width, size[0] / height
    return resized, scale.view(4, 1) * lidar2img


def pad_to_multiple(images: Tensor, divisor: int) -> Tensor:
    """Zero-pad (..., H, W) at the bottom and right to multiples of `divisor` (0 or 1: unchanged)."""
    if divisor <= 1:
        return images
    height, width = images.shape[-2:]
    pad_h, pad_w = -height % divisor, -width % divisor
    return F.pad(images, (0, pad_w, 0, pad_h)) if pad_h or pad_w else images


class Camera3DDetector(nn.Module, TrainableModel, ABC):
    """Shared plumbing: image normalisation and resize, ResNet + FPN, the loss and NMS-free decoding."""

    def __init__(self, cfg: CfgNode) -> None:
        super().__init__()
        # the detector keeps the config it was built from: `save_pretrained(folder)` needs nothing else
        self.config = cfg.clone()
        self.config.freeze()
        model = cfg.MODEL
        if len(model.POINT_CLOUD_RANGE) != 6:
            raise ValueError(f"MODEL.POINT_CLOUD_RANGE needs 6 values, got {model.POINT_CLOUD_RANGE}")
        self.num_classes = len(cfg.DATASETS.CLASSES)
        self.image_size = (int(cfg.INPUT.IMAGE_SIZE[0]), int(cfg.INPUT.IMAGE_SIZE[1]))
        if cfg.INPUT.FORMAT not in INPUT_FORMATS:
            raise ValueError(f"INPUT.FORMAT must be one of {INPUT_FORMATS}, got {cfg.INPUT.FORMAT!r}")
        self.input_format = cfg.INPUT.FORMAT
        self.resize_mode = check_resize_mode(cfg.INPUT.RESIZE)
        if cfg.INPUT.SIZE_DIVISIBILITY < 0:
            raise ValueError(f"INPUT.SIZE_DIVISIBILITY must be >= 0, got {cfg.INPUT.SIZE_DIVISIBILITY}")
        self.size_divisibility = int(cfg.INPUT.SIZE_DIVISIBILITY)
        self.register_buffer("pc_range", torch.tensor(model.POINT_CLOUD_RANGE, dtype=torch.float32), False)
        self.register_buffer("pixel_mean", torch.tensor(model.PIXEL_MEAN).view(3, 1, 1), False)
        self.register_buffer("pixel_std", torch.tensor(model.PIXEL_STD).view(3, 1, 1), False)
        bb = model.BACKBONE
        self.backbone = build_resnet_backbone(
            depths=bb.DEPTHS,
            hidden_sizes=bb.HIDDEN_SIZES,
            embedding_size=bb.EMBEDDING_SIZE,
            layer_type=bb.LAYER_TYPE,
            out_stages=bb.OUT_STAGES,
            pretrained=bb.PRETRAINED,
            dcn_stages=bb.DCN_STAGES,
            frozen_stages=bb.FROZEN_STAGES,
            norm_eval=bb.NORM_EVAL,
            style=bb.STYLE,
            dcn_mask_scale=bb.DCN_MASK_SCALE,
        )
        self.neck = FPN(self.backbone.out_channels, model.FPN.OUT_CHANNELS, model.FPN.NUM_OUTS)
        strides = list(self.backbone.strides)
        while len(strides) < model.FPN.NUM_OUTS:
            strides.append(strides[-1] * 2)
        self.pv_strides = strides
        head = model.HEAD
        self.criterion = DetectionLoss(
            cls_weight=head.CLS_WEIGHT,
            box_weight=head.BOX_WEIGHT,
            alpha=head.FOCAL_ALPHA,
            gamma=head.FOCAL_GAMMA,
            code_weights=head.CODE_WEIGHTS,
        )
        self.max_detections = head.MAX_DETECTIONS
        # previous keyframes the model reads from `batch["queue"]`; temporal detectors raise it
        self.queue_length = 0
        self.post_center_range = list(head.POST_CENTER_RANGE)
        # the evaluation protocol of a temporal detector its config names ("" = fd3d's "queue"), what
        # `--eval-only` uses unless its own config names one (`fd3d.evaluation.scene_protocol`)
        self.temporal_protocol = str(cfg.TEST.TEMPORAL_PROTOCOL)

    def save_pretrained(self, folder: str | os.PathLike, **card) -> Path:
        """Write this detector as a model folder (config.json, model.safetensors, README.md card) that
        `fd3d.from_pretrained(folder)` builds back; `card` takes `fd3d.hub.save_pretrained`'s keyword
        fields (metrics, gflops, distilled_from, method, eval_dataset, notes).

        Model folders are the hub layer's format, one layer above this one: the import is deferred, the
        single such call in fd3d (README "Layout"; transformers' `PreTrainedModel.save_pretrained` alike).
        """
        from fd3d.hub import save_pretrained

        return save_pretrained(self, self.config, folder, **card)

    def normalized_images(self, batch: dict) -> Tensor:
        """(B, Ncam, 3, H, W) float network input: uint8 RGB `images` normalised in INPUT.FORMAT's order.

        A batch may instead carry `normalized_images`, float images already normalised in that order (what
        the official pipelines hand their models); they are used as they are.
        """
        if "normalized_images" in batch:
            images = batch["normalized_images"]
            if not images.is_floating_point():
                raise TypeError(f"normalized_images must be float, got dtype {images.dtype}")
        else:
            images = batch["images"]
            if self.input_format == "BGR":
                images = images.flip(-3)
            images = normalize_images(images, self.pixel_mean.flatten(), self.pixel_std.flatten())
        if images.dim() != 5 or images.shape[2] != 3:
            raise ValueError(f"expected images (B, Ncam, 3, H, W), got {tuple(images.shape)}")
        return images

    def encode_images(self, batch: dict) -> tuple[list[Tensor], CameraGeometry]:
        """Camera images -> FPN levels (B, Ncam, C, H_l, W_l) and the geometry at network size.

        With INPUT.SIZE_DIVISIBILITY the normalised images are zero-padded at the bottom and right, and
        the geometry's image size is the padded one (projected pixels are then divided by the size the
        features span, as in the official models).
        """
        images = self.normalized_images(batch)
        lidar2img = batch["lidar2img"].to(images.dtype)
        images, lidar2img = resize_inputs(images, lidar2img, self.image_size, self.resize_mode == "antialias")
        images = pad_to_multiple(images, self.size_divisibility)
        batch_size, cams = images.shape[:2]
        levels = self.neck(self.backbone(images.flatten(0, 1)))
        pv = [level.unflatten(0, (batch_size, cams)) for level in levels]
        padded_size = (int(images.shape[-2]), int(images.shape[-1]))
        return pv, CameraGeometry(lidar2img=lidar2img, image_size=padded_size)

    @abstractmethod
    def extract_features(self, batch: dict) -> DetectorFeatures:
        """Perspective-view (and BEV) features of the batch's current frame."""

    @abstractmethod
    def forward_head(self, features: DetectorFeatures, batch: dict) -> HeadOutputs:
        """Run the detection decoder on extracted features."""

    def losses(self, outputs: HeadOutputs, batch: dict) -> dict[str, Tensor]:
        return self.criterion(outputs, batch["gt_boxes"], batch["gt_labels"])

    @torch.no_grad()
    def predict(self, outputs: HeadOutputs) -> list[dict[str, Tensor]]:
        """Final-layer top-k boxes per sample in the LiDAR frame, on the CPU."""
        cls_logits, box_code = outputs.cls_logits[-1], outputs.box_code[-1]
        predictions = []
        for b in range(cls_logits.shape[0]):
            top = decode_topk(cls_logits[b], box_code[b], self.max_detections, self.post_center_range)
            predictions.append(
                {
                    "boxes_lidar": top["boxes"].float().cpu(),
                    "scores": top["scores"].float().cpu(),
                    "labels": top["labels"].cpu(),
                }
            )
        return predictions

    def next_state(self, features: DetectorFeatures, batch: dict) -> dict | None:
        """What this frame hands to the next frame of its scene under the official test protocol
        (`fd3d.evaluation.scene_protocol`), as batch entries; None: the detector keeps no history."""
        return None

    def forward(self, batch: dict) -> dict[str, Tensor] | list[dict[str, Tensor]]:
        outputs = self.forward_head(self.extract_features(batch), batch)
        if self.training:
            return self.losses(outputs, batch)
        return self.predict(outputs)
