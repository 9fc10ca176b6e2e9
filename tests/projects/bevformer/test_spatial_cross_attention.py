"""Spatial cross-attention samples only the cameras a pillar projects into, and equals a naive loop."""

from __future__ import annotations

import torch

from fd3d.data.dataset import NuScenesDataset
from fd3d.ops.deform_attn import multi_scale_deformable_attention
from fd3d_projects.BEVFormer.bevformer.bev_alignment import bev_cell_centers
from fd3d_projects.BEVFormer.bevformer.spatial_cross_attention import SpatialCrossAttention, project_pillars
from tests.conftest import PC_RANGE

IMAGE_SIZE = (112, 200)
LEVEL_SHAPES = [(14, 25), (7, 13)]
DIMS, HEADS, POINTS, NUM_Z = 16, 2, 4, 2


def real_lidar2img(dataroot) -> torch.Tensor:
    dataset = NuScenesDataset(dataroot, "v1.0-mini", "mini_val", IMAGE_SIZE, PC_RANGE)
    return dataset[0]["lidar2img"][None].double()  # (1, Ncam, 4, 4)


def pillars(bev: int) -> torch.Tensor:
    centers = bev_cell_centers(bev, bev, (PC_RANGE[0], PC_RANGE[1], PC_RANGE[3], PC_RANGE[4]))
    heights = torch.tensor([-1.5, 0.5])
    flat = centers.flatten(0, 1)
    return torch.cat(
        [flat[:, None].expand(-1, NUM_Z, 2), heights.view(1, NUM_Z, 1).expand(len(flat), -1, 1)], -1
    )


def test_projection_matches_lidar2img_by_hand(mini_dataroot):
    lidar2img = real_lidar2img(mini_dataroot)
    points = pillars(6).double()
    uv, hit = project_pillars(points, lidar2img, IMAGE_SIZE)
    for cam in range(6):
        for cell in (0, 7, 20):
            for z in range(NUM_Z):
                p = torch.cat([points[cell, z], torch.ones(1, dtype=torch.float64)])
                u, v, depth = (lidar2img[0, cam] @ p)[:3].tolist()
                expected_hit = (
                    depth > 1e-5 and 0 < u / depth < IMAGE_SIZE[1] and 0 < v / depth < IMAGE_SIZE[0]
                )
                assert bool(hit[0, cam, cell, z]) == expected_hit
                if depth > 1e-5:
                    got = uv[0, cam, cell, z].tolist()
                    assert abs(got[0] - u / depth / IMAGE_SIZE[1]) < 1e-9
                    assert abs(got[1] - v / depth / IMAGE_SIZE[0]) < 1e-9


def make_inputs(lidar2img: torch.Tensor, bev: int):
    torch.manual_seed(0)
    cams = lidar2img.shape[1]
    uv, hit = project_pillars(pillars(bev).double(), lidar2img, IMAGE_SIZE)
    total = sum(h * w for h, w in LEVEL_SHAPES)
    value = torch.randn(cams, total, DIMS, dtype=torch.float64, requires_grad=True)
    query = torch.randn(1, bev * bev, DIMS, dtype=torch.float64)
    query_pos = torch.randn(1, bev * bev, DIMS, dtype=torch.float64)
    sca = SpatialCrossAttention(DIMS, HEADS, len(LEVEL_SHAPES), POINTS, NUM_Z).double()
    with torch.no_grad():  # non-trivial offsets and weights
        sca.sampling_offsets.weight.normal_(0, 0.05)
        sca.attention_weights.weight.normal_(0, 0.05)
    return sca, query, query_pos, value, torch.tensor(LEVEL_SHAPES), uv, hit


def naive_sca(sca, query, query_pos, value, shapes, uv, hit):
    """Every cell attends in every camera; results are averaged over the cameras it hits."""
    cams, cells = hit.shape[1], hit.shape[2]
    levels, heads, dims = len(shapes), HEADS, DIMS
    q = query[0] + query_pos[0]
    offsets = sca.sampling_offsets(q).view(cells, heads, levels, POINTS // NUM_Z, NUM_Z, 2)
    weights = sca.attention_weights(q).view(cells, heads, levels * POINTS).softmax(-1)
    weights = weights.view(1, cells, heads, levels, POINTS)
    projected = sca.value_proj(value).view(cams, -1, heads, dims // heads)
    total = torch.zeros(cells, dims, dtype=query.dtype)
    for cam in range(cams):
        normalizer = shapes.flip(-1).to(q.dtype).view(1, 1, levels, 1, 1, 2)
        loc = (uv[0, cam][:, None, None, None] + offsets / normalizer).flatten(3, 4)
        out = multi_scale_deformable_attention(projected[cam : cam + 1], shapes, loc[None], weights)[0]
        total += out * hit[0, cam].any(-1)[:, None]
    count = hit[0].any(-1).sum(0).clamp(min=1)[:, None]
    return sca.output_proj(total / count)


def test_rebatched_attention_equals_naive_loop(mini_dataroot):
    sca, query, query_pos, value, shapes, uv, hit = make_inputs(real_lidar2img(mini_dataroot), bev=10)
    got = sca(query, query_pos, value, shapes, uv, hit)[0]
    expected = naive_sca(sca, query, query_pos, value, shapes, uv, hit)
    torch.testing.assert_close(got, expected, atol=1e-10, rtol=0)


def test_point_seen_by_one_camera_samples_only_that_camera(mini_dataroot):
    sca, query, query_pos, value, shapes, uv, hit = make_inputs(real_lidar2img(mini_dataroot), bev=10)
    cams_per_cell = hit[0].any(-1)  # (Ncam, HW)
    single = (cams_per_cell.sum(0) == 1).nonzero()[:, 0]
    assert len(single) > 0
    cell = int(single[0])
    seen_by = int(cams_per_cell[:, cell].nonzero()[0, 0])
    out = sca(query, query_pos, value, shapes, uv, hit)
    (grad,) = torch.autograd.grad(out[0, cell].sum(), value)
    per_camera = grad.abs().sum((1, 2))
    assert per_camera[seen_by] > 0
    others = [c for c in range(value.shape[0]) if c != seen_by]
    assert per_camera[others].abs().max() == 0
    # a cell that projects into no camera gets no update from any
    unseen = (cams_per_cell.sum(0) == 0).nonzero()[:, 0]
    if len(unseen):
        torch.testing.assert_close(out[0, int(unseen[0])], sca.output_proj.bias)
