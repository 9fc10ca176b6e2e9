"""fd3d.official without the parity numbers: the mmcv config reader, the yaw conversion, and every way a
conversion must refuse (unused, unfilled or mis-shaped weights; unsupported options; unknown models)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from fd3d.modeling.backbone import ModulatedDeformConv2d
from fd3d.official import OfficialConfigError, load_official_config
from fd3d.official.convert import yaw_code_to_nuscenes
from tools.convert_official_checkpoint import main as convert

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "official"
needs_fixtures = pytest.mark.skipif(
    not FIXTURES.is_dir(), reason=f"official fixtures not found at {FIXTURES}"
)


def test_config_reader_merges_the_base_chain_and_honours_delete(tmp_path):
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "model.py").write_text("model = dict(a=1, b=dict(c=2, d=3))\nlr = 0.1\n")
    (tmp_path / "child.py").write_text("_base_ = ['./base/model.py']\nmodel = dict(b=dict(c=5))\n")
    (tmp_path / "replace.py").write_text(
        "_base_ = './base/model.py'\nmodel = dict(b=dict(_delete_=True, c=5))\n"
    )
    assert load_official_config(tmp_path / "child.py") == {
        "model": {"a": 1, "b": {"c": 5, "d": 3}},
        "lr": 0.1,
    }
    assert load_official_config(tmp_path / "replace.py")["model"] == {"a": 1, "b": {"c": 5}}


def test_config_reader_names_a_missing_base(tmp_path):
    (tmp_path / "child.py").write_text("_base_ = ['../nowhere/base.py']\n")
    with pytest.raises(OfficialConfigError, match="names _base_ '../nowhere/base.py'"):
        load_official_config(tmp_path / "child.py")


def test_yaw_rows_turn_the_mmdet3d_yaw_into_the_heading_angle():
    torch.manual_seed(0)
    weight, bias, query = torch.randn(10, 16), torch.randn(10), torch.randn(200, 16)
    official = query @ weight.T + bias
    converted = query @ yaw_code_to_nuscenes(weight).T + yaw_code_to_nuscenes(bias)
    yaw_017 = torch.atan2(official[:, 6], official[:, 7])
    heading = -yaw_017 - math.pi / 2  # mmdet3d 0.17: heading (-sin yaw, -cos yaw)
    ours = torch.atan2(converted[:, 6], converted[:, 7])
    assert torch.atan2((ours - heading).sin(), (ours - heading).cos()).abs().max() < 1e-5
    torch.testing.assert_close(converted[:, :6], official[:, :6])
    torch.testing.assert_close(converted[:, 8:], official[:, 8:])


def _convert(tmp_path: Path, state: dict | None = None, config_lines: str = "") -> int:
    checkpoint = FIXTURES / "detr3d_state_dict.pth"
    if state is not None:
        checkpoint = tmp_path / "changed.pth"
        torch.save({"meta": {}, "state_dict": state}, checkpoint)
    config = tmp_path / "config.py"
    config.write_text((FIXTURES / "detr3d_config.py").read_text() + "\n" + config_lines)
    args = ["--checkpoint", str(checkpoint), "--official-config", str(config), "--out", str(tmp_path / "out")]
    return convert([*args, "--image-size", "90", "160"])


def _state() -> dict:
    return torch.load(FIXTURES / "detr3d_state_dict.pth", weights_only=True)["state_dict"]


WEIGHT_CHANGES = {
    "unused": (lambda s: s.update({"pts_bbox_head.extra.weight": torch.zeros(1)}), "entries left unused (1)"),
    "unfilled": (
        lambda s: s.pop("img_neck.fpn_convs.3.conv.bias"),
        "parameters left unfilled (1):\n    neck.fpn.extra_blocks.convs.0.bias",
    ),
    "shape": (
        lambda s: s.update({"pts_bbox_head.cls_branches.1.6.weight": torch.zeros(9, 64)}),
        "head.cls_branches.1.6.weight: converted (9, 64) vs fd3d (10, 64)",
    ),
}
CONFIG_CHANGES = {
    "box-refine": (
        "model['pts_bbox_head']['with_box_refine'] = False",
        "model.pts_bbox_head.with_box_refine = False is not supported",
    ),
    "avg-down": (
        "model['img_backbone']['avg_down'] = True",
        "model.img_backbone.avg_down = True is not supported",
    ),
    "unknown-option": (
        "model['img_neck']['upsample_factor'] = 3",
        "model.img_neck: options fd3d does not support: ['upsample_factor']",
    ),
    "model-type": (
        "model['type'] = 'PETR'",
        "'PETR' has no fd3d converter; converters exist for ['BEVFormer', 'Detr3D']",
    ),
    "class-order": ("class_names = class_names[::-1]", "differ from fd3d's nuScenes classes"),
}


@needs_fixtures
@pytest.mark.parametrize(("change", "message"), WEIGHT_CHANGES.values(), ids=WEIGHT_CHANGES)
def test_weights_that_do_not_fill_the_model_exactly_are_refused(tmp_path, capsys, change, message):
    state = _state()
    change(state)
    assert _convert(tmp_path, state) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@needs_fixtures
@pytest.mark.parametrize(("lines", "message"), CONFIG_CHANGES.values(), ids=CONFIG_CHANGES)
def test_options_fd3d_does_not_implement_are_refused_by_name(tmp_path, capsys, lines, message):
    assert _convert(tmp_path, config_lines=lines) == 2
    assert message in capsys.readouterr().err


class _Arbitrary:
    """A class a weights-only load must refuse to construct."""


@needs_fixtures
@pytest.mark.parametrize("kind", ["truncated", "arbitrary-class", "bevformer-config"])
def test_unreadable_or_mismatched_input_is_a_named_error_and_writes_nothing(tmp_path, capsys, kind):
    checkpoint, config = tmp_path / "bad.pth", FIXTURES / "detr3d_config.py"
    if kind == "truncated":
        checkpoint.write_bytes((FIXTURES / "detr3d_state_dict.pth").read_bytes()[:4096])
        message = "could not read checkpoint"
    elif kind == "arbitrary-class":
        torch.save({"state_dict": {"x": torch.zeros(1)}, "meta": _Arbitrary()}, checkpoint)
        message = "could not read checkpoint"
    else:
        checkpoint, config = FIXTURES / "detr3d_state_dict.pth", FIXTURES / "bevformer_config.py"
        message = "fd3d parameters left unfilled"
    args = ["--checkpoint", str(checkpoint), "--official-config", str(config), "--out", str(tmp_path / "out")]
    assert convert(args) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_dcn_with_mmcv_semantics_on_hand_built_tensors():
    """mmcv's ModulatedDeformConv2dPack: offsets are (dy, dx) per kernel point, then the mask logits, and the
    mask is sigmoid(m): a constant dx = +1 reads one pixel to the right; mask logits 0 halve the output."""
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(2, 3, 3, padding=1, bias=False)
    dcn = ModulatedDeformConv2d.from_conv(conv, mask_scale=1.0)
    image = torch.randn(1, 2, 8, 8)
    with torch.no_grad():
        dcn.conv_offset.bias[:18].view(9, 2)[:, 1] = 1.0  # dx = +1 for every kernel point, dy = 0
        dcn.conv_offset.bias[18:] = 0.0  # mask logits 0 -> sigmoid 0.5
        shifted = torch.nn.functional.pad(image[..., 1:], (0, 1))  # image[x + 1], zero beyond the border
        # column 0 differs: the shifted conv's left padding hides image[0], which the DCN reads
        torch.testing.assert_close(dcn(image)[..., 1:], 0.5 * conv(shifted)[..., 1:], atol=1e-5, rtol=0)
        dcn.conv_offset.bias.zero_()
        torch.testing.assert_close(dcn(image), 0.5 * conv(image), atol=1e-6, rtol=0)
        assert ModulatedDeformConv2d.from_conv(conv)(image).allclose(
            conv(image), atol=1e-6
        )  # fd3d's 2*sigmoid
