"""One loader for real and synthetic nuScenes dataroots, through the official devkit.

Reading is split in two steps so the map-style dataset and the `datasets` stream share one format:
`NuScenesReader.read_row` turns a sample into a plain *row* (image bytes, calibration, boxes in the
LiDAR frame), and `decode_row` turns a row into model-ready arrays at a chosen resolution and range.
"""

from __future__ import annotations

import functools
import io
import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from nuscenes.eval.detection.utils import category_to_detection_name
from nuscenes.nuscenes import NuScenes
from nuscenes.utils import splits
from PIL import Image, UnidentifiedImageError
from pyquaternion import Quaternion

from fd3d.data.can_bus import can_bus_from_pose
from fd3d.data.classes import DETECTION_CLASSES
from fd3d.data.geometry import pose_matrix
from fd3d.data.resize import check_resize_mode, resize_image
from fd3d.data.rig import CAMERA_NAMES, LIDAR_NAME
from fd3d.data.schema import TABLE_NAMES, VERSIONS

BOX_FIELDS = ("x", "y", "z", "w", "l", "h", "yaw", "vx", "vy")


class DatasetError(RuntimeError):
    """A nuScenes-format dataroot is missing something or contradicts itself; the message names it."""


def _find_corrupt_table(table_dir: Path) -> str:
    for name in TABLE_NAMES:
        path = table_dir / f"{name}.json"
        try:
            json.loads(path.read_text())
        except json.JSONDecodeError as error:
            return f"{path} is not valid JSON (truncated or corrupt): {error}"
    return f"a table in {table_dir} could not be parsed"


@functools.lru_cache(maxsize=4)
def open_nuscenes(dataroot: str, version: str) -> NuScenes:
    """Load a dataroot with the devkit, turning its terse failures into errors that name the culprit.

    Cached per process: `datasets` shards and DataLoader workers reopen the same dataroot many times.
    """
    if version not in VERSIONS:
        raise DatasetError(f"unknown nuScenes version {version!r}; valid: {list(VERSIONS)}")
    table_dir = Path(dataroot) / version
    if not table_dir.is_dir():
        raise DatasetError(f"no tables for {version} in {dataroot}: folder {table_dir} does not exist")
    for name in TABLE_NAMES:
        if not (table_dir / f"{name}.json").is_file():
            raise DatasetError(f"table file missing: {table_dir / f'{name}.json'}")
    try:
        return NuScenes(version=version, dataroot=str(dataroot), verbose=False)
    except json.JSONDecodeError as error:
        raise DatasetError(_find_corrupt_table(table_dir)) from error
    except KeyError as error:
        raise DatasetError(f"a table in {table_dir} references the missing token {error}") from error


def _matrix_list(matrix: np.ndarray) -> list[list[float]]:
    return np.asarray(matrix, dtype=np.float64).tolist()


