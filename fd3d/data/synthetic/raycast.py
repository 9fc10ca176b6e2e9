"""Ray casting against yaw-rotated 3D boxes and the ground plane.

The synthetic camera images and the synthetic lidar both come from this one caster, so that pixels,
lidar points, occlusion and `num_lidar_pts` are mutually consistent.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fd3d.data.geometry import rotation_z


@dataclass
class BoxHits:
    """Where rays (R,) enter one box: `distance` is inf for a miss; `axis` 0/1/2 = the face's local x/y/z,
    `sign` ±1 its side; `local` (R, 3) the hit point in box coordinates divided by the half-size."""

    distance: np.ndarray
    axis: np.ndarray
    sign: np.ndarray
    local: np.ndarray


def intersect_box(
    origins: np.ndarray, directions: np.ndarray, center: np.ndarray, size_wlh: np.ndarray, yaw: float
) -> BoxHits:
    """Slab test of rays (R, 3) against one box (length along the heading, like a nuScenes Box)."""
    to_local = rotation_z(-yaw)
    o = (origins - center) @ to_local.T
    d = directions @ to_local.T
    half = np.array([size_wlh[1], size_wlh[0], size_wlh[2]]) / 2.0
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = 1.0 / d
        t1 = (-half - o) * inv
        t2 = (half - o) * inv
    t_low = np.where(np.isnan(t1), -np.inf, np.minimum(t1, t2))
    t_high = np.where(np.isnan(t2), np.inf, np.maximum(t1, t2))
    axis = np.argmax(t_low, axis=1)
    t_enter = np.take_along_axis(t_low, axis[:, None], axis=1)[:, 0]
    t_exit = t_high.min(axis=1)
    hit = (t_enter <= t_exit) & (t_enter > 1e-6)
    distance = np.where(hit, t_enter, np.inf)
    sign = -np.sign(np.take_along_axis(d, axis[:, None], axis=1)[:, 0])
    local = (o + np.where(hit, t_enter, 0.0)[:, None] * d) / half
    return BoxHits(distance=distance, axis=axis, sign=sign, local=local)


def intersect_ground(origins: np.ndarray, directions: np.ndarray, ground_z: float = 0.0) -> np.ndarray:
    """Distance along each ray to the plane z = ground_z (inf where the ray does not go down to it)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (ground_z - origins[:, 2]) / directions[:, 2]
    return np.where((directions[:, 2] < -1e-9) & (t > 0), t, np.inf)
