"""Rigid transforms in the nuScenes conventions (quaternions as [w, x, y, z], 4x4 homogeneous matrices)."""

from __future__ import annotations

import numpy as np
from pyquaternion import Quaternion


def yaw_to_quaternion(yaw: float) -> list[float]:
    """Quaternion [w, x, y, z] of a rotation by `yaw` radians about +z."""
    return [float(np.cos(yaw / 2)), 0.0, 0.0, float(np.sin(yaw / 2))]


def rotation_z(yaw: float) -> np.ndarray:
    """3x3 rotation by `yaw` radians about +z."""
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def pose_matrix(translation, rotation_wxyz) -> np.ndarray:
    """4x4 matrix mapping points of a child frame into its parent (nuScenes translation + rotation)."""
    matrix = np.eye(4)
    matrix[:3, :3] = Quaternion(rotation_wxyz).rotation_matrix
    matrix[:3, 3] = np.asarray(translation, dtype=np.float64)
    return matrix


def matrix_to_quaternion(rotation: np.ndarray) -> list[float]:
    """[w, x, y, z] of a 3x3 rotation matrix (tolerant to float round-off)."""
    return list(Quaternion(matrix=rotation, rtol=1e-6, atol=1e-6).elements)


def transform_points(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a 4x4 transform to points (N, 3)."""
    return points @ matrix[:3, :3].T + matrix[:3, 3]


def camera_to_ego_rotation(yaw: float) -> np.ndarray:
    """Rotation of a level camera (x right, y down, z forward) looking along `yaw` in the ego frame."""
    forward = np.array([np.cos(yaw), np.sin(yaw), 0.0])
    right = np.array([np.sin(yaw), -np.cos(yaw), 0.0])
    down = np.array([0.0, 0.0, -1.0])
    return np.stack([right, down, forward], axis=1)


def box_corners(center: np.ndarray, size_wlh: np.ndarray, yaw: float) -> np.ndarray:
    """The 8 corners (8, 3) of a box whose length runs along its heading `yaw` (nuScenes Box layout)."""
    w, length, h = size_wlh
    x = np.array([1, 1, 1, 1, -1, -1, -1, -1]) * length / 2
    y = np.array([1, -1, -1, 1, 1, -1, -1, 1]) * w / 2
    z = np.array([1, 1, -1, -1, 1, 1, -1, -1]) * h / 2
    local = np.stack([x, y, z], axis=1)
    return local @ rotation_z(yaw).T + np.asarray(center)
