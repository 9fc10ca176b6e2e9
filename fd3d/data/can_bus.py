"""The 18-value CAN-bus vector of the official BEVFormer, built from the ego pose, and its per-frame deltas.

Layout (official `CustomNuScenesDataset.get_data_info`): `[0:3]` ego->global translation (m), `[3:7]`
ego->global rotation quaternion (w, x, y, z), `[7:16]` acceleration, rotation rate and velocity from the
nuScenes CAN-bus expansion, `[16]` ego yaw (rad, in [0, 2pi)), `[17]` the same yaw in degrees.

fd3d rows carry no CAN-bus expansion, so `[7:16]` are zeros here. The official test loop then rewrites
`[0:3]` and `[17]` into the change since the previous frame of the scene (`relative_can_bus`); the other
entries, the absolute yaw in radians included, stay as they are.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from fd3d.data.geometry import matrix_to_quaternion

CAN_BUS_SIZE = 18
POSITION = slice(0, 3)
QUATERNION = slice(3, 7)
YAW_RAD, YAW_DEG = 16, 17


def can_bus_from_pose(ego2global: np.ndarray) -> np.ndarray:
    """(18,) float64 CAN-bus vector of a 4x4 ego->global pose (zeros where the expansion would be read).

    The quaternion's sign is chosen with w >= 0 (a matrix does not carry it). The yaw is nuScenes'
    `quaternion_yaw` (the angle of the rotated x axis), moved into [0, 360) degrees as the official code does.
    """
    pose = np.asarray(ego2global, dtype=np.float64)
    if pose.shape != (4, 4):
        raise ValueError(f"ego2global must be a 4x4 matrix, got shape {pose.shape}")
    quaternion = np.asarray(matrix_to_quaternion(pose[:3, :3]))
    if quaternion[0] < 0:
        quaternion = -quaternion
    yaw_deg = math.atan2(pose[1, 0], pose[0, 0]) / math.pi * 180
    if yaw_deg < 0:
        yaw_deg += 360
    can_bus = np.zeros(CAN_BUS_SIZE, dtype=np.float64)
    can_bus[POSITION] = pose[:3, 3]
    can_bus[QUATERNION] = quaternion
    can_bus[YAW_RAD] = yaw_deg / 180 * math.pi
    can_bus[YAW_DEG] = yaw_deg
    return can_bus


def host_can_bus(can_bus: np.ndarray, prev_can_bus: np.ndarray | None) -> np.ndarray:
    """What a deployment host feeds a CAN-bus graph: the (18,) absolute vector of this frame with position
    and yaw (deg) turned into the change since `prev_can_bus` (the previous frame of the scene), or zeroed
    where there is none (a scene's first frame). `relative_can_bus` for one frame, in float64 numpy."""
    relative = np.asarray(can_bus, dtype=np.float64).copy()
    changing = [0, 1, 2, YAW_DEG]
    previous = relative if prev_can_bus is None else np.asarray(prev_can_bus, dtype=np.float64)
    relative[changing] = relative[changing] - previous[changing]
    return relative


def relative_can_bus(can_bus: Tensor, prev_can_bus: Tensor | None, has_prev: Tensor) -> Tensor:
    """What the official model sees: (B, 18) absolute vectors -> position and yaw (deg) since the last frame.

    Where `has_prev` (B,) is False (a scene's first frame, or no previous frame given) the position and the
    yaw in degrees become 0. The yaw difference is not wrapped (359 deg -> 1 deg gives -358), as officially.
    """
    if can_bus.dim() != 2 or can_bus.shape[-1] != CAN_BUS_SIZE:
        raise ValueError(f"can_bus must be (B, {CAN_BUS_SIZE}), got {tuple(can_bus.shape)}")
    moved = has_prev.to(device=can_bus.device, dtype=torch.bool).view(-1, 1)
    previous = torch.zeros_like(can_bus) if prev_can_bus is None else prev_can_bus.to(can_bus)
    relative = can_bus.clone()
    changing = [0, 1, 2, YAW_DEG]
    delta = can_bus[:, changing] - previous[:, changing]
    relative[:, changing] = torch.where(moved, delta, torch.zeros_like(delta))
    return relative
