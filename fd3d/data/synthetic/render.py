"""Camera images of a synthetic scene by exact per-pixel ray casting (a z-buffer over shaded boxes).

What a detector can learn from: class-dependent colours and patterns, Lambert shading that shows the
3D faces, true occlusion, and a textured ground whose grid shrinks and fades with distance.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from fd3d.data.classes import CLASS_SPECS, VEHICLES
from fd3d.data.geometry import box_corners, rotation_z, transform_points
from fd3d.data.synthetic.raycast import intersect_box, intersect_ground

SUN_DIRECTION = np.array([0.35, 0.5, 0.8]) / np.linalg.norm([0.35, 0.5, 0.8])
AMBIENT = 0.4
HORIZON_RGB = np.array([175.0, 185.0, 195.0])
SKY_RGB = np.array([95.0, 140.0, 215.0])
FOG_DISTANCE_M = 110.0
MAX_RENDER_DISTANCE_M = 90.0
NEAR_PLANE_M = 0.1


@dataclass
class PinholeCamera:
    """A camera by its 3x3 intrinsic and its camera→global pose (x right, y down, z forward)."""

    intrinsic: np.ndarray
    cam2global: np.ndarray
    height: int
    width: int

    @cached_property
    def global2cam(self) -> np.ndarray:
        return np.linalg.inv(self.cam2global)

    @cached_property
    def intrinsic_inv(self) -> np.ndarray:
        return np.linalg.inv(self.intrinsic)

    def pixel_rays(self, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Global-frame origins and unit directions of the rays through pixel centres."""
        pixels = np.stack([cols + 0.5, rows + 0.5, np.ones_like(cols, dtype=np.float64)], axis=1)
        directions_cam = pixels @ self.intrinsic_inv.T
        directions = directions_cam @ self.cam2global[:3, :3].T
        directions /= np.linalg.norm(directions, axis=1, keepdims=True)
        origins = np.broadcast_to(self.cam2global[:3, 3], directions.shape)
        return origins, directions


@dataclass
class RenderBox:
    center: np.ndarray
    size_wlh: np.ndarray
    yaw: float
    class_name: str
    color_gain: float


def _fog(rgb: np.ndarray, distance: np.ndarray) -> np.ndarray:
    amount = 1.0 - np.exp(-distance / FOG_DISTANCE_M)
    return rgb * (1.0 - amount[:, None]) + HORIZON_RGB * amount[:, None]