class NuScenesReader:
    """Random access to samples of one dataroot as rows (see module docstring)."""

    def __init__(self, dataroot: str | os.PathLike, version: str) -> None:
        self.dataroot = str(dataroot)
        self.version = version
        self.nusc = open_nuscenes(self.dataroot, version)

    def get(self, table: str, token: str) -> dict:
        """A table record by token, or an error naming the table and the missing token."""
        try:
            return self.nusc.get(table, token)
        except KeyError as error:
            raise DatasetError(f"{self.version}/{table}.json has no record with token {token!r}") from error

    def scene_names(self, split: str | None = None) -> list[str]:
        """Names of the dataroot's scenes in an official split (devkit's lists), in the split's order."""
        present = {scene["name"] for scene in self.nusc.scene}
        if split is None:
            return sorted(present)
        official = splits.create_splits_scenes()
        if split not in official:
            raise DatasetError(f"unknown split {split!r}; valid: {sorted(official)}")
        return [name for name in official[split] if name in present]

    def sample_tokens(self, split: str | None = None, scene_names: Sequence[str] | None = None) -> list[str]:
        """Keyframe tokens in time order, scene after scene."""
        names = list(scene_names) if scene_names is not None else self.scene_names(split)
        by_name = {scene["name"]: scene for scene in self.nusc.scene}
        tokens: list[str] = []
        for name in names:
            if name not in by_name:
                raise DatasetError(f"scene {name!r} is not in {self.dataroot}/{self.version}")
            token = by_name[name]["first_sample_token"]
            while token:
                tokens.append(token)
                token = self.get("sample", token)["next"]
        return tokens

    def _keyframe(self, sample: dict, channel: str) -> dict:
        if channel not in sample["data"]:
            raise DatasetError(f"sample {sample['token']} has no {channel} keyframe")
        return self.get("sample_data", sample["data"][channel])

    def _pose(self, sample_data: dict) -> tuple[np.ndarray, np.ndarray]:
        calib = self.get("calibrated_sensor", sample_data["calibrated_sensor_token"])
        ego = self.get("ego_pose", sample_data["ego_pose_token"])
        return pose_matrix(calib["translation"], calib["rotation"]), pose_matrix(
            ego["translation"], ego["rotation"]
        )

    def lidar2global(self, sample_token: str) -> np.ndarray:
        lidar2ego, ego2global = self._pose(self._keyframe(self.get("sample", sample_token), LIDAR_NAME))
        return ego2global @ lidar2ego

    def _camera(self, sample: dict, channel: str) -> dict:
        sample_data = self._keyframe(sample, channel)
        calib = self.get("calibrated_sensor", sample_data["calibrated_sensor_token"])
        intrinsic = np.asarray(calib["camera_intrinsic"], dtype=np.float64)
        if (
            intrinsic.shape != (3, 3)
            or not np.isfinite(intrinsic).all()
            or abs(np.linalg.det(intrinsic)) < 1e-9
        ):
            raise DatasetError(
                f"calibrated_sensor {calib['token']} of {channel} has no valid 3x3 camera_intrinsic: "
                f"{calib['camera_intrinsic']!r}"
            )
        path = self.checked_image_path(sample_data)
        sensor2ego, ego2global = self._pose(sample_data)
        return {
            "image": {"bytes": path.read_bytes(), "path": sample_data["filename"]},
            "intrinsic": intrinsic,
            "sensor2ego": sensor2ego,
            "ego2global": ego2global,
            "timestamp": sample_data["timestamp"],
        }

    def checked_image_path(self, sample_data: dict) -> Path:
        """The camera image of a sample_data record, which must exist and have the record's `width` and
        `height` (when the table gives them): the intrinsics are scaled from that size to the model's, so an
        image of another size would silently give wrong camera geometry. Reads the image header only."""
        path = Path(self.dataroot) / sample_data["filename"]
        if not path.is_file():
            raise DatasetError(f"image file missing: {path} (sample_data {sample_data['token']})")
        if "width" in sample_data and "height" in sample_data:
            try:
                with Image.open(path) as pil:
                    stored = pil.size
            except (UnidentifiedImageError, OSError) as error:
                raise DatasetError(f"corrupt image {sample_data['filename']}: {error}") from error
            if stored != (sample_data["width"], sample_data["height"]):
                raise DatasetError(
                    f"image {path} is {stored[0]}x{stored[1]} (width x height) but its sample_data "
                    f"{sample_data['token']} says {sample_data['width']}x{sample_data['height']}: the "
                    "intrinsics belong to the table's size; restore the original image or fix the table"
                )
        return path

    def check_images(self, tokens: Sequence[str]) -> None:
        """Every camera image of `tokens` exists with its table's size, or one DatasetError listing the bad
        ones (the first five): a split checked before training rather than after its last step."""
        problems = []
        for token in tokens:
            sample = self.get("sample", token)
            for channel in CAMERA_NAMES:
                try:
                    self.checked_image_path(self._keyframe(sample, channel))
                except DatasetError as error:
                    problems.append(str(error))
        if problems:
            shown = "\n  ".join(problems[:5])
            more = f"\n  ... and {len(problems) - 5} more" if len(problems) > 5 else ""
            raise DatasetError(
                f"{len(problems)} camera image(s) of {len(tokens)} samples unusable:\n  {shown}{more}"
            )

    def _boxes_lidar(self, sample: dict, global2lidar: np.ndarray) -> tuple[list[list[float]], list[str]]:
        """Detection-class boxes with at least one lidar point, as (x, y, z, w, l, h, yaw, vx, vy)."""
        boxes, names = [], []
        rotation = global2lidar[:3, :3]
        for token in sample["anns"]:
            annotation = self.get("sample_annotation", token)
            name = category_to_detection_name(annotation["category_name"])
            if name is None or annotation["num_lidar_pts"] <= 0:
                continue
            center = rotation @ np.asarray(annotation["translation"]) + global2lidar[:3, 3]
            box_rotation = rotation @ Quaternion(annotation["rotation"]).rotation_matrix
            yaw = np.arctan2(box_rotation[1, 0], box_rotation[0, 0])
            velocity = rotation @ np.nan_to_num(self.nusc.box_velocity(token), nan=0.0)
            w, length, h = annotation["size"]
            boxes.append([*center.tolist(), w, length, h, float(yaw), float(velocity[0]), float(velocity[1])])
            names.append(name)
        return boxes, names

    def read_row(self, sample_token: str) -> dict:
        """One sample as a row of plain values (the schema of `fd3d.data.hf.SAMPLE_FEATURES`)."""
        sample = self.get("sample", sample_token)
        scene = self.get("scene", sample["scene_token"])
        lidar2ego, ego2global = self._pose(self._keyframe(sample, LIDAR_NAME))
        lidar2global = ego2global @ lidar2ego
        prev_lidar2global = self.lidar2global(sample["prev"]) if sample["prev"] else lidar2global
        cameras = [self._camera(sample, channel) for channel in CAMERA_NAMES]
        boxes, names = self._boxes_lidar(sample, np.linalg.inv(lidar2global))
        return {
            "sample_token": sample_token,
            "scene_token": sample["scene_token"],
            "scene_name": scene["name"],
            "timestamp": sample["timestamp"],
            "prev_token": sample["prev"],
            "lidar2ego": _matrix_list(lidar2ego),
            "ego2global": _matrix_list(ego2global),
            "prev_lidar2global": _matrix_list(prev_lidar2global),
            "cam_names": list(CAMERA_NAMES),
            "images": [camera["image"] for camera in cameras],
            "cam_intrinsics": [_matrix_list(camera["intrinsic"]) for camera in cameras],
            "cam_sensor2ego": [_matrix_list(camera["sensor2ego"]) for camera in cameras],
            "cam_ego2global": [_matrix_list(camera["ego2global"]) for camera in cameras],
            "cam_timestamps": [camera["timestamp"] for camera in cameras],
            "gt_boxes": boxes,
            "gt_names": names,
        }


