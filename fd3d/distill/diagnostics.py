"""Measurements that say whether a distillation setup can work: where QFD samples, how strong each term's
gradient is at the apprentice's features, how much of the map the focal masks cover, and whether the
expert's BEV carries the ray-shaped artefacts behind objects that the paper's premise rests on (Sec. 1,
Fig. 2, Table 4c). Used by `tools/diagnose_distillation.py`; every function works on one batch.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor

from fd3d.distill.distill_head import DistillHeadOutputs
from fd3d.distill.masks import box_corners_lidar, points_in_bev_boxes
from fd3d.distill.qfd import sample_at
from fd3d.modeling.outputs import CameraGeometry, DetectorFeatures
from fd3d.modeling.projection import project_to_images

# metres behind an object along its camera ray where artefacts are looked for (the 2-10 m)
RAY_DISTANCES = (2.0, 4.0, 6.0, 8.0, 10.0)
# background reference points: at least this far in bearing from every object
BACKGROUND_MIN_BEARING = math.radians(15.0)


@contextmanager
def recording_features(detector: torch.nn.Module) -> Iterator[list[DetectorFeatures]]:
    """Collects every `DetectorFeatures` the detector's `extract_features` returns inside the block."""
    records: list[DetectorFeatures] = []
    original = detector.extract_features

    def extract_and_record(batch: dict) -> DetectorFeatures:
        features = original(batch)
        records.append(features)
        return features

    detector.extract_features = extract_and_record
    try:
        yield records
    finally:
        del detector.extract_features  # the class's method again


def term_groups(losses: dict[str, Tensor]) -> dict[str, Tensor]:
    """Loss terms grouped as the apprentice sees them: 'detection' (its own losses summed) and each
    distillation term by name (`loss_kd_smgd_pv0` -> 'smgd_pv0'). L_dh never reaches the apprentice."""
    groups: dict[str, Tensor] = {}
    for name, value in losses.items():
        if not name.startswith("loss") or name.startswith("loss_dh"):
            continue
        key = name.removeprefix("loss_kd_") if name.startswith("loss_kd_") else "detection"
        groups[key] = groups[key] + value if key in groups else value
    return groups


def feature_gradient_norms(losses: dict[str, Tensor], features: DetectorFeatures) -> dict[str, dict]:
    """Per term group: L2 norm of d(term)/d(feature) at the apprentice's PV levels (together) and BEV."""
    stages = {"pv": list(features.pv)}
    if features.bev is not None:
        stages["bev"] = [features.bev]
    norms: dict[str, dict] = {}
    for name, term in term_groups(losses).items():
        norms[name] = {}
        for stage, tensors in stages.items():
            grads = torch.autograd.grad(term, tensors, retain_graph=True, allow_unused=True)
            squares = [g.pow(2).sum() for g in grads if g is not None]
            norms[name][stage] = float(torch.stack(squares).sum().sqrt()) if squares else 0.0
    return norms


def _matched_gt(focal: Tensor, matches: list[tuple[Tensor, Tensor]]) -> list[dict[int, int]]:
    """Per sample: focal query index -> its ground-truth index."""
    return [
        {int(q): int(g) for q, g in zip(query_idx, gt_idx, strict=True) if focal[b, q]}
        for b, (query_idx, gt_idx) in enumerate(matches)
    ]


