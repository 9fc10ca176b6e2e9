"""The official BEVFormer's temporal alignment: the previous BEV turned with torchvision's `rotate` (to the
bit) about a fixed pixel, and the previous queue's sampling points shifted by the ego translation."""

from __future__ import annotations

import math

import pytest
import torch
from torchvision.transforms.functional import rotate

from fd3d_projects.BEVFormer.bevformer.bev_alignment import can_bus_shift, rotate_bev_nearest

EXTENT = (-51.2, -51.2, 51.2, 51.2)


def test_a_quarter_turn_of_a_hand_tensor_is_torchvisions():
    bev = torch.arange(9.0).view(1, 1, 3, 3)
    turned = rotate_bev_nearest(bev, torch.tensor([90.0]), center=(1.5, 1.5))
    # counter-clockwise as displayed (rows down): the right column becomes the top row
    assert torch.equal(turned[0, 0], torch.tensor([[2.0, 5.0, 8.0], [1.0, 4.0, 7.0], [0.0, 3.0, 6.0]]))
    assert torch.equal(turned[0], rotate(bev[0], 90.0, center=[1.5, 1.5]))


def test_a_centre_off_the_grid_turns_zeros_in_as_officially():
    """[100, 100] is the official default: the ego of a 200x200 BEV, far off a 4x4 one."""
    bev = torch.ones(1, 2, 4, 4)
    turned = rotate_bev_nearest(bev, torch.tensor([30.0]), center=(100.0, 100.0))
    assert torch.equal(turned[0], rotate(bev[0], 30.0, center=[100, 100]))
    assert turned.sum() < bev.sum()


@pytest.mark.parametrize("size", [(20, 20), (7, 12), (50, 50)])
@pytest.mark.parametrize("center", [(100.0, 100.0), (5.0, 3.0), (2.25, 6.5)])
def test_every_sample_turns_by_its_own_angle_bit_for_bit_like_torchvision(size, center):
    generator = torch.Generator().manual_seed(sum(size))
    bev = torch.randn(4, 3, *size, generator=generator)
    angles = torch.tensor([2.0, -358.0, 179.99, 37.123456789], dtype=torch.float64)
    turned = rotate_bev_nearest(bev, angles, center)
    for sample, angle in enumerate(angles.tolist()):
        assert torch.equal(turned[sample], rotate(bev[sample], angle, center=list(center))), angle


def _can_bus(dx: float, dy: float, yaw_deg: float) -> torch.Tensor:
    can_bus = torch.zeros(1, 18, dtype=torch.float64)
    can_bus[0, 0], can_bus[0, 1], can_bus[0, 16] = dx, dy, math.radians(yaw_deg)
    return can_bus


def test_the_shift_is_the_ego_motion_in_the_current_lidar_frame_per_bev_extent():
    # facing global +y (yaw 90 deg): 2 m along +y is straight ahead (LiDAR +y), 2 m along +x is to the right
    ahead = can_bus_shift(_can_bus(0.0, 2.0, 90.0), EXTENT, 20, 20)
    right = can_bus_shift(_can_bus(2.0, 0.0, 90.0), EXTENT, 20, 20)
    torch.testing.assert_close(ahead, torch.tensor([[0.0, 2 / 102.4]], dtype=torch.float64))
    torch.testing.assert_close(right, torch.tensor([[2 / 102.4, 0.0]], dtype=torch.float64))
    # a fraction of the whole extent along each axis: the grid resolution does not matter, its sides do
    bev_angle = math.radians(10.0) - math.atan2(4.0, 3.0)
    expected = torch.tensor(
        [[5 * math.sin(bev_angle) / 80, 5 * math.cos(bev_angle) / 120]], dtype=torch.float64
    )
    for bev_h, bev_w in ((15, 24), (150, 240)):
        shift = can_bus_shift(_can_bus(3.0, 4.0, 10.0), (-40.0, -60.0, 40.0, 60.0), bev_h, bev_w)
        torch.testing.assert_close(shift, expected)
