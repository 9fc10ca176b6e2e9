"""Synthetic datasets in the exact nuScenes v1.0 schema, scored by the official devkit unchanged.

The real nuScenes cannot be downloaded everywhere fd3d runs, so tests, the demo and the reproduction
benchmark use scenes generated here: official scene names (so the devkit's split lists apply), the
nuScenes sensor rig, 2 Hz keyframes, all 13 tables, ray-cast camera images and lidar sweeps.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from nuscenes.utils import splits
from PIL import Image
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from fd3d.atomic import write_text_atomically
from fd3d.data.classes import ATTRIBUTES, CLASS_SPECS, DETECTION_CLASSES, attribute_for
from fd3d.data.geometry import pose_matrix, yaw_to_quaternion
from fd3d.data.rig import CAMERA_MOUNTS, LIDAR_NAME, LIDAR_ROTATION_WXYZ, LIDAR_TRANSLATION
from fd3d.data.schema import SYNTHETIC_MARKER, TABLE_NAMES
from fd3d.data.synthetic.lidar import scan, visibility_token
from fd3d.data.synthetic.render import PinholeCamera, RenderBox, render_camera
from fd3d.data.synthetic.scene_layout import make_scene_layout

SUPPORTED_VERSIONS = ("v1.0-mini", "v1.0-trainval")
LOCATIONS = ("singapore-onenorth", "boston-seaport", "singapore-queenstown", "singapore-hollandvillage")
VISIBILITY_LEVELS = (("1", "v0-40"), ("2", "v40-60"), ("3", "v60-80"), ("4", "v80-100"))
FIRST_TIMESTAMP_US = 1_532_402_927_000_000


@dataclass
class SyntheticConfig:
    """What to generate. `scenes` counts train scenes for v1.0-trainval and all scenes for v1.0-mini."""

    version: str = "v1.0-mini"
    scenes: int | None = None
    val_scenes: int | None = None
    samples_per_scene: int = 10
    image_size: tuple[int, int] = (224, 400)
    seed: int = 0
    workers: int = 1
    scene_names: list[str] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        if self.version not in SUPPORTED_VERSIONS:
            raise ValueError(f"unknown version {self.version!r}; valid: {list(SUPPORTED_VERSIONS)}")
        if self.samples_per_scene < 2:
            raise ValueError(
                f"samples_per_scene must be >= 2 (velocities need 2 keyframes), got {self.samples_per_scene}"
            )
        self.scene_names = self._pick_scene_names()

    def _pick_scene_names(self) -> list[str]:
        if self.version == "v1.0-mini":
            total = 10 if self.scenes is None else self.scenes
            if not 2 <= total <= 10:
                raise ValueError(f"v1.0-mini holds 2 to 10 scenes (the 2 mini_val ones first), got {total}")
            return list(splits.mini_val) + list(splits.mini_train[: total - 2])
        n_train = 8 if self.scenes is None else self.scenes
        n_val = 2 if self.val_scenes is None else self.val_scenes
        if not (0 <= n_train <= len(splits.train) and 0 <= n_val <= len(splits.val)) or n_train + n_val == 0:
            raise ValueError(
                f"scenes must be in 0..{len(splits.train)} and val_scenes in 0..{len(splits.val)}"
            )
        return list(splits.train[:n_train]) + list(splits.val[:n_val])


def _token(*parts: object) -> str:
    return hashlib.md5("/".join(str(p) for p in parts).encode()).hexdigest()


def _link(rows: list[dict]) -> list[dict]:
    """Fill nuScenes' prev/next links of a time-ordered chain."""
    for i, row in enumerate(rows):
        row["prev"] = rows[i - 1]["token"] if i > 0 else ""
        row["next"] = rows[i + 1]["token"] if i + 1 < len(rows) else ""
    return rows


def _static_tables(seed: int) -> dict[str, list[dict]]:
    sensors = [
        {"token": _token(seed, "sensor", m.channel), "channel": m.channel, "modality": "camera"}
        for m in CAMERA_MOUNTS
    ]
    sensors.append({"token": _token(seed, "sensor", LIDAR_NAME), "channel": LIDAR_NAME, "modality": "lidar"})
    categories = [
        {
            "token": _token(seed, "category", CLASS_SPECS[c].category),
            "name": CLASS_SPECS[c].category,
            "description": c,
        }
        for c in DETECTION_CLASSES
    ]
    attributes = [{"token": _token(seed, "attribute", a), "name": a, "description": a} for a in ATTRIBUTES]
    visibility = [
        {"token": t, "level": level, "description": f"visibility of whole object is {level}"}
        for t, level in VISIBILITY_LEVELS
    ]
    return {"sensor": sensors, "category": categories, "attribute": attributes, "visibility": visibility}


