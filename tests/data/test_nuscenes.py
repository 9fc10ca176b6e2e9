"""The loader reads real-format dataroots correctly and names whatever is wrong with bad ones."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
from nuscenes.utils.geometry_utils import view_points
from PIL import Image, ImageDraw
from scipy.spatial import ConvexHull

from fd3d.data.dataset import NuScenesDataset, collate_samples
from fd3d.data.geometry import box_corners
from fd3d.data.nuscenes import DatasetError, NuScenesReader, decode_row, open_nuscenes
from fd3d.data.rig import CAMERA_NAMES
from fd3d.data.synthetic.render import PinholeCamera, background_colors
from tests.conftest import PC_RANGE


@pytest.fixture(scope="module")
def reader(mini_dataroot) -> NuScenesReader:
    return NuScenesReader(mini_dataroot, "v1.0-mini")


def test_boxes_match_devkit_lidar_frame(reader):
    """Our (x, y, z, w, l, h, yaw) equals the devkit's own boxes in the LIDAR_TOP frame."""
    token = reader.sample_tokens("mini_train")[1]
    sample = decode_row(reader.read_row(token))
    lidar_token = reader.get("sample", token)["data"]["LIDAR_TOP"]
    _, devkit_boxes, _ = reader.nusc.get_sample_data(lidar_token)
    devkit = {
        tuple(np.round(b.center, 6)): b
        for b in devkit_boxes
        if reader.get("sample_annotation", b.token)["num_lidar_pts"] > 0
    }
    assert len(devkit) == len(sample["gt_boxes"]) > 0
    for box in sample["gt_boxes"]:
        match = devkit[tuple(np.round(box[:3], 6))]
        np.testing.assert_allclose(box[3:6], match.wlh, atol=1e-9)
        np.testing.assert_allclose(box_corners(box[:3], box[3:6], box[6]), match.corners().T, atol=1e-6)


def test_velocity_is_devkit_velocity_rotated_into_lidar(reader):
    token = reader.sample_tokens("mini_val")[1]
    sample = decode_row(reader.read_row(token))
    rotation = np.linalg.inv(sample["lidar2global"])[:3, :3]
    anns = [reader.get("sample_annotation", t) for t in reader.get("sample", token)["anns"]]
    speeds = sorted(
        np.linalg.norm(reader.nusc.box_velocity(a["token"])[:2]) for a in anns if a["num_lidar_pts"] > 0
    )
    ours = sorted(np.linalg.norm(sample["gt_boxes"][:, 7:9], axis=1))
    np.testing.assert_allclose(ours, speeds, atol=1e-6)
    assert max(ours) > 1.0, "the split should contain moving objects"
    assert np.allclose(rotation @ rotation.T, np.eye(3))


def test_projected_boxes_land_on_rendered_object_pixels(reader):
    """Pixels that differ from the empty-world rendering (sky, ground) are object pixels; they must lie
    inside the projections of the ground-truth boxes made with the loader's lidar2img matrices."""
    token = reader.sample_tokens("mini_val")[0]
    row = reader.read_row(token)
    sample = decode_row(row, pc_range=(-80, -80, -5, 80, 80, 5))
    all_inside, boxes_checked = [], 0
    for cam in range(len(CAMERA_NAMES)):
        image = sample["images"][cam].astype(np.float64)
        height, width = image.shape[:2]
        cam2global = sample["lidar2global"] @ sample["cam2lidar"][cam]
        camera = PinholeCamera(sample["intrinsics"][cam], cam2global, height, width)
        rows, cols = np.mgrid[0:height, 0:width]
        background, _ = background_colors(*camera.pixel_rays(rows.ravel(), cols.ravel()))
        object_pixels = np.abs(image - background.reshape(height, width, 3)).max(axis=2) > 45
        covered = np.zeros((height, width), dtype=bool)
        for box in sample["gt_boxes"]:
            corners = np.c_[box_corners(box[:3], box[3:6], box[6]), np.ones(8)]
            depth = (corners @ sample["lidar2img"][cam].T)[:, 2]
            if np.any(depth < 0.5):
                continue
            uv = view_points(corners[:, :3].T, sample["lidar2img"][cam], normalize=True)[:2].T
            polygon = Image.new("L", (width, height))
            hull = _convex_hull(uv)
            ImageDraw.Draw(polygon).polygon([tuple(p) for p in hull], fill=1)
            mask = np.asarray(polygon, dtype=bool)
            covered |= mask
            if mask.sum() > 150 and np.all((uv >= 0) & (uv < [width, height])):
                boxes_checked += 1
                assert object_pixels[mask].mean() > 0.5, "a fully visible box projects onto background"
        dilated = (
            covered
            | np.roll(covered, 1, 0)
            | np.roll(covered, -1, 0)
            | np.roll(covered, 1, 1)
            | np.roll(covered, -1, 1)
        )
        all_inside.append(dilated[object_pixels].mean())
    assert boxes_checked >= 3
    assert np.mean(all_inside) > 0.97, all_inside


