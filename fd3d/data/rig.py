"""The sensor rig of the synthetic car, modelled on the nuScenes one (positions in metres, ego frame)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fd3d.data.geometry import camera_to_ego_rotation, matrix_to_quaternion, rotation_z

# The order models consume cameras in (the mmdet3d / BEVFormer convention).
CAMERA_NAMES: tuple[str, ...] = (
    "CAM_FRONT",
    "CAM_FRONT_RIGHT",
    "CAM_FRONT_LEFT",
    "CAM_BACK",
    "CAM_BACK_LEFT",
    "CAM_BACK_RIGHT",
)
LIDAR_NAME = "LIDAR_TOP"
REFERENCE_IMAGE_WH = (1600, 900)


@dataclass(frozen=True)
class CameraMount:
    channel: str
    translation: tuple[float, float, float]
    yaw_deg: float
    focal_px: float  # at the 1600x900 reference resolution

    def rotation_wxyz(self) -> list[float]:
        return matrix_to_quaternion(camera_to_ego_rotation(np.deg2rad(self.yaw_deg)))

    def intrinsic(self, height: int, width: int) -> np.ndarray:
        """Pinhole matrix scaled from the 1600x900 reference to a (height, width) image."""
        sx, sy = width / REFERENCE_IMAGE_WH[0], height / REFERENCE_IMAGE_WH[1]
        ref_w, ref_h = REFERENCE_IMAGE_WH
        return np.array(
            [
                [self.focal_px * sx, 0.0, ref_w / 2 * sx],
                [0.0, self.focal_px * sy, ref_h / 2 * sy],
                [0, 0, 1.0],
            ]
        )


CAMERA_MOUNTS: tuple[CameraMount, ...] = (
    CameraMount("CAM_FRONT", (1.70, 0.00, 1.51), 0.0, 1266.0),
    CameraMount("CAM_FRONT_RIGHT", (1.55, -0.49, 1.50), -55.0, 1260.0),
    CameraMount("CAM_FRONT_LEFT", (1.52, 0.49, 1.51), 55.0, 1257.0),
    CameraMount("CAM_BACK", (0.03, 0.00, 1.57), 180.0, 809.0),
    CameraMount("CAM_BACK_LEFT", (1.04, 0.48, 1.56), 110.0, 1256.0),
    CameraMount("CAM_BACK_RIGHT", (1.05, -0.48, 1.55), -110.0, 1259.0),
)

# nuScenes' LIDAR_TOP is mounted with x to the right and y forward: a -90 degree yaw in the ego frame.
LIDAR_TRANSLATION = (0.94, 0.0, 1.84)
LIDAR_ROTATION_WXYZ = matrix_to_quaternion(rotation_z(-np.pi / 2))