@dataclass
class _SceneJob:
    dataroot: str
    seed: int
    index: int
    name: str
    samples: int
    image_size: tuple[int, int]


def _log_name(job: _SceneJob) -> str:
    day = 1 + job.index % 28
    return f"n015-2018-07-{day:02d}-11-{job.index % 60:02d}-{job.seed % 60:02d}+0800"


def _generate_scene(job: _SceneJob) -> dict[str, list[dict]]:
    """Everything one scene adds to the tables; writes its image and lidar files as it goes.

    BLAS runs single-threaded here: the products are tiny, and threads only fight the scene processes.
    """
    with threadpool_limits(limits=1):
        return _generate_scene_tables(job)


def _generate_scene_tables(job: _SceneJob) -> dict[str, list[dict]]:
    rng = np.random.default_rng([job.seed, job.index])
    layout = make_scene_layout(rng, job.samples)
    height, width = job.image_size
    log_name = _log_name(job)
    scene_token = _token(job.seed, "scene", job.name)
    log_token = _token(job.seed, "log", job.name)
    start_us = FIRST_TIMESTAMP_US + job.index * 3_600_000_000
    timestamps = [start_us + int(round(t * 1e6)) for t in layout.times_s]

    calibrations = {}
    for mount in CAMERA_MOUNTS:
        calibrations[mount.channel] = {
            "token": _token(job.seed, "calibrated_sensor", job.name, mount.channel),
            "sensor_token": _token(job.seed, "sensor", mount.channel),
            "translation": list(mount.translation),
            "rotation": mount.rotation_wxyz(),
            "camera_intrinsic": mount.intrinsic(height, width).tolist(),
        }
    calibrations[LIDAR_NAME] = {
        "token": _token(job.seed, "calibrated_sensor", job.name, LIDAR_NAME),
        "sensor_token": _token(job.seed, "sensor", LIDAR_NAME),
        "translation": list(LIDAR_TRANSLATION),
        "rotation": LIDAR_ROTATION_WXYZ,
        "camera_intrinsic": [],
    }

    samples = _link(
        [
            {"token": _token(job.seed, "sample", job.name, k), "timestamp": ts, "scene_token": scene_token}
            for k, ts in enumerate(timestamps)
        ]
    )
    data_chains: dict[str, list[dict]] = {channel: [] for channel in calibrations}
    ego_poses: list[dict] = []
    annotation_chains: list[list[dict]] = [[] for _ in layout.objects]
    sizes = np.stack([o.size_wlh for o in layout.objects])
    yaws = np.array([o.yaw for o in layout.objects])

    for k, (sample, time_s) in enumerate(zip(samples, layout.times_s, strict=True)):
        ego_pose = {
            "translation": [float(layout.ego_xy[k, 0]), float(layout.ego_xy[k, 1]), 0.0],
            "rotation": yaw_to_quaternion(float(layout.ego_yaw[k])),
            "timestamp": sample["timestamp"],
        }
        ego2global = pose_matrix(ego_pose["translation"], ego_pose["rotation"])
        centers = np.stack([o.center(time_s) for o in layout.objects])
        boxes = [
            RenderBox(centers[i], sizes[i], yaws[i], o.class_name, o.color_gain)
            for i, o in enumerate(layout.objects)
        ]
        lidar_calib = calibrations[LIDAR_NAME]
        lidar = scan(
            ego2global @ pose_matrix(lidar_calib["translation"], lidar_calib["rotation"]),
            centers,
            sizes,
            yaws,
        )

        for channel, calib in calibrations.items():
            token = _token(job.seed, "sample_data", job.name, k, channel)
            ego_poses.append({"token": token, **ego_pose})
            sensor2global = ego2global @ pose_matrix(calib["translation"], calib["rotation"])
            if channel == LIDAR_NAME:
                filename = f"samples/{channel}/{log_name}__{channel}__{sample['timestamp']}.pcd.bin"
                lidar.points_lidar.tofile(Path(job.dataroot) / filename)
                fileformat, h, w = "pcd", 0, 0
            else:
                filename = f"samples/{channel}/{log_name}__{channel}__{sample['timestamp']}.jpg"
                camera = PinholeCamera(np.array(calib["camera_intrinsic"]), sensor2global, height, width)
                image, _ = render_camera(camera, boxes)
                Image.fromarray(image).save(Path(job.dataroot) / filename, quality=92)
                fileformat, h, w = "jpg", height, width
            data_chains[channel].append(
                {
                    "token": token,
                    "sample_token": sample["token"],
                    "ego_pose_token": token,
                    "calibrated_sensor_token": calib["token"],
                    "timestamp": sample["timestamp"],
                    "fileformat": fileformat,
                    "is_key_frame": True,
                    "height": h,
                    "width": w,
                    "filename": filename,
                }
            )

        for i, obj in enumerate(layout.objects):
            attribute = attribute_for(obj.class_name, obj.speed)
            annotation_chains[i].append(
                {
                    "token": _token(job.seed, "sample_annotation", job.name, i, k),
                    "sample_token": sample["token"],
                    "instance_token": _token(job.seed, "instance", job.name, i),
                    "visibility_token": visibility_token(float(lidar.visible_fraction[i])),
                    "attribute_tokens": [_token(job.seed, "attribute", attribute)] if attribute else [],
                    "translation": centers[i].tolist(),
                    "size": sizes[i].tolist(),
                    "rotation": yaw_to_quaternion(float(yaws[i])),
                    "num_lidar_pts": int(lidar.points_per_box[i]),
                    "num_radar_pts": 0,
                }
            )

    instances = [
        {
            "token": chain[0]["instance_token"],
            "category_token": _token(job.seed, "category", CLASS_SPECS[obj.class_name].category),
            "nbr_annotations": len(chain),
            "first_annotation_token": chain[0]["token"],
            "last_annotation_token": chain[-1]["token"],
        }
        for obj, chain in zip(layout.objects, annotation_chains, strict=True)
    ]
    scene = {
        "token": scene_token,
        "log_token": log_token,
        "nbr_samples": len(samples),
        "first_sample_token": samples[0]["token"],
        "last_sample_token": samples[-1]["token"],
        "name": job.name,
        "description": f"synthetic, {len(layout.objects)} objects, seed {job.seed}",
    }
    log = {
        "token": log_token,
        "logfile": log_name,
        "vehicle": "n015",
        "date_captured": log_name[5:15],
        "location": LOCATIONS[job.index % len(LOCATIONS)],
    }
    return {
        "scene": [scene],
        "log": [log],
        "sample": samples,
        "sample_data": [row for chain in data_chains.values() for row in _link(chain)],
        "ego_pose": ego_poses,
        "calibrated_sensor": list(calibrations.values()),
        "instance": instances,
        "sample_annotation": [row for chain in annotation_chains for row in _link(chain)],
    }


