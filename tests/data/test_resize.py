"""INPUT.RESIZE: "cv2_bilinear" is mmcv.imresize's bilinear at half-pixel centres without antialiasing, in
the data loader and in the model alike; checked against a naive loop of that formula."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from fd3d.data.nuscenes import decode_row
from fd3d.data.resize import resize_image
from fd3d.modeling.detector import resize_inputs


def naive_bilinear(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear sampling at source coordinate (dst + 0.5) * scale - 0.5, clamped at the borders."""
    src_h, src_w = image.shape[:2]
    out = np.zeros((height, width, image.shape[2]))
    for y in range(height):
        sy = min(max((y + 0.5) * src_h / height - 0.5, 0.0), src_h - 1)
        y0 = int(np.floor(sy))
        y1, fy = min(y0 + 1, src_h - 1), sy - y0
        for x in range(width):
            sx = min(max((x + 0.5) * src_w / width - 0.5, 0.0), src_w - 1)
            x0 = int(np.floor(sx))
            x1, fx = min(x0 + 1, src_w - 1), sx - x0
            top = (1 - fx) * image[y0, x0] + fx * image[y0, x1]
            bottom = (1 - fx) * image[y1, x0] + fx * image[y1, x1]
            out[y, x] = (1 - fy) * top + fy * bottom
    return out


@pytest.fixture
def image() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, size=(36, 64, 3), dtype=np.uint8)


def test_cv2_bilinear_is_half_pixel_bilinear_without_antialiasing(image):
    expected = naive_bilinear(image.astype(np.float64), 9, 16)  # a 4x shrink: 2 of every 4 pixels weigh
    found = resize_image(Image.fromarray(image), (9, 16), "cv2_bilinear").astype(np.float64)
    assert np.abs(found - expected).max() <= 1.0  # OpenCV's fixed-point weights round to a grey level
    antialiased = resize_image(Image.fromarray(image), (9, 16), "antialias").astype(np.float64)
    assert np.abs(antialiased - expected).mean() > 10  # the default widens the filter: another image


def test_the_model_resizes_as_the_loader_does(image):
    expected = naive_bilinear(image.astype(np.float64), 9, 16)
    images = torch.from_numpy(image).permute(2, 0, 1).double()[None, None]  # (1, 1, 3, H, W)
    resized, lidar2img = resize_inputs(images, torch.eye(4, dtype=torch.float64)[None, None], (9, 16), False)
    np.testing.assert_allclose(resized[0, 0].permute(1, 2, 0).numpy(), expected, atol=1e-9)
    np.testing.assert_allclose(torch.diagonal(lidar2img[0, 0]).numpy(), [16 / 64, 9 / 36, 1, 1])


def test_decode_row_resizes_by_the_mode_and_scales_the_intrinsics_alike(image):
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    eye = np.eye(4).tolist()
    row = {
        "sample_token": "s", "scene_token": "c", "timestamp": 0, "prev_token": "",
        "lidar2ego": eye, "ego2global": eye, "prev_lidar2global": eye,
        "images": [{"bytes": buffer.getvalue(), "path": "cam.png"}],
        "cam_intrinsics": [np.diag([50.0, 50.0, 1.0]).tolist()],
        "cam_sensor2ego": [eye], "cam_ego2global": [eye],
        "gt_boxes": [], "gt_names": [],
    }  # fmt: skip
    decoded = {mode: decode_row(row, (9, 16), resize=mode) for mode in ("antialias", "cv2_bilinear")}
    np.testing.assert_array_equal(
        decoded["cv2_bilinear"]["images"][0], resize_image(Image.fromarray(image), (9, 16), "cv2_bilinear")
    )
    assert not np.array_equal(decoded["antialias"]["images"], decoded["cv2_bilinear"]["images"])
    np.testing.assert_array_equal(decoded["antialias"]["intrinsics"], decoded["cv2_bilinear"]["intrinsics"])
    with pytest.raises(
        ValueError, match=r"INPUT.RESIZE must be one of \['antialias', 'cv2_bilinear'\], got 'box'"
    ):
        decode_row(row, (9, 16), resize="box")
