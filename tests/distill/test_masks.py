"""BEV / PV focal masks (Eq. 3-4) against hand-listed cells, and the selective random mask (Eq. 5-6)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from fd3d.data.geometry import box_corners
from fd3d.distill.masks import bev_box_mask, box_corners_lidar, pv_box_mask, selective_random_mask


def _cells(rows, cols, shape) -> torch.Tensor:
    expected = torch.zeros(shape, dtype=torch.bool)
    for r in rows:
        for c in cols:
            expected[r, c] = True
    return expected


def _box(x, y, z, w, length, h, yaw=0.0) -> list[float]:
    return [x, y, z, w, length, h, yaw, 0.0, 0.0]


def test_corners_match_data_geometry():
    box = _box(1.0, -2.0, 0.5, 1.8, 4.2, 1.6, 0.7)
    ours = box_corners_lidar(torch.tensor([box], dtype=torch.float64))[0].numpy()
    reference = box_corners(np.array(box[:3]), np.array(box[3:6]), box[6])
    np.testing.assert_allclose(ours, reference, atol=1e-12)


def test_bev_axis_aligned_box():
    # l = 4 along x, w = 2 along y, centred at (3, 4): x in [1, 5], y in [3, 5]; 1 m cells centred at k + 0.5
    mask = bev_box_mask(torch.tensor([_box(3.0, 4.0, 0.0, 2.0, 4.0, 1.0)]), 8, 8, (0.0, 0.0, 8.0, 8.0))
    assert torch.equal(mask, _cells([3, 4], [1, 2, 3, 4], (8, 8)))


def test_bev_rotated_90_degrees_swaps_rows_and_columns():
    # heading along +y: length spans y in [2, 6], width spans x in [2, 4]
    mask = bev_box_mask(
        torch.tensor([_box(3.0, 4.0, 0.0, 2.0, 4.0, 1.0, math.pi / 2)]), 8, 8, (0.0, 0.0, 8.0, 8.0)
    )
    assert torch.equal(mask, _cells([2, 3, 4, 5], [2, 3], (8, 8)))


def _inside_convex(point, polygon) -> bool:
    """Point inside a counter-clockwise convex polygon: left of (or on) every edge."""
    for (ax, ay), (bx, by) in zip(polygon, polygon[1:] + polygon[:1], strict=True):
        if (bx - ax) * (point[1] - ay) - (by - ay) * (point[0] - ax) < 0:
            return False
    return True


def test_bev_45_degree_box_matches_naive_point_in_polygon():
    x, y, w, length, yaw = 4.2, 3.7, 1.5, 5.0, math.pi / 4
    extent, size = (0.0, 0.0, 8.0, 8.0), 16
    c, s = math.cos(yaw), math.sin(yaw)
    local = [(length / 2, w / 2), (-length / 2, w / 2), (-length / 2, -w / 2), (length / 2, -w / 2)]
    polygon = [(x + c * u - s * v, y + s * u + c * v) for u, v in local]  # counter-clockwise
    expected = torch.zeros(size, size, dtype=torch.bool)
    for row in range(size):
        for col in range(size):
            expected[row, col] = _inside_convex(((col + 0.5) * 0.5, (row + 0.5) * 0.5), polygon)
    mask = bev_box_mask(torch.tensor([_box(x, y, 0.0, w, length, 1.0, yaw)]), size, size, extent)
    assert expected.sum() > 10
    assert torch.equal(mask, expected)


def test_bev_union_and_tiny_boxes_mark_their_centre_cell():
    boxes = torch.tensor(
        [
            _box(2.3, 5.6, 0.0, 0.1, 0.1, 0.5),  # smaller than a cell: only the cell holding (2.3, 5.6)
            _box(-1.0, 0.2, 0.0, 0.2, 0.2, 0.5),  # off the grid: nothing
        ]
    )
    mask = bev_box_mask(boxes, 8, 8, (0.0, 0.0, 8.0, 8.0))
    assert torch.equal(mask, _cells([5], [2], (8, 8)))
    # extent (-4, -4, 4, 4): (2.3, 5.6) is now off the grid; (-1, 0.2) lies in column floor(3.0) = 3, row
    # floor(4.2) = 4
    shifted = bev_box_mask(boxes, 8, 8, (-4.0, -4.0, 4.0, 4.0))
    assert torch.equal(shifted, _cells([4], [3], (8, 8)))
    assert bev_box_mask(torch.zeros(0, 9), 4, 4, (0.0, 0.0, 1.0, 1.0)).sum() == 0


def _pinhole(forward: float) -> torch.Tensor:
    """lidar2img of a camera at the origin looking along forward * x: fx = fy = 100, cx = 100, cy = 50."""
    # camera x = right, y = down, z = forward. Looking along +x, right is -y; looking along -x, right is +y.
    lidar2cam = torch.tensor(
        [[0.0, -forward, 0.0, 0.0], [0.0, 0.0, -1.0, 0.0], [forward, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]],
        dtype=torch.float64,
    )
    intrinsics = torch.tensor(
        [[100.0, 0.0, 100.0, 0.0], [0.0, 100.0, 50.0, 0.0], [0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]],
        dtype=torch.float64,
    )
    return intrinsics @ lidar2cam


IMAGE, FEATURE = (100, 200), (25, 50)  # 4 x 4 pixel cells, cell (r, c) centred at (4c + 2, 4r + 2)


def test_pv_box_in_front_of_one_camera():
    # near face x = 9: u = 100 -+ 100/9 -> [88.9, 111.1], v = 50 -+ 100/9 -> [38.9, 61.1] (far face is inside)
    # columns with 4c + 2 in [88.9, 111.1]: 22..27; rows with 4r + 2 in [38.9, 61.1]: 10..14
    boxes = torch.tensor([_box(10.0, 0.0, 0.0, 2.0, 2.0, 2.0)], dtype=torch.float64)
    mask = pv_box_mask(boxes, _pinhole(1.0)[None], IMAGE, FEATURE)
    assert mask.shape == (1, *FEATURE)
    assert torch.equal(mask[0], _cells(range(10, 15), range(22, 28), FEATURE))


def test_pv_two_cameras_each_see_their_own_box():
    # box B at x = -5 for the backward camera: near face at depth 4 -> u in [75, 125], v in [25, 75]
    # columns 4c + 2 in [75, 125]: 19..30; rows 4r + 2 in [25, 75]: 6..18
    boxes = torch.tensor(
        [_box(10.0, 0.0, 0.0, 2.0, 2.0, 2.0), _box(-5.0, 0.0, 0.0, 2.0, 2.0, 2.0, 0.0)], dtype=torch.float64
    )
    lidar2img = torch.stack([_pinhole(1.0), _pinhole(-1.0)])
    mask = pv_box_mask(boxes, lidar2img, IMAGE, FEATURE)
    assert torch.equal(mask[0], _cells(range(10, 15), range(22, 28), FEATURE))
    assert torch.equal(mask[1], _cells(range(6, 19), range(19, 31), FEATURE))


def test_pv_box_behind_or_beside_marks_nothing():
    boxes = torch.tensor([_box(-10.0, 0.0, 0.0, 2.0, 2.0, 2.0), _box(10.0, 30.0, 0.0, 2.0, 2.0, 2.0)])
    assert pv_box_mask(boxes, _pinhole(1.0)[None].float(), IMAGE, FEATURE).sum() == 0


def test_pv_partly_behind_uses_visible_corners_clipped_to_image():
    # corners at x = -0.5 are dropped; those at x = 1.5 give u = 100 -+ 66.7 -> [33.3, 166.7] and
    # v = 50 -+ 66.7 -> [-16.7, 116.7], clipped to [0, 100]: columns 8..41, every row
    boxes = torch.tensor([_box(0.5, 0.0, 0.0, 2.0, 2.0, 2.0)], dtype=torch.float64)
    mask = pv_box_mask(boxes, _pinhole(1.0)[None], IMAGE, FEATURE)
    assert torch.equal(mask[0], _cells(range(25), range(8, 42), FEATURE))


def test_pv_tiny_box_marks_its_centre_cell():
    # projects to about 0.1 px around (100, 50): no cell centre inside; the centre lies in cell (12, 25)
    boxes = torch.tensor([_box(10.0, 0.0, 0.0, 0.01, 0.01, 0.01)], dtype=torch.float64)
    mask = pv_box_mask(boxes, _pinhole(1.0)[None], IMAGE, FEATURE)
    assert torch.equal(mask[0], _cells([12], [25], FEATURE))


def test_selective_random_mask_masks_only_inside_focal():
    focal = torch.zeros(200, 200, dtype=torch.bool)
    focal[50:150, 20:180] = True
    mask = selective_random_mask(focal, 0.5, torch.Generator().manual_seed(0))
    assert mask.dtype == torch.float32
    assert torch.all(mask[~focal] == 1.0)
    assert set(mask.unique().tolist()) == {0.0, 1.0}
    assert (mask[focal] == 0).float().mean().item() == pytest.approx(0.5, abs=0.02)
    again = selective_random_mask(focal, 0.5, torch.Generator().manual_seed(0))
    assert torch.equal(mask, again)


def test_selective_random_mask_extremes_and_batch_dims():
    focal = torch.rand(2, 3, 30, 40, generator=torch.Generator().manual_seed(1)) > 0.5
    assert torch.all(selective_random_mask(focal, 0.0) == 1.0)
    assert torch.equal(selective_random_mask(focal, 1.0), (~focal).float())
    everywhere = selective_random_mask(
        torch.ones(100, 100, dtype=torch.bool), 0.65, torch.Generator().manual_seed(2)
    )
    assert (everywhere == 0).float().mean().item() == pytest.approx(0.65, abs=0.02)
    with pytest.raises(ValueError, match="1.5"):
        selective_random_mask(focal, 1.5)