def _maps(dataroot: Path, seed: int, logs: list[dict]) -> list[dict]:
    """One semantic-prior map per location; the devkit wants every log in some map and the mask on disk."""
    (dataroot / "maps").mkdir(exist_ok=True)
    maps = []
    for location in sorted({log["location"] for log in logs}):
        token = _token(seed, "map", location)
        filename = f"maps/{token}.png"
        Image.fromarray(np.full((64, 64), 255, dtype=np.uint8)).save(dataroot / filename)
        log_tokens = [log["token"] for log in logs if log["location"] == location]
        maps.append(
            {"token": token, "category": "semantic_prior", "filename": filename, "log_tokens": log_tokens}
        )
    return maps


def _run_jobs(jobs: list[_SceneJob], workers: int, progress: bool) -> Iterable[dict[str, list[dict]]]:
    bar = tqdm(total=len(jobs), desc="synthetic scenes", unit="scene", disable=not progress)
    if workers <= 1:
        for job in jobs:
            yield _generate_scene(job)
            bar.update()
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for result in pool.map(_generate_scene, jobs):
                yield result
                bar.update()
    bar.close()


def generate(dataroot: str | os.PathLike, config: SyntheticConfig, progress: bool = True) -> dict[str, int]:
    """Write a complete dataroot (tables under `dataroot/version`, files under samples/ and maps/)."""
    root = Path(dataroot)
    for channel in [m.channel for m in CAMERA_MOUNTS] + [LIDAR_NAME]:
        (root / "samples" / channel).mkdir(parents=True, exist_ok=True)
    jobs = [
        _SceneJob(str(root), config.seed, i, name, config.samples_per_scene, tuple(config.image_size))
        for i, name in enumerate(config.scene_names)
    ]
    tables: dict[str, list[dict]] = {name: [] for name in TABLE_NAMES}
    tables.update(_static_tables(config.seed))
    for scene_tables in _run_jobs(jobs, config.workers, progress):
        for name, rows in scene_tables.items():
            tables[name].extend(rows)
    tables["map"] = _maps(root, config.seed, tables["log"])

    table_dir = root / config.version
    table_dir.mkdir(parents=True, exist_ok=True)
    for name in TABLE_NAMES:
        write_text_atomically(table_dir / f"{name}.json", json.dumps(tables[name]))
    settings = {k: v for k, v in dataclasses.asdict(config).items() if k != "workers"}  # workers: no effect
    marker = {"generator": "fd3d.data.synthetic", "config": settings}
    write_text_atomically(root / SYNTHETIC_MARKER, json.dumps(marker, indent=2, default=list))
    return {
        "scenes": len(tables["scene"]),
        "samples": len(tables["sample"]),
        "annotations": len(tables["sample_annotation"]),
        "instances": len(tables["instance"]),
    }