def _decode_image(
    image: dict, size_hw: tuple[int, int] | None, resize: str = "antialias"
) -> tuple[np.ndarray, float, float]:
    """RGB array of an encoded image, resized to `size_hw` (`fd3d.data.resize`); its x and y scale factors."""
    try:
        with Image.open(io.BytesIO(image["bytes"])) as pil:
            pil = pil.convert("RGB")
            scale_x = scale_y = 1.0
            if size_hw is None or (pil.height, pil.width) == tuple(size_hw):
                return np.asarray(pil), scale_x, scale_y
            scale_x, scale_y = size_hw[1] / pil.width, size_hw[0] / pil.height
            return resize_image(pil, size_hw, resize), scale_x, scale_y
    except (UnidentifiedImageError, OSError) as error:
        raise DatasetError(f"corrupt image {image['path']}: {error}") from error


def decode_row(
    row: dict,
    image_size: tuple[int, int] | None = None,
    pc_range: Sequence[float] | None = None,
    classes: Sequence[str] = DETECTION_CLASSES,
    resize: str = "antialias",
) -> dict:
    """Model-ready arrays of one row.

    Images are resized to `image_size` (H, W) by `resize` (`fd3d.data.resize`) with the intrinsics scaled to
    match; ground truth keeps the
    `classes` (labels index into it) whose centre lies inside `pc_range` [x0, y0, z0, x1, y1, z1].
    `lidar2img` maps homogeneous LiDAR points to pixels * depth: K · cam←ego(t_cam) · ego←global · lidar pose.
    """
    check_resize_mode(resize)
    decoded = [_decode_image(image, image_size, resize) for image in row["images"]]
    images = np.stack([d[0] for d in decoded])  # (Ncam, H, W, 3) uint8
    intrinsics = np.asarray(row["cam_intrinsics"], dtype=np.float64).copy()
    for k, (_, scale_x, scale_y) in enumerate(decoded):
        intrinsics[k, 0] *= scale_x
        intrinsics[k, 1] *= scale_y
    lidar2ego = np.asarray(row["lidar2ego"])
    ego2global = np.asarray(row["ego2global"])
    lidar2global = ego2global @ lidar2ego
    cam2global = np.asarray(row["cam_ego2global"]) @ np.asarray(row["cam_sensor2ego"])  # (Ncam, 4, 4)
    lidar2cam = np.linalg.inv(cam2global) @ lidar2global
    viewpad = np.tile(np.eye(4), (len(intrinsics), 1, 1))
    viewpad[:, :3, :3] = intrinsics
    lidar2img = viewpad @ lidar2cam

    boxes = np.asarray(row["gt_boxes"], dtype=np.float64).reshape(-1, len(BOX_FIELDS))
    names = list(row["gt_names"])
    keep = np.array([name in classes for name in names], dtype=bool)
    if pc_range is not None:
        x0, y0, _, x1, y1, _ = pc_range
        keep &= (boxes[:, 0] >= x0) & (boxes[:, 0] <= x1) & (boxes[:, 1] >= y0) & (boxes[:, 1] <= y1)
    labels = np.array([classes.index(n) for n, k in zip(names, keep, strict=True) if k], dtype=np.int64)
    prev_lidar2global = np.asarray(row["prev_lidar2global"])
    return {
        "sample_token": row["sample_token"],
        "scene_token": row["scene_token"],
        "timestamp": row["timestamp"],
        "prev_exists": bool(row["prev_token"]),
        "images": images,
        "intrinsics": intrinsics,
        "cam2lidar": np.linalg.inv(lidar2cam),
        "lidar2img": lidar2img,
        "lidar2ego": lidar2ego,
        "ego2global": ego2global,
        "lidar2global": lidar2global,
        "curr2prev_lidar": np.linalg.inv(prev_lidar2global) @ lidar2global,
        "can_bus": can_bus_from_pose(ego2global),  # official BEVFormer's ego-motion input (fd3d.data.can_bus)
        "gt_boxes": boxes[keep],
        "gt_labels": labels,
    }
