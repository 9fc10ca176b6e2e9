"""fd3d.evaluation.visualize and tools/visualize.py: activation values, footprints, where things land in
the saved PNGs, and the CLI end to end on saved BEVFormer / DETR3D apprentices."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from matplotlib import colormaps
from PIL import Image

from fd3d.config import load_config
from fd3d.data import geometry
from fd3d.data.rig import CAMERA_NAMES
from fd3d.distill.masks import box_corners_lidar
from fd3d.evaluation.visualize import (
    ACTIVATION_CMAP,
    BOX_EDGES,
    PV_ALPHA,
    PV_GRID,
    bev_footprint,
    feature_activation,
    plot_bev_activations,
    plot_boxes_bev,
    plot_boxes_cameras,
    plot_metric_bars,
    plot_pv_activations,
    project_box_edges,
    pv_activation,
)
from fd3d.hub import save_pretrained
from fd3d.modeling import build_model
from tools.visualize import main

PROJECTS = Path(__file__).resolve().parents[2] / "projects"  # detector configs: <Name>/configs/
EXTENT = (-50.0, -50.0, 50.0, 50.0)
NO_PREDICTIONS = (np.zeros((0, 9)), np.zeros(0), np.zeros(0, dtype=np.int64))


def _pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB")).astype(np.int32)


def _quadrants(mask: np.ndarray) -> dict[str, int]:
    """Number of True pixels per image quadrant (rows grow downwards)."""
    height, width = mask.shape
    top, left = slice(0, height // 2), slice(0, width // 2)
    bottom, right = slice(height // 2, height), slice(width // 2, width)
    return {
        "upper_left": int(mask[top, left].sum()),
        "upper_right": int(mask[top, right].sum()),
        "lower_left": int(mask[bottom, left].sum()),
        "lower_right": int(mask[bottom, right].sum()),
    }


# ------------------------------------------------------------------------------------------- arrays


def test_feature_activation_is_min_max_normalised_mean_absolute_value():
    feature = torch.tensor(
        [
            [[1.0, -2.0], [0.0, 4.0]],
            [[-1.0, 4.0], [2.0, -4.0]],
        ]
    )  # |.| mean over channels: [[1, 3], [1, 4]]
    np.testing.assert_allclose(feature_activation(feature), [[0.0, 2.0 / 3.0], [0.0, 1.0]], atol=1e-7)
    np.testing.assert_array_equal(feature_activation(torch.full((3, 2, 5), -7.0)), np.zeros((2, 5)))
    with pytest.raises(ValueError, match=r"\(C, H, W\), got \(2, 2\)"):
        feature_activation(torch.ones(2, 2))


def test_pv_activation_normalises_the_cameras_jointly():
    pv = torch.zeros(2, 1, 1, 2)  # (Ncam, C, h, w)
    pv[0, 0, 0] = torch.tensor([0.0, 4.0])
    pv[1, 0, 0] = torch.tensor([-1.0, 2.0])  # |.| = 1, 2: a quarter and a half of camera 0's peak
    np.testing.assert_allclose(pv_activation(pv), [[[0.0, 1.0]], [[0.25, 0.5]]])


def test_bev_footprint_of_an_axis_aligned_box():
    box = np.array([[10.0, 5.0, 1.0, 2.0, 4.0, 1.5, 0.0, 0.0, 0.0]])  # w 2 across, l 4 along +x
    expected = [[12.0, 6.0], [12.0, 4.0], [8.0, 4.0], [8.0, 6.0]]  # front-left, front-right, back-r, back-l
    np.testing.assert_allclose(bev_footprint(box)[0], expected, atol=1e-12)


def test_bev_footprint_of_a_box_turned_90_degrees():
    box = np.array([[10.0, 5.0, 1.0, 2.0, 4.0, 1.5, math.pi / 2]])  # heading +y, its left is -x
    expected = [[9.0, 7.0], [11.0, 7.0], [11.0, 3.0], [9.0, 3.0]]
    np.testing.assert_allclose(bev_footprint(box)[0], expected, atol=1e-12)


def test_bev_footprint_is_the_top_face_of_the_3d_corners():
    boxes = np.random.default_rng(0).uniform(
        [-40, -40, -2, 0.5, 0.5, 0.5, -4], [40, 40, 2, 3, 12, 4, 4], (5, 7)
    )
    corners = box_corners_lidar(torch.from_numpy(boxes)).numpy()
    np.testing.assert_allclose(bev_footprint(boxes), corners[:, [0, 1, 5, 4], :2], atol=1e-9)
    with pytest.raises(ValueError, match=r"\(N, >=7\)"):
        bev_footprint(np.zeros((2, 6)))


# ------------------------------------------------------------------------------------------ figures


def test_boxes_land_where_they_are(tmp_path):
    gt = np.array([[30.0, 30.0, 0.0, 4.0, 8.0, 2.0, 0.3, 0.0, 0.0]])  # upper right: x > 0, y > 0
    boxes = np.array(
        [
            [-30.0, -30.0, 0.0, 4.0, 8.0, 2.0, 1.0, 0.0, 0.0],  # confident, lower left
            [30.0, -30.0, 0.0, 4.0, 8.0, 2.0, 0.0, 0.0, 0.0],  # below the threshold, lower right
        ]
    )
    predictions = {"model": (boxes, np.array([0.9, 0.1]), np.array([0, 0]))}
    path = plot_boxes_bev(gt, predictions, EXTENT, tmp_path / "boxes.png", score_threshold=0.3)
    rgb = _pixels(path)
    red, green, blue = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    greens = _quadrants((green > 120) & (red < 80) & (blue < 80))
    blues = _quadrants((blue > 150) & (red < 80) & (green < 120))
    assert greens["upper_right"] > 50
    assert greens["lower_left"] == greens["upper_left"] == greens["lower_right"] == 0
    assert blues["lower_left"] > 50
    assert blues["upper_right"] == blues["upper_left"] == blues["lower_right"] == 0


def test_bev_activation_is_drawn_with_x_right_and_y_up(tmp_path):
    activation = np.zeros((4, 4))
    activation[0, 0] = 1.0  # row 0 = lowest y, column 0 = lowest x: the lower-left corner
    path = plot_bev_activations({"a": activation}, EXTENT, tmp_path / "bev.png")
    rgb = _pixels(path)
    hot = _quadrants((rgb[..., 0] > 100) & (rgb[..., 1] < 40) & (rgb[..., 2] < 40))  # jet's dark red
    assert hot["lower_left"] > 500
    assert hot["upper_left"] == 0  # the colorbar's red end is on the right


def test_pv_grid_follows_the_nuscenes_layout(tmp_path):
    colours = np.array(
        [[255, 0, 0], [0, 255, 0], [255, 255, 0], [255, 0, 255], [0, 255, 255], [255, 255, 255]]
    )
    images = np.broadcast_to(colours[:, None, None, :], (6, 90, 160, 3)).astype(np.uint8)
    path = plot_pv_activations(images, np.zeros((6, 6, 10)), tmp_path / "pv.png", title="t")
    rgb = _pixels(path)
    height, width = rgb.shape[:2]
    zero = np.array(colormaps[ACTIVATION_CMAP](0.0)[:3]) * 255
    for r, row in enumerate(PV_GRID):
        for c, camera in enumerate(row):
            expected = (1 - PV_ALPHA) * colours[CAMERA_NAMES.index(camera)] + PV_ALPHA * zero
            centre = rgb[int(height * (r + 0.5) / 2) + 10, int(width * (c + 0.5) / 3)]
            np.testing.assert_allclose(centre, expected, atol=3, err_msg=camera)


# A pinhole looking along LiDAR +x: camera x = -LiDAR y, camera y = -LiDAR z, depth = LiDAR x.
FOCAL, CX, CY = 100.0, 80.0, 45.0
LIDAR2CAM = np.array([[0, -1, 0, 0], [0, 0, -1, 0], [1, 0, 0, 0], [0, 0, 0, 1]], dtype=np.float64)
PINHOLE = np.array([[FOCAL, 0, CX, 0], [0, FOCAL, CY, 0], [0, 0, 1, 0], [0, 0, 0, 1]]) @ LIDAR2CAM


def _by_hand(x: float, y: float, z: float) -> tuple[float, float]:
    return CX + FOCAL * (-y) / x, CY + FOCAL * (-z) / x


def test_box_edges_project_as_a_pinhole_by_hand():
    corners = geometry.box_corners(np.array([10.0, 0.0, 0.0]), np.array([2.0, 2.0, 2.0]), 0.0)
    edges = project_box_edges(corners, PINHOLE)
    assert edges.shape == (len(BOX_EDGES), 2, 2)
    for (a, b), (start, end) in zip(BOX_EDGES, edges, strict=True):
        np.testing.assert_allclose(start, _by_hand(*corners[a]), atol=1e-9)
        np.testing.assert_allclose(end, _by_hand(*corners[b]), atol=1e-9)
    front_top_left = corners[0]  # (+l/2, +w/2, +h/2) = (11, 1, 1): up and left of the centre in the image
    np.testing.assert_allclose(edges[0, 0], (CX - FOCAL / 11, CY - FOCAL / 11))
    np.testing.assert_allclose(front_top_left, (11.0, 1.0, 1.0))


def test_edges_crossing_the_image_plane_are_clipped_and_those_behind_dropped():
    corners = geometry.box_corners(np.zeros(3), np.array([2.0, 2.0, 2.0]), 0.0)  # x from -1 to 1
    edges = project_box_edges(corners, PINHOLE, near=0.1)
    assert len(edges) == len(BOX_EDGES) - 4  # the back face (x = -1) is wholly behind the camera
    side = BOX_EDGES.index((0, 4))  # from (1, 1, 1) to (-1, 1, 1): cut at x = 0.1
    kept = [e for e in BOX_EDGES if not (e[0] >= 4 and e[1] >= 4)]
    start, end = edges[kept.index(BOX_EDGES[side])]
    np.testing.assert_allclose(start, _by_hand(1.0, 1.0, 1.0))
    np.testing.assert_allclose(end, _by_hand(0.1, 1.0, 1.0))


def test_boxes_on_cameras_are_drawn_in_the_camera_that_sees_them(tmp_path):
    behind = PINHOLE * np.array([1, 1, -1, 1])[:, None]  # every LiDAR point with x > 0 behind these
    lidar2img = np.stack([PINHOLE if name == "CAM_FRONT" else behind for name in CAMERA_NAMES])
    images = np.full((6, 90, 160, 3), 128, dtype=np.uint8)
    gt = np.array([[10.0, 0.0, 0.0, 2.0, 2.0, 2.0, 0.0, 0.0, 0.0]])
    prediction = (gt + [0, 0, 0, 1, 1, 1, 0, 0, 0], np.array([0.9]), np.array([0]))
    path = plot_boxes_cameras(images, lidar2img, gt, prediction, tmp_path / "cams.png", title="t")
    rgb = _pixels(path)
    height, width = rgb.shape[:2]
    green = (rgb[..., 1] > 140) & (rgb[..., 0] < 80) & (rgb[..., 2] < 80)
    blue = (rgb[..., 2] > 180) & (rgb[..., 0] < 80) & (rgb[..., 1] < 120)
    front = (slice(0, height // 2), slice(width // 3, 2 * width // 3))
    assert green[front].sum() > 30 and blue[front].sum() > 30
    assert green.sum() == green[front].sum() and blue.sum() == blue[front].sum()


def test_metric_bars_are_as_tall_as_the_metrics(tmp_path):
    path = plot_metric_bars({"a": {"NDS": 0.2}, "b": {"NDS": 0.4}}, tmp_path / "bars.png", keys=("NDS",))
    rgb = _pixels(path)
    first = (np.abs(rgb - colormaps["tab10"](0)[:3] * np.array(255)) < 3).all(-1)  # matplotlib's C0, C1
    second = (np.abs(rgb - colormaps["tab10"](1)[:3] * np.array(255)) < 3).all(-1)
    heights = [
        int(mask.sum(axis=0).max()) for mask in (first, second)
    ]  # tallest column: the bar, not the legend
    assert heights[1] == pytest.approx(2 * heights[0], rel=0.05)
    with pytest.raises(KeyError, match="'a': \\['mAP'\\]"):
        plot_metric_bars({"a": {"NDS": 0.2}}, tmp_path / "bad.png")


# --------------------------------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def model_folders(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("models")
    folders = {}
    for arch in ("BEVFormer", "DETR3D"):
        cfg = load_config(PROJECTS / arch / "configs" / "cpu_apprentice.yaml")
        torch.manual_seed(0)
        folders[arch] = save_pretrained(build_model(cfg).eval(), cfg, root / arch)
    return folders


def _args(dataroot: Path, out: Path, *models: str) -> list[str]:
    args = ["--dataroot", str(dataroot), "--version", "v1.0-mini", "--split", "mini_val"]
    args += ["--sample-index", "0", "--out", str(out)]
    for model in models:
        args += ["--model", model]
    return args


def test_tool_writes_every_figure(mini_dataroot, model_folders, tmp_path, capsys):
    out = tmp_path / "vis"
    models = (f"bevformer={model_folders['BEVFormer']}", f"detr3d={model_folders['DETR3D']}")
    assert main(_args(mini_dataroot, out, *models)) == 0
    names = ["bev_activation.png", "pv_activation_bevformer.png", "pv_activation_detr3d.png"]
    names += ["boxes_cameras_bevformer.png", "boxes_cameras_detr3d.png", "boxes_bev.png"]
    assert sorted(path.name for path in out.iterdir()) == sorted(names)
    assert capsys.readouterr().out.split() == [str(out / name) for name in names]
    for name in names:
        with Image.open(out / name) as image:
            assert image.format == "PNG"
            width, height = image.size
            assert 400 <= width <= 2000 and 250 <= height <= 1000, (name, image.size)


def test_tool_without_a_bev_model_skips_the_bev_figure(mini_dataroot, model_folders, tmp_path, capsys):
    out = tmp_path / "vis"
    assert main(_args(mini_dataroot, out, f"detr3d={model_folders['DETR3D']}")) == 0
    names = ["boxes_bev.png", "boxes_cameras_detr3d.png", "pv_activation_detr3d.png"]
    assert sorted(path.name for path in out.iterdir()) == names
    assert "no bev_activation.png: none of ['detr3d'] has a BEV map" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("spec", "message"),
    [("no-equals-sign", "expected NAME=FOLDER_OR_HUB_ID"), ("a b=folder", "model name 'a b'")],
)
def test_tool_refuses_a_bad_model_argument(spec, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(_args(tmp_path, tmp_path / "vis", spec))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "argument --model" in err and message in err


def test_tool_refuses_a_repeated_model_name(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(_args(tmp_path, tmp_path / "vis", "a=x", "a=y"))
    assert "argument --model: name(s) ['a'] given more than once" in capsys.readouterr().err


def test_tool_reports_a_missing_model_folder_and_a_bad_sample_index(
    mini_dataroot, model_folders, tmp_path, capsys
):
    assert main(_args(mini_dataroot, tmp_path / "vis", f"m={tmp_path / 'absent'}")) == 2
    assert "model folder not found" in capsys.readouterr().err
    args = _args(mini_dataroot, tmp_path / "vis", f"m={model_folders['DETR3D']}")
    args[args.index("--sample-index") + 1] = "99"
    assert main(args) == 2
    assert "sample index 99 out of range: split 'mini_val' has" in capsys.readouterr().err
