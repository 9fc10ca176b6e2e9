"""A model-ready batch built from the nuScenes rig alone, for FLOP counting and speed benchmarks.

Counting FLOPs of BEVFormer in the reference code needs hand-made image metadata; here the rig's real
camera geometry (`fd3d.data.rig`) gives `lidar2img`, so spatial cross-attention hits the cameras it
would on real data and the count reflects real work.
"""

from __future__ import annotations

import numpy as np
import torch

from fd3d.data.can_bus import can_bus_from_pose
from fd3d.data.geometry import pose_matrix
from fd3d.data.rig import CAMERA_MOUNTS, LIDAR_ROTATION_WXYZ, LIDAR_TRANSLATION


def rig_lidar2img(height: int, width: int) -> np.ndarray:
    """(Ncam, 4, 4) K · cam<-ego · ego<-lidar of the rig for (height, width) images."""
    lidar2ego = pose_matrix(LIDAR_TRANSLATION, LIDAR_ROTATION_WXYZ)
    matrices = []
    for mount in CAMERA_MOUNTS:
        cam2ego = pose_matrix(mount.translation, mount.rotation_wxyz())
        viewpad = np.eye(4)
        viewpad[:3, :3] = mount.intrinsic(height, width)
        matrices.append(viewpad @ np.linalg.inv(cam2ego) @ lidar2ego)
    return np.stack(matrices)


def example_batch(
    image_size: tuple[int, int], batch_size: int = 1, queue_length: int = 0, seed: int = 0
) -> dict:
    """Random uint8 images of the rig's 6 cameras, standing ego, no ground truth; queue frames alike."""
    height, width = image_size
    generator = torch.Generator().manual_seed(seed)
    lidar2img = torch.from_numpy(rig_lidar2img(height, width)).float()
    can_bus = torch.from_numpy(can_bus_from_pose(np.eye(4))).float()  # standing at the global origin

    def frame(prev_exists: bool) -> dict:
        images = torch.randint(
            0, 256, (batch_size, len(CAMERA_MOUNTS), 3, height, width), generator=generator, dtype=torch.uint8
        )
        return {
            "images": images,
            "lidar2img": lidar2img.expand(batch_size, -1, -1, -1).clone(),
            "curr2prev_lidar": torch.eye(4).expand(batch_size, -1, -1).clone(),
            "prev_exists": torch.full((batch_size,), prev_exists),
            "can_bus": can_bus.expand(batch_size, -1).clone(),
            "gt_boxes": [torch.zeros(0, 9) for _ in range(batch_size)],
            "gt_labels": [torch.zeros(0, dtype=torch.long) for _ in range(batch_size)],
        }

    batch = frame(prev_exists=queue_length > 0)
    if queue_length:
        batch["queue"] = [frame(prev_exists=index > 0) for index in range(queue_length)]
    return batch
