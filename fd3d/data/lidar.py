"""A 32-beam spinning lidar (HDL-32E-like, as on the nuScenes car) simulated with the same ray caster.

`num_lidar_pts` of every annotation is the number of returns that really hit that box first, which is
what the official evaluator uses to drop invisible ground truth.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fd3d.data.raycast import intersect_ground, nearest_box_hits

BEAM_ELEVATIONS_DEG = np.linspace(-30.67, 10.67, 32)
AZIMUTH_STEPS = 1080
MAX_RANGE_M = 70.0


@dataclass
class LidarScan:
    points_lidar: np.ndarray  # (P, 5) float32: x, y, z, intensity, ring index (lidar frame)
    points_per_box: np.ndarray  # (B,) first returns on each box
    visible_fraction: np.ndarray  # (B,) first returns / rays crossing the box within range


def _beam_directions() -> tuple[np.ndarray, np.ndarray]:
    elevation = np.deg2rad(BEAM_ELEVATIONS_DEG)[:, None]
    azimuth = np.linspace(-np.pi, np.pi, AZIMUTH_STEPS, endpoint=False)[None, :]
    directions = np.stack(
        np.broadcast_arrays(np.cos(elevation) * np.cos(azimuth), np.cos(elevation) * np.sin(azimuth), np.sin(elevation)),
        axis=-1,
    ).reshape(-1, 3)
    rings = np.repeat(np.arange(len(BEAM_ELEVATIONS_DEG)), AZIMUTH_STEPS)
    return directions, rings


def scan(lidar2global: np.ndarray, centers: np.ndarray, sizes_wlh: np.ndarray, yaws: np.ndarray) -> LidarScan:
    """One sweep from a lidar at pose `lidar2global` over boxes given in the global frame."""
    directions_lidar, rings = _beam_directions()
    directions = directions_lidar @ lidar2global[:3, :3].T
    origins = np.broadcast_to(lidar2global[:3, 3], directions.shape)
    in_reach = np.linalg.norm(centers[:, :2] - lidar2global[:2, 3], axis=1) < MAX_RANGE_M + 10.0
    reach_index = np.flatnonzero(in_reach)
    box_distance, box_local_index, crossings = nearest_box_hits(
        origins, directions, centers[in_reach], sizes_wlh[in_reach], yaws[in_reach], MAX_RANGE_M
    )
    ground_distance = intersect_ground(origins, directions)
    on_box = (box_distance < ground_distance) & (box_distance <= MAX_RANGE_M)
    distance = np.where(on_box, box_distance, ground_distance)
    returned = distance <= MAX_RANGE_M

    points_per_box = np.zeros(len(centers), dtype=np.int64)
    counts = np.bincount(box_local_index[on_box], minlength=len(reach_index))
    points_per_box[reach_index] = counts
    visible_fraction = np.zeros(len(centers))
    visible_fraction[reach_index] = np.divide(counts, crossings, out=np.zeros(len(counts)), where=crossings > 0)

    xyz = directions_lidar[returned] * distance[returned, None]
    intensity = np.where(on_box[returned], 60.0, 8.0)
    points = np.concatenate([xyz, intensity[:, None], rings[returned, None]], axis=1).astype(np.float32)
    return LidarScan(points_lidar=points, points_per_box=points_per_box, visible_fraction=visible_fraction)


def visibility_token(fraction: float) -> str:
    """nuScenes visibility bins: '1' 0-40 %, '2' 40-60 %, '3' 60-80 %, '4' 80-100 %."""
    return str(1 + int(np.searchsorted([0.4, 0.6, 0.8], fraction, side="right")))
