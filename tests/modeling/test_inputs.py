"""What a detector does to its input images: channel order, normalisation, padding and the image size its
projections divide by (INPUT.FORMAT, MODEL.PIXEL_*, INPUT.SIZE_DIVISIBILITY), checked by hand."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from fd3d.config import load_config
from fd3d.modeling import build_model
from fd3d.modeling.detector import pad_to_multiple

PROJECTS = Path(__file__).resolve().parents[2] / "projects"  # detector configs: <Name>/configs/


def _detector(*overrides: str):
    cfg = load_config(
        PROJECTS / "DETR3D" / "configs" / "cpu_apprentice.yaml", ["INPUT.IMAGE_SIZE", "[90, 160]", *overrides]
    )
    torch.manual_seed(0)
    return build_model(cfg).eval()


def _batch() -> dict:
    images = torch.zeros(1, 6, 3, 90, 160, dtype=torch.uint8)
    images[:, :, 0], images[:, :, 1], images[:, :, 2] = 10, 20, 30  # R, G, B
    return {"images": images, "lidar2img": torch.eye(4).expand(1, 6, 4, 4).clone()}


def test_bgr_format_reorders_channels_before_the_statistics():
    model = _detector(
        "INPUT.FORMAT", "BGR", "MODEL.PIXEL_MEAN", "[1.0, 2.0, 3.0]", "MODEL.PIXEL_STD", "[1.0, 1.0, 2.0]"
    )
    normalized = model.normalized_images(_batch())
    expected = torch.tensor([30 - 1.0, 20 - 2.0, (10 - 3.0) / 2])  # B, G, R
    torch.testing.assert_close(normalized[0, 0, :, 0, 0], expected)
    rgb = _detector("MODEL.PIXEL_MEAN", "[1.0, 2.0, 3.0]", "MODEL.PIXEL_STD", "[1.0, 1.0, 2.0]")
    torch.testing.assert_close(
        rgb.normalized_images(_batch())[0, 0, :, 0, 0], torch.tensor([9.0, 18.0, 13.5])
    )


def test_normalized_images_are_used_as_given_and_must_be_float():
    model = _detector()
    given = torch.randn(1, 6, 3, 90, 160)
    assert model.normalized_images({"normalized_images": given}) is given
    with pytest.raises(TypeError, match="normalized_images must be float"):
        model.normalized_images({"normalized_images": given.to(torch.uint8)})


def test_padding_is_zero_at_the_bottom_right_and_the_geometry_uses_the_padded_size():
    images = torch.ones(2, 3, 90, 150)
    padded = pad_to_multiple(images, 32)
    assert padded.shape[-2:] == (96, 160)
    assert torch.equal(padded[..., :90, :150], images) and padded[..., 90:, :].abs().sum() == 0
    assert padded[..., 150:].abs().sum() == 0
    assert pad_to_multiple(images, 0) is images
    pv, geometry = _detector("INPUT.SIZE_DIVISIBILITY", "32").encode_images(_batch())
    assert geometry.image_size == (96, 160)
    _, unpadded = _detector().encode_images(_batch())
    assert unpadded.image_size == (90, 160)
    assert pv[0].shape[-2:] == (96 // 8, 160 // 8)  # the features span the padded image