def qfd_points_on_objects(
    head: DistillHeadOutputs,
    focal: Tensor,
    matches: list[tuple[Tensor, Tensor]],
    gt_boxes: list[Tensor],
    pc_range: Tensor,
    geometry: CameraGeometry | None = None,
) -> tuple[int, int]:
    """(points on their object, points) over the QFD samples of the focal queries.

    BEV head: a sample is on its object when its metric (x, y) lies in the matched ground-truth box's
    rotated footprint. PV head: when, in a camera that sees the query, it lies in the image rectangle
    enclosing the projected corners of that box (boxes with a corner behind the camera are skipped).
    """
    on, total = 0, 0
    for b, pairs in enumerate(_matched_gt(focal, matches)):
        if not pairs:
            continue
        queries = torch.tensor(list(pairs), dtype=torch.long)
        boxes = gt_boxes[b][list(pairs.values())].to(head.locations)
        if head.visible is None:  # BEV: (B, Q, M, K, 2) in [0, 1] of the BEV
            unit = head.locations[b, queries].flatten(1, 2)  # (N, M*K, 2)
            metric = pc_range[:2] + unit * (pc_range[3:5] - pc_range[:2])
            inside = points_in_bev_boxes(metric, boxes)
            on, total = on + int(inside.sum()), total + inside.numel()
            continue
        lidar2img = geometry.lidar2img[b : b + 1]
        corners = box_corners_lidar(boxes).flatten(0, 1)[None]  # (1, N*8, 3)
        uv, _ = project_to_images(corners, lidar2img, geometry.image_size)  # [0, 1] like the locations
        depth_ok = _corners_in_front(corners, lidar2img).view(-1, len(queries), 8).all(-1)
        uv = uv[0].view(-1, len(queries), 8, 2)  # (Ncam, N, 8, 2)
        low, high = uv.amin(2), uv.amax(2)  # (Ncam, N, 2)
        points = head.locations[b][:, queries].flatten(2, 3)  # (Ncam, N, M*K, 2)
        inside = ((points >= low[:, :, None]) & (points <= high[:, :, None])).all(-1)
        counted = head.visible[b][:, queries] & depth_ok  # (Ncam, N)
        on += int((inside & counted[..., None]).sum())
        total += int(counted.sum()) * points.shape[2]
    return on, total


def _corners_in_front(corners: Tensor, lidar2img: Tensor) -> Tensor:
    homogeneous = torch.cat([corners, torch.ones_like(corners[..., :1])], -1)
    return torch.einsum("bcij,bnj->bcni", lidar2img, homogeneous)[..., 2] > 0  # (1, Ncam, N*8)


def ray_artifact_index(
    bev: Tensor, gt_boxes: list[Tensor], extent: tuple[float, float, float, float], seed: int = 0
) -> tuple[float, float]:
    """(mean activation 2-10 m behind objects along the ray from the ego origin, mean activation of
    background at the same ranges), activation = channel-mean |feature| of `bev` (B, C, H, W).

    Their ratio is the ray-artefact index: about 1 when the space behind objects looks like any background,
    above 1 when object features leak along the camera rays (the paper's Fig. 2). Background points are
    at the same distances from the ego, at bearings at least 15 degrees from every object's, outside every
    box. Points off the map are not counted.
    """
    activation = bev.abs().mean(1, keepdim=True)  # (B, 1, H, W)
    x0, y0, x1, y1 = extent
    size = bev.new_tensor([x1 - x0, y1 - y0])
    origin = bev.new_tensor([x0, y0])
    generator = torch.Generator().manual_seed(seed)
    behind_sum, behind_n, back_sum, back_n = 0.0, 0, 0.0, 0
    for b, boxes in enumerate(gt_boxes):
        if len(boxes) == 0:
            continue
        boxes = boxes.to(bev)
        centres = boxes[:, :2]
        ranges = centres.norm(dim=1).clamp(min=1e-3)
        bearings = torch.atan2(centres[:, 1], centres[:, 0])
        steps = bev.new_tensor(RAY_DISTANCES)
        # behind: along the ray, beyond the centre by each distance (N, D, 2)
        behind = centres[:, None] + (centres / ranges[:, None])[:, None] * steps[None, :, None]
        target_range = (ranges[:, None] + steps[None]).flatten()  # (N*D,)
        angles = torch.rand(len(target_range) * 8, generator=generator).to(bev) * 2 * math.pi - math.pi
        radii = target_range.repeat(8)
        background = torch.stack([radii * angles.cos(), radii * angles.sin()], -1)
        gap = (angles[:, None] - bearings[None]).remainder(2 * math.pi)
        far_from_objects = torch.minimum(gap, 2 * math.pi - gap).amin(1) >= BACKGROUND_MIN_BEARING
        for points, keep in ((behind.flatten(0, 1), None), (background, far_from_objects)):
            outside_boxes = ~points_in_bev_boxes(points[None], boxes).any(0)
            unit = (points - origin) / size
            on_map = ((unit >= 0) & (unit <= 1)).all(-1)
            use = outside_boxes & on_map if keep is None else outside_boxes & on_map & keep
            if not use.any():
                continue
            values = sample_at(activation[b : b + 1], unit[use][None, :, None, None]).flatten()
            if keep is None:
                behind_sum, behind_n = behind_sum + float(values.sum()), behind_n + len(values)
            else:
                back_sum, back_n = back_sum + float(values.sum()), back_n + len(values)
    return behind_sum / max(behind_n, 1), back_sum / max(back_n, 1)
