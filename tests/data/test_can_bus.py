"""The official BEVFormer's CAN-bus input: built from the ego pose, and its per-frame deltas."""

from __future__ import annotations

import math

import numpy as np
import torch

from fd3d.data.can_bus import can_bus_from_pose, relative_can_bus
from fd3d.data.dataset import NuScenesDataset, collate_samples
from fd3d.data.geometry import pose_matrix, yaw_to_quaternion


def test_pose_fills_translation_quaternion_and_yaw_in_0_to_360():
    yaw = math.radians(-30.0)
    pose = pose_matrix([600.0, 1600.0, 1.5], yaw_to_quaternion(yaw))
    can_bus = can_bus_from_pose(pose)
    np.testing.assert_allclose(can_bus[:3], [600.0, 1600.0, 1.5])
    np.testing.assert_allclose(can_bus[3:7], yaw_to_quaternion(yaw), atol=1e-12)
    assert np.all(can_bus[7:16] == 0)  # no CAN-bus expansion in fd3d rows
    np.testing.assert_allclose(can_bus[16:], [math.radians(330.0), 330.0])
    flipped = can_bus_from_pose(pose_matrix([0, 0, 0], [-w for w in yaw_to_quaternion(2.0)]))
    assert flipped[3] > 0  # q and -q are one rotation: w >= 0 is kept


def test_deltas_follow_the_official_forward_test():
    first = torch.from_numpy(
        can_bus_from_pose(pose_matrix([10.0, 20.0, 0.0], yaw_to_quaternion(math.radians(359))))
    )
    second = torch.from_numpy(
        can_bus_from_pose(pose_matrix([11.0, 22.0, 0.5], yaw_to_quaternion(math.radians(1))))
    )
    current, previous = torch.stack([second, second]), torch.stack([first, first])
    relative = relative_can_bus(current, previous, torch.tensor([True, False]))
    torch.testing.assert_close(relative[0, :3], torch.tensor([1.0, 2.0, 0.5], dtype=torch.float64))
    torch.testing.assert_close(relative[0, 17], torch.tensor(-358.0, dtype=torch.float64))  # not wrapped
    assert torch.equal(relative[:, 3:17], current[:, 3:17])  # quaternion and absolute yaw (rad) untouched
    assert relative[1, [0, 1, 2, 17]].abs().max() == 0  # a scene's first frame: no motion
    alone = relative_can_bus(current[:1], None, torch.tensor([False]))
    assert torch.equal(alone, relative[1:])


def test_the_dataset_gives_every_frame_its_pose_as_can_bus(mini_dataroot):
    dataset = NuScenesDataset(mini_dataroot, "v1.0-mini", "mini_train", (56, 100), queue_length=1)
    batch = collate_samples([dataset[0], dataset[1]])
    assert batch["can_bus"].shape == (2, 18) and batch["queue"][0]["can_bus"].shape == (2, 18)
    ego2global = batch["ego2global"].double()
    torch.testing.assert_close(batch["can_bus"][:, :3].double(), ego2global[:, :3, 3], atol=1e-3, rtol=0)
    for can_bus, pose in zip(batch["can_bus"].double().numpy(), ego2global.numpy(), strict=True):
        rebuilt = pose_matrix(can_bus[:3], can_bus[3:7])
        np.testing.assert_allclose(rebuilt[:3, :3], pose[:3, :3], atol=1e-5)
        assert 0 <= can_bus[16] < 2 * math.pi and math.isclose(
            math.degrees(can_bus[16]), can_bus[17], rel_tol=1e-6
        )