def _convex_hull(points: np.ndarray) -> np.ndarray:
    return points[ConvexHull(points).vertices]


def test_resizing_scales_intrinsics_and_projection(reader):
    row = reader.read_row(reader.sample_tokens("mini_val")[0])
    full = decode_row(row)
    half = decode_row(row, image_size=(56, 100))
    assert full["images"].shape == (6, 112, 200, 3) and half["images"].shape == (6, 56, 100, 3)
    point = np.array([12.0, 5.0, 0.5, 1.0])
    for cam in range(6):
        p_full, p_half = full["lidar2img"][cam] @ point, half["lidar2img"][cam] @ point
        np.testing.assert_allclose(p_half[:2] / p_half[2], (p_full[:2] / p_full[2]) / 2, atol=1e-9)


def test_range_and_class_filters(reader):
    row = reader.read_row(reader.sample_tokens("mini_train")[0])
    wide = decode_row(row, pc_range=(-100, -100, -5, 100, 100, 5))
    narrow = decode_row(row, pc_range=(-20, -20, -5, 20, 20, 3))
    inside = np.all(np.abs(wide["gt_boxes"][:, :2]) <= 20, axis=1)
    np.testing.assert_array_equal(narrow["gt_boxes"], wide["gt_boxes"][inside])
    cars = decode_row(row, classes=("pedestrian", "car"))
    names = np.array(row["gt_names"])
    assert len(cars["gt_boxes"]) == np.isin(names, ["pedestrian", "car"]).sum()
    assert set(cars["gt_labels"]) <= {0, 1}


def test_dataset_queue_and_ego_motion(mini_dataroot):
    dataset = NuScenesDataset(mini_dataroot, "v1.0-mini", "mini_val", (56, 100), PC_RANGE, queue_length=2)
    first, second, third = dataset[0], dataset[1], dataset[2]
    assert first["images"].shape == (6, 3, 56, 100) and first["images"].dtype == torch.uint8
    assert not first["prev_exists"] and not first["queue"][0]["prev_exists"]
    assert second["queue"][-1]["sample_token"] == first["sample_token"]
    assert [f["sample_token"] for f in third["queue"]] == [first["sample_token"], second["sample_token"]]
    # A parked object seen in two keyframes: curr2prev maps its current centre onto its previous one.
    prev_boxes, boxes = second["queue"][-1]["gt_boxes"].double(), second["gt_boxes"].double()
    static = boxes[torch.linalg.norm(boxes[:, 7:9], dim=1) < 1e-6]
    moved = (
        static[:, :3] @ second["curr2prev_lidar"][:3, :3].double().T
        + second["curr2prev_lidar"][:3, 3].double()
    )
    distances = torch.cdist(moved, prev_boxes[:, :3]).min(dim=1).values
    # (a few boxes leave the range or lose their lidar points between frames)
    assert (distances < 1e-3).sum() >= 5 and (distances < 1e-3).float().mean() > 0.7
    batch = collate_samples([dataset[0], dataset[1]])
    assert batch["images"].shape == (2, 6, 3, 56, 100) and len(batch["gt_boxes"]) == 2
    assert batch["queue"][0]["lidar2img"].shape == (2, 6, 4, 4)


