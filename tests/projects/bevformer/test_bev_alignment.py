"""Temporal alignment: a BEV seen from a moved ego realigns onto the world it shows."""

from __future__ import annotations

import math

import pytest
import torch

from fd3d_projects.BEVFormer.bevformer.bev_alignment import align_previous_bev, bev_cell_centers

EXTENT = (-4.0, -4.0, 4.0, 4.0)  # 8 x 8 cells of 1 m


def world_feature(xy: torch.Tensor) -> torch.Tensor:
    """(..., 2) world points -> (2, ...) an asymmetric smooth pattern, so any misalignment shows."""
    x, y = xy.unbind(-1)
    return torch.stack([x + 0.1 * y**2, torch.sin(0.5 * x) * y])


def pose(yaw: float, tx: float, ty: float) -> torch.Tensor:
    c, s = math.cos(yaw), math.sin(yaw)
    matrix = torch.eye(4)
    matrix[:2, :2] = torch.tensor([[c, -s], [s, c]])
    matrix[:2, 3] = torch.tensor([tx, ty])
    return matrix


@pytest.mark.parametrize(
    "yaw, tx, ty", [(0.0, 2.0, 0.0), (0.0, -1.0, 3.0), (math.pi / 2, 0.0, 0.0), (math.pi / 2, 1.0, -2.0)]
)
def test_shifted_bev_realigns_onto_the_world(yaw, tx, ty):
    centers = bev_cell_centers(8, 8, EXTENT)  # (H, W, 2)
    # previous LiDAR frame = world; current frame = world moved by (yaw, tx, ty); curr2prev = that pose
    curr2prev = pose(yaw, tx, ty)
    prev_bev = world_feature(centers)[None]  # (1, 2, H, W)
    aligned = align_previous_bev(prev_bev, curr2prev[None], EXTENT)[0]

    homogeneous = torch.cat([centers, torch.zeros(8, 8, 1), torch.ones(8, 8, 1)], -1)
    in_world = (homogeneous @ curr2prev.T)[..., :2]
    expected = world_feature(in_world)
    inside = ((in_world > -4) & (in_world < 4)).all(-1)
    assert inside.sum() >= 32  # the test covers a real overlap
    torch.testing.assert_close(aligned[:, inside], expected[:, inside], atol=1e-5, rtol=0)
    # cells coming from outside the old map read zeros
    assert torch.count_nonzero(aligned[:, ~inside]) == 0


def test_identity_motion_is_a_no_op_and_inverse_motion_is_not():
    centers = bev_cell_centers(8, 8, EXTENT)
    prev_bev = world_feature(centers)[None]
    same = align_previous_bev(prev_bev, torch.eye(4)[None], EXTENT)
    torch.testing.assert_close(same, prev_bev, atol=1e-5, rtol=0)
    forward = align_previous_bev(prev_bev, pose(0.0, 1.0, 0.0)[None], EXTENT)
    backward = align_previous_bev(prev_bev, pose(0.0, -1.0, 0.0)[None], EXTENT)
    # moving ego +1 m in x: current column j sees what the old column j + 1 held
    torch.testing.assert_close(forward[..., :-1], prev_bev[..., 1:])
    assert not torch.allclose(forward, backward)


def test_cell_centres_follow_rows_along_y():
    centers = bev_cell_centers(2, 4, (0.0, 0.0, 4.0, 2.0))
    assert centers[0, 0].tolist() == [0.5, 0.5]
    assert centers[0, 3].tolist() == [3.5, 0.5]  # columns run along x
    assert centers[1, 0].tolist() == [0.5, 1.5]  # rows run along y
