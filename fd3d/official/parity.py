"""fd3d outputs in the official code's layout and conventions, and their comparison with its outputs.

The reference files (`../shared/fixtures/official/*_outputs.pt`, or what a user dumps from the official
code) hold per frame `all_cls_scores` / `all_bbox_preds` (every decoder layer), `boxes_3d` (mmdet3d 0.17
`LiDARInstance3DBoxes.tensor`: z at the bottom, yaw with heading (-sin yaw, -cos yaw)), its gravity
centres, `scores_3d`, `labels_3d`, `img_feats` and, for BEV models, `bev_embed`; temporal models add
`prev_bev_in` (the previous frame's `bev_embed` fed in) and `can_bus_used` (the CAN-bus vector after the
official per-frame deltas). `to_official_frame` turns fd3d's outputs into exactly that, so either side can
be compared by any program.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from fd3d.data.can_bus import relative_can_bus
from fd3d.evaluation.scene_protocol import stream_frame
from fd3d.official.convert import COS, SIN

FLOAT_OUTPUTS = (
    "all_cls_scores",
    "all_bbox_preds",
    "boxes_3d",
    "boxes_3d_gravity_center",
    "scores_3d",
    "bev_embed",
    "prev_bev_in",
    "can_bus_used",
)


def code_to_official(box_code: Tensor) -> Tensor:
    """fd3d's box code (sin, cos of the heading angle) -> the official one (of the mmdet3d 0.17 yaw)."""
    official = box_code.clone()
    official[..., SIN], official[..., COS] = -box_code[..., COS], -box_code[..., SIN]
    return official


def boxes_to_official(boxes: Tensor) -> Tensor:
    """(N, 9) fd3d boxes (z centre, heading angle) -> mmdet3d 0.17 (z bottom, yaw = -heading - pi/2)."""
    official = boxes.clone()
    official[:, 2] = boxes[:, 2] - boxes[:, 5] / 2
    yaw = -boxes[:, 6] - math.pi / 2
    official[:, 6] = torch.atan2(yaw.sin(), yaw.cos())
    return official


def to_official_frame(
    pv: list[Tensor], cls_logits: Tensor, box_code: Tensor, prediction: dict, bev=None
) -> dict:
    """One frame of fd3d outputs (batch of one) in the reference file's layout."""
    frame = {
        "img_feats": [level[0] for level in pv],
        "all_cls_scores": cls_logits,
        "all_bbox_preds": code_to_official(box_code),
        "boxes_3d": boxes_to_official(prediction["boxes_lidar"]),
        "boxes_3d_gravity_center": prediction["boxes_lidar"][:, :3].clone(),
        "scores_3d": prediction["scores"],
        "labels_3d": prediction["labels"],
    }
    if bev is not None:
        frame["bev_embed"] = bev_embed(bev)
    return frame


def bev_embed(bev: Tensor) -> Tensor:
    """fd3d's BEV (1, C, H, W) -> the official `bev_embed` (H * W, 1, C), row h * W + w."""
    return bev[0].flatten(1).transpose(0, 1)[:, None]


def _angle_gap(a: Tensor, b: Tensor) -> Tensor:
    gap = a - b
    return torch.atan2(gap.sin(), gap.cos()).abs()


def compare_frames(ours: dict, reference: dict) -> dict[str, float]:
    """Max abs difference per output present in both (yaw compared as an angle); `labels_3d` as the count
    of detections whose label differs (0 = the same labels in the same top-k order)."""
    differences: dict[str, float] = {}
    if "img_feats" in reference:
        for level, (a, b) in enumerate(zip(ours["img_feats"], reference["img_feats"], strict=True)):
            differences[f"img_feats[{level}]"] = float((a - b.to(a)).abs().max())
    for key in FLOAT_OUTPUTS:
        a, b = ours.get(key), reference.get(key)
        if a is None and b is None:  # absent, or None on both sides (prev_bev_in of a scene's first frame)
            continue
        if (a is None) != (b is None):
            if key in ours and key in reference:  # one side had a history (or a BEV), the other not
                differences[key] = math.inf
            continue
        b = b.to(a)
        if a.shape != b.shape:
            raise ValueError(f"{key}: fd3d {tuple(a.shape)} vs reference {tuple(b.shape)}")
        if key == "boxes_3d":
            differences["boxes_3d[yaw]"] = float(_angle_gap(a[:, 6], b[:, 6]).max()) if len(a) else 0.0
            a, b = torch.cat([a[:, :6], a[:, 7:]], 1), torch.cat([b[:, :6], b[:, 7:]], 1)
        differences[key] = float((a - b).abs().max()) if a.numel() else 0.0
    if "labels_3d" in reference:
        a, b = ours["labels_3d"], reference["labels_3d"]
        differences["labels_3d"] = float(len(a) != len(b) or (a != b.to(a)).sum())
    return differences