def test_unknown_version_is_named(mini_dataroot):
    with pytest.raises(DatasetError, match="unknown nuScenes version 'v1.0-mimi'.*v1.0-mini"):
        NuScenesReader(mini_dataroot, "v1.0-mimi")


def test_unknown_split_is_named(reader):
    with pytest.raises(DatasetError, match="unknown split 'minival'"):
        reader.sample_tokens("minival")


def test_deleted_image_is_named(mini_copy):
    reader = NuScenesReader(mini_copy, "v1.0-mini")
    token = reader.sample_tokens("mini_val")[0]
    victim = (
        mini_copy / reader.get("sample_data", reader.get("sample", token)["data"]["CAM_BACK"])["filename"]
    )
    victim.unlink()
    with pytest.raises(DatasetError, match=f"image file missing: .*{re.escape(victim.name)}"):
        reader.read_row(token)


def test_corrupt_image_is_named(mini_copy):
    reader = NuScenesReader(mini_copy, "v1.0-mini")
    token = reader.sample_tokens("mini_val")[0]
    filename = reader.get("sample_data", reader.get("sample", token)["data"]["CAM_FRONT"])["filename"]
    (mini_copy / filename).write_bytes(b"not a jpeg")
    with pytest.raises(DatasetError, match=f"corrupt image {re.escape(filename)}"):
        decode_row(reader.read_row(token))


def test_truncated_table_is_named(mini_copy):
    table = mini_copy / "v1.0-mini" / "sample_annotation.json"
    table.write_text(table.read_text()[:-500])
    open_nuscenes.cache_clear()
    with pytest.raises(DatasetError, match="sample_annotation.json is not valid JSON"):
        NuScenesReader(mini_copy, "v1.0-mini")


def test_missing_table_is_named(mini_copy):
    (mini_copy / "v1.0-mini" / "visibility.json").unlink()
    open_nuscenes.cache_clear()
    with pytest.raises(DatasetError, match="table file missing: .*visibility.json"):
        NuScenesReader(mini_copy, "v1.0-mini")


def test_missing_calibration_is_named(mini_copy):
    path = mini_copy / "v1.0-mini" / "calibrated_sensor.json"
    rows = json.loads(path.read_text())
    broken = next(r for r in rows if r["camera_intrinsic"])
    broken["camera_intrinsic"] = []
    path.write_text(json.dumps(rows))
    open_nuscenes.cache_clear()
    reader = NuScenesReader(mini_copy, "v1.0-mini")
    token = next(
        t
        for t in reader.sample_tokens()
        if any(
            reader.get("sample_data", sd)["calibrated_sensor_token"] == broken["token"]
            for sd in reader.get("sample", t)["data"].values()
        )
    )
    with pytest.raises(
        DatasetError, match=f"calibrated_sensor {broken['token']} .* no valid 3x3 camera_intrinsic"
    ):
        reader.read_row(token)


def test_reference_to_missing_token_is_named(mini_copy):
    path = mini_copy / "v1.0-mini" / "sample_data.json"
    rows = json.loads(path.read_text())
    rows[0]["ego_pose_token"] = "0" * 32
    path.write_text(json.dumps(rows))
    open_nuscenes.cache_clear()
    reader = NuScenesReader(mini_copy, "v1.0-mini")
    with pytest.raises(DatasetError, match="ego_pose.json has no record with token '0{32}'"):
        reader.read_row(rows[0]["sample_token"])