def background_colors(origins: np.ndarray, directions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sky and textured ground seen along rays: (R, 3) colours and (R,) distances (inf for sky)."""
    distance = intersect_ground(origins, directions)
    ground = np.isfinite(distance)
    elevation = np.clip(directions[:, 2] * 4.0, 0.0, 1.0)[:, None]
    rgb = HORIZON_RGB * (1.0 - elevation) + SKY_RGB * elevation
    point = origins[ground] + distance[ground, None] * directions[ground]
    tile = (np.floor(point[:, 0] / 4.0) + np.floor(point[:, 1] / 4.0)) % 2
    line = (np.abs(point[:, 0] - 4.0 * np.round(point[:, 0] / 4.0)) < 0.12) | (
        np.abs(point[:, 1] - 4.0 * np.round(point[:, 1] / 4.0)) < 0.12
    )
    gray = np.where(line, 185.0, 92.0 + 14.0 * tile)
    rgb[ground] = _fog(np.stack([gray, gray, gray * 1.04], axis=1), distance[ground])
    return rgb, distance


def _pattern(class_name: str, local: np.ndarray, axis: np.ndarray) -> np.ndarray:
    """Per-class surface pattern: (R, 3) albedo from the hit point in normalised box coordinates."""
    base = np.array(CLASS_SPECS[class_name].color, dtype=np.float64)
    rgb = np.tile(base, (len(local), 1))
    x, y, z = local[:, 0], local[:, 1], local[:, 2]
    side = axis != 2
    if class_name in VEHICLES:
        rgb[side & (z < -0.7)] = (25.0, 25.0, 25.0)  # tyres and underbody
    if class_name in ("car", "bus"):
        rgb[side & (z > 0.1) & (z < 0.75)] = (45.0, 60.0, 85.0)  # windows
    elif class_name == "truck":
        rgb[side & (x > 0.55) & (z > 0.2)] = (45.0, 60.0, 85.0)  # cab windows at the front
    elif class_name == "construction_vehicle":
        rgb[side & (np.floor((x + z) * 3.0) % 2 == 0) & (z > -0.7)] = (30.0, 30.0, 30.0)
    elif class_name == "trailer":
        rgb[side & (z > -0.55) & (z < -0.35)] = (200.0, 40.0, 40.0)  # reflective band
    elif class_name == "barrier":
        rgb[np.floor((y + 1.0) * 3.0) % 2 == 0] = (210.0, 30.0, 30.0)
    elif class_name == "traffic_cone":
        rgb[(z > 0.0) & (z < 0.35)] = (250.0, 250.0, 250.0)
    elif class_name == "pedestrian":
        rgb[z > 0.65] = (225.0, 185.0, 155.0)  # head
        rgb[z < -0.2] = (40.0, 40.0, 70.0)  # legs
    elif class_name in ("motorcycle", "bicycle"):
        rgb[z > 0.3] = (35.0, 35.0, 35.0)
    return rgb


def _shade(box: RenderBox, hits, mask: np.ndarray) -> np.ndarray:
    normal_local = np.zeros((int(mask.sum()), 3))
    normal_local[np.arange(len(normal_local)), hits.axis[mask]] = hits.sign[mask]
    normal = normal_local @ rotation_z(box.yaw).T
    light = AMBIENT + (1.0 - AMBIENT) * np.clip(normal @ SUN_DIRECTION, 0.0, 1.0)
    albedo = _pattern(box.class_name, hits.local[mask], hits.axis[mask]) * box.color_gain
    return _fog(np.clip(albedo * light[:, None], 0, 255), hits.distance[mask])


def _pixel_rect(camera: PinholeCamera, box: RenderBox) -> tuple[int, int, int, int] | None:
    """Image rectangle (r0, r1, c0, c1) that can hold the box, or None when it cannot be seen."""
    corners_cam = transform_points(
        np.linalg.inv(camera.cam2global), box_corners(box.center, box.size_wlh, box.yaw)
    )
    depth = corners_cam[:, 2]
    if np.all(depth < NEAR_PLANE_M) or np.min(np.linalg.norm(corners_cam, axis=1)) > MAX_RENDER_DISTANCE_M:
        return None
    if np.any(depth < NEAR_PLANE_M):
        return 0, camera.height, 0, camera.width
    uv = corners_cam @ camera.intrinsic.T
    uv = uv[:, :2] / uv[:, 2:3]
    c0, r0 = np.floor(uv.min(axis=0)).astype(int)
    c1, r1 = np.ceil(uv.max(axis=0)).astype(int) + 1
    r0, r1 = max(r0, 0), min(r1, camera.height)
    c0, c1 = max(c0, 0), min(c1, camera.width)
    if r0 >= r1 or c0 >= c1:
        return None
    return r0, r1, c0, c1


def render_camera(camera: PinholeCamera, boxes: list[RenderBox]) -> tuple[np.ndarray, np.ndarray]:
    """Render one image: (H, W, 3) uint8 colours and (H, W) index of the visible box (-1 = background)."""
    rows, cols = np.mgrid[0 : camera.height, 0 : camera.width]
    origins, directions = camera.pixel_rays(rows.ravel(), cols.ravel())
    rgb, depth = background_colors(origins, directions)
    rgb = rgb.reshape(camera.height, camera.width, 3)
    depth = depth.reshape(camera.height, camera.width)
    owner = np.full((camera.height, camera.width), -1, dtype=np.int64)
    for index, box in enumerate(boxes):
        rect = _pixel_rect(camera, box)
        if rect is None:
            continue
        r0, r1, c0, c1 = rect
        sub_rows, sub_cols = np.mgrid[r0:r1, c0:c1]
        o, d = camera.pixel_rays(sub_rows.ravel(), sub_cols.ravel())
        hits = intersect_box(o, d, box.center, box.size_wlh, box.yaw)
        window = depth[r0:r1, c0:c1].ravel()
        closer = hits.distance < window
        if not closer.any():
            continue
        flat = np.flatnonzero(closer)
        rr, cc = sub_rows.ravel()[flat], sub_cols.ravel()[flat]
        rgb[rr, cc] = _shade(box, hits, closer)
        depth[rr, cc] = hits.distance[closer]
        owner[rr, cc] = index
    return np.clip(rgb, 0, 255).astype(np.uint8), owner