def network_input(img: Tensor, image_size: tuple[int, int]) -> Tensor:
    """The reference's normalised, padded `img` (1, Ncam, 3, Hp, Wp) cut to the model's input size.

    The model pads by itself (INPUT.SIZE_DIVISIBILITY); what is cut away must be padding (zeros), else
    the inputs were made for another input size and the comparison would be meaningless.
    """
    height, width = image_size
    if img.shape[-2] < height or img.shape[-1] < width:
        raise ValueError(f"inputs are {tuple(img.shape[-2:])}, smaller than the model's input {image_size}")
    padding = img.clone()
    padding[..., :height, :width] = 0
    if padding.abs().max() > 0:
        raise ValueError(
            f"inputs hold non-zero pixels beyond the model's input size {image_size}: not padding"
        )
    return img[..., :height, :width]


@torch.no_grad()
def run_frames(model: torch.nn.Module, inputs: dict, from_raw: bool = False) -> list[dict]:
    """The model on every frame of a reference inputs file, outputs in the official layout.

    `from_raw` feeds `img_raw` (per frame uint8 (Ncam, H, W, 3) BGR, before normalisation) through fd3d's
    own preprocessing instead of the already normalised `img`. A temporal model (`queue_length` > 0) runs
    the official test protocol (BEVFormer's `forward_test`): frames in order, each frame's BEV kept as the
    next one's `prev_bev` while `scene_token` stays the same, and the CAN-bus vector (`can_bus`, absolute)
    turned into the change since that previous frame (`fd3d.data.can_bus.relative_can_bus`).
    """
    if from_raw and "img_raw" not in inputs:
        raise KeyError("--from-raw needs `img_raw` in the inputs file")
    temporal = int(model.queue_length) > 0
    scene, state = None, None  # the last frame's scene and what it handed on (`stream_frame`)
    frames = []
    for index, meta in enumerate(inputs["img_metas"]):
        batch: dict = {"lidar2img": torch.as_tensor(meta["lidar2img"]).float()[None]}
        if from_raw:
            raw = torch.as_tensor(inputs["img_raw"][index])  # (Ncam, H, W, 3) BGR
            batch["images"] = raw.flip(-1).permute(0, 3, 1, 2)[None].contiguous()  # fd3d reads RGB
        else:
            batch["normalized_images"] = network_input(inputs["img"][index].float(), model.image_size)
        if meta.get("can_bus") is not None:  # absolute; float64 so that deltas of global positions are exact
            batch["can_bus"] = torch.as_tensor(meta["can_bus"], dtype=torch.float64).view(1, -1)
        previous = state if temporal and scene == meta.get("scene_token") else None
        features, head, state = stream_frame(model, batch, previous)
        scene = meta.get("scene_token")
        prediction = model.predict(head)[0]
        frame = to_official_frame(features.pv, head.cls_logits, head.box_code, prediction, features.bev)
        if temporal:
            frame["prev_bev_in"] = bev_embed(previous["prev_bev"]) if previous is not None else None
            if "can_bus" in batch:  # what the model saw: the change since the previous frame
                prev_can_bus = previous["prev_can_bus"] if previous is not None else None
                used = relative_can_bus(batch["can_bus"], prev_can_bus, torch.tensor([previous is not None]))
                frame["can_bus_used"] = used[0]
        frames.append(frame)
    return frames
