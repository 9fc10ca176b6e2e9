"""A 32-beam spinning lidar (HDL-32E-like, as on the nuScenes car) simulated with the same ray caster.

`num_lidar_pts` of every annotation is the number of returns that really hit that box first, which is
what the official evaluator uses to drop invisible ground truth.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from fd3d.data.geometry import box_corners, transform_points
from fd3d.data.synthetic.raycast import intersect_box, intersect_ground

BEAM_ELEVATIONS_DEG = np.linspace(-30.67, 10.67, 32)
AZIMUTH_STEPS = 1080
MAX_RANGE_M = 70.0


@dataclass
class LidarScan:
    points_lidar: np.ndarray  # (P, 5) float32: x, y, z, intensity, ring index (lidar frame)
    points_per_box: np.ndarray  # (B,) first returns on each box
    visible_fraction: np.ndarray  # (B,) first returns / rays crossing the box within range


@functools.cache
def _beam_directions() -> tuple[np.ndarray, np.ndarray]:
    """Unit ray directions (lidar frame) and ring index of every beam of a sweep; the same every sweep."""
    elevation = np.deg2rad(BEAM_ELEVATIONS_DEG)[:, None]
    azimuth = np.linspace(-np.pi, np.pi, AZIMUTH_STEPS, endpoint=False)[None, :]
    directions = np.stack(
        np.broadcast_arrays(
            np.cos(elevation) * np.cos(azimuth), np.cos(elevation) * np.sin(azimuth), np.sin(elevation)
        ),
        axis=-1,
    ).reshape(-1, 3)
    rings = np.repeat(np.arange(len(BEAM_ELEVATIONS_DEG)), AZIMUTH_STEPS)
    directions.flags.writeable = rings.flags.writeable = False  # shared by every sweep
    return directions, rings


def _azimuth_columns(corners_lidar: np.ndarray) -> np.ndarray:
    """Azimuth columns (indices into the sweep) whose rays can reach a box with these corners."""
    angles = np.arctan2(corners_lidar[:, 1], corners_lidar[:, 0])
    middle = np.arctan2(np.sin(angles).mean(), np.cos(angles).mean())
    relative = np.angle(np.exp(1j * (angles - middle)))
    step = 2 * np.pi / AZIMUTH_STEPS
    first = int(np.floor((middle + relative.min() + np.pi) / step)) - 1
    last = int(np.ceil((middle + relative.max() + np.pi) / step)) + 1
    return np.arange(first, last + 1) % AZIMUTH_STEPS


def scan(lidar2global: np.ndarray, centers: np.ndarray, sizes_wlh: np.ndarray, yaws: np.ndarray) -> LidarScan:
    """One sweep from a lidar at pose `lidar2global` over boxes given in the global frame.

    Each box is tested only against the azimuth columns it spans, which keeps a sweep cheap.
    """
    directions_lidar, rings = _beam_directions()
    directions = directions_lidar @ lidar2global[:3, :3].T
    origins = np.broadcast_to(lidar2global[:3, 3], directions.shape)
    global2lidar = np.linalg.inv(lidar2global)
    box_distance = np.full(len(directions), np.inf)
    box_index = np.full(len(directions), -1, dtype=np.int64)
    crossings = np.zeros(len(centers), dtype=np.int64)
    for i in range(len(centers)):
        corners = transform_points(global2lidar, box_corners(centers[i], sizes_wlh[i], yaws[i]))
        if np.min(np.linalg.norm(corners[:, :2], axis=1)) > MAX_RANGE_M:
            continue
        columns = _azimuth_columns(corners)
        rays = (np.arange(len(BEAM_ELEVATIONS_DEG))[:, None] * AZIMUTH_STEPS + columns[None, :]).ravel()
        hits = intersect_box(origins[rays], directions[rays], centers[i], sizes_wlh[i], yaws[i])
        crossings[i] = int((hits.distance <= MAX_RANGE_M).sum())
        closer = hits.distance < box_distance[rays]
        box_distance[rays[closer]] = hits.distance[closer]
        box_index[rays[closer]] = i

    ground_distance = intersect_ground(origins, directions)
    on_box = (box_distance < ground_distance) & (box_distance <= MAX_RANGE_M)
    distance = np.where(on_box, box_distance, ground_distance)
    returned = distance <= MAX_RANGE_M
    points_per_box = np.bincount(box_index[on_box], minlength=len(centers))
    visible_fraction = np.divide(points_per_box, crossings, out=np.zeros(len(centers)), where=crossings > 0)
    xyz = directions_lidar[returned] * distance[returned, None]
    intensity = np.where(on_box[returned], 60.0, 8.0)
    points = np.concatenate([xyz, intensity[:, None], rings[returned, None]], axis=1).astype(np.float32)
    return LidarScan(points_lidar=points, points_per_box=points_per_box, visible_fraction=visible_fraction)


def visibility_token(fraction: float) -> str:
    """nuScenes visibility bins: '1' 0-40 %, '2' 40-60 %, '3' 60-80 %, '4' 80-100 %."""
    return str(1 + int(np.searchsorted([0.4, 0.6, 0.8], fraction, side="right")))
