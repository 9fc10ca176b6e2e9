"""An official DETR3D checkpoint converted by tools/convert_official_checkpoint.py computes what the
official code computed: the fixtures in ../shared/fixtures/official are outputs of the unmodified official
DETR3D (mmcv 1.4.0, CPU, seeded random weights) on two frames, with its checkpoint, config and inputs."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from fd3d.config import distill_config, load_config
from fd3d.data.dataset import NuScenesDataset, collate_samples
from fd3d.distill import build_training_model
from fd3d.hub import from_pretrained
from tools.check_official_parity import main as check
from tools.convert_official_checkpoint import main as convert

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "official"
pytestmark = pytest.mark.skipif(not FIXTURES.is_dir(), reason=f"official fixtures not found at {FIXTURES}")
SIN, COS = 6, 7


def _wrap(angle: torch.Tensor) -> torch.Tensor:
    return torch.atan2(angle.sin(), angle.cos())


@pytest.fixture(scope="module")
def converted(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("official") / "detr3d"
    image_size = ["--image-size", "90", "160"]  # the fixture's unpadded size (ori_shape)
    args = ["--checkpoint", str(FIXTURES / "detr3d_state_dict.pth"), "--official-config"]
    assert convert([*args, str(FIXTURES / "detr3d_config.py"), "--out", str(out), *image_size]) == 0
    return out


@pytest.fixture(scope="module")
def official() -> tuple[dict, dict]:
    inputs = torch.load(FIXTURES / "detr3d_inputs.pt", weights_only=False)
    outputs = torch.load(FIXTURES / "detr3d_outputs.pt", weights_only=False)
    return inputs, outputs


def _batch(inputs: dict, frame: int) -> dict:
    """The fixture's normalised, padded images without their padding rows: fd3d pads them itself."""
    height = inputs["img_metas"][frame]["ori_shape"][0][0]
    lidar2img = torch.as_tensor(inputs["img_metas"][frame]["lidar2img"]).float()[None]
    return {"normalized_images": inputs["img"][frame][..., :height, :], "lidar2img": lidar2img}


@pytest.mark.parametrize("frame", [0, 1])
def test_converted_detr3d_matches_the_official_outputs(converted, official, frame):
    inputs, outputs = official
    reference = outputs["frames"][frame]
    model = from_pretrained(str(converted))
    with torch.no_grad():
        features = model.extract_features(_batch(inputs, frame))
        head = model.forward_head(features, _batch(inputs, frame))
        prediction = model.predict(head)[0]
    for level, (ours, theirs) in enumerate(zip(features.pv, reference["img_feats"], strict=True)):
        torch.testing.assert_close(ours[0], theirs, atol=1e-4, rtol=0, msg=f"FPN level {level}")
    torch.testing.assert_close(head.cls_logits, reference["all_cls_scores"], atol=1e-4, rtol=0)
    # fd3d's code carries (sin, cos) of the nuScenes yaw: the official (sin, cos) swapped and negated
    theirs = reference["all_bbox_preds"].clone()
    theirs[..., SIN], theirs[..., COS] = (
        -reference["all_bbox_preds"][..., COS],
        -reference["all_bbox_preds"][..., SIN],
    )
    torch.testing.assert_close(head.box_code, theirs, atol=1e-4, rtol=0)

    assert torch.equal(prediction["labels"], reference["labels_3d"])
    torch.testing.assert_close(prediction["scores"], reference["scores_3d"], atol=1e-6, rtol=0)
    boxes = prediction["boxes_lidar"]
    official_boxes = reference["boxes_3d"]  # mmdet3d 0.17: z at the bottom, yaw with heading (-sin, -cos)
    torch.testing.assert_close(boxes[:, :2], official_boxes[:, :2], atol=1e-4, rtol=0)
    torch.testing.assert_close(boxes[:, 2] - boxes[:, 5] / 2, official_boxes[:, 2], atol=1e-4, rtol=0)
    torch.testing.assert_close(boxes[:, 3:6], official_boxes[:, 3:6], atol=1e-4, rtol=1e-5)
    yaw_difference = _wrap(boxes[:, 6] - (-official_boxes[:, 6] - math.pi / 2))
    assert yaw_difference.abs().max() < 1e-4
    torch.testing.assert_close(boxes[:, 7:9], official_boxes[:, 7:9], atol=1e-4, rtol=0)


def _check(converted: Path, *extra: str) -> int:
    args = ["--model", str(converted), "--inputs", str(FIXTURES / "detr3d_inputs.pt")]
    return check([*args, "--reference", str(FIXTURES / "detr3d_outputs.pt"), *extra])


def test_parity_tool_passes_fails_beyond_tolerance_and_dumps_the_reference_layout(
    converted, official, tmp_path, capsys
):
    dump = tmp_path / "fd3d_outputs.pt"
    assert _check(converted, "--dump", str(dump)) == 0
    assert capsys.readouterr().out.rstrip().endswith("parity holds (tolerance 0.0001)")
    assert _check(converted, "--tolerance", "1e-9") == 1  # float32 rounding is above 1e-9 somewhere
    assert "parity FAILED" in capsys.readouterr().out
    frames = torch.load(dump, weights_only=False)["frames"]
    reference = official[1]["frames"]
    for ours, theirs in zip(frames, reference, strict=True):
        assert set(theirs) - {"img_feats"} <= set(ours) | {"stubbed_ops_called"}
        torch.testing.assert_close(ours["boxes_3d"], theirs["boxes_3d"], atol=1e-4, rtol=0)  # 0.17 convention


def test_converted_official_expert_drives_a_distillation_step(converted, mini_dataroot, tmp_path):
    # the apprentice at half the expert's padded input (96x160), so their FPN levels are 2x apart
    overrides = [
        "DISTILL.EXPERT.WEIGHTS",
        str(converted),
        "OUTPUT_DIR",
        str(tmp_path / "run"),
        "INPUT.IMAGE_SIZE",
        "[48, 80]",
    ]
    cfg = load_config(distill_config("detr3d_cpu", "fd3d"), overrides)
    model = build_training_model(cfg).train()
    assert model.expert_cfg.INPUT.FORMAT == "BGR" and model.expert_cfg.INPUT.SIZE_DIVISIBILITY == 32
    batch = collate_samples([NuScenesDataset(mini_dataroot, "v1.0-mini", "mini_train", (90, 160))[0]])
    losses = model(batch)
    assert any(name.startswith("loss_kd_smgd") for name in losses), sorted(losses)
    assert any(name.startswith("loss_kd_qfd") for name in losses), sorted(losses)
    assert all(value.isfinite() for value in losses.values())
    sum(losses.values()).backward()
    assert all(p.grad is None for p in model.expert.parameters())


def test_a_written_fd3d_config_converts_the_same_checkpoint_identically(converted, tmp_path, capsys):
    """--write-config turns the official config into an fd3d YAML; --config-file then replaces it."""
    written = tmp_path / "configs" / "official_fixture.yaml"
    official = ["--official-config", str(FIXTURES / "detr3d_config.py"), "--image-size", "90", "160"]
    assert convert([*official, "--write-config", str(written)]) == 0
    assert "_BASE_:" in written.read_text() and "STYLE: caffe" in written.read_text()
    out = tmp_path / "from_yaml"
    args = ["--checkpoint", str(FIXTURES / "detr3d_state_dict.pth"), "--config-file", str(written)]
    assert convert([*args, "--out", str(out)]) == 0
    first, second = from_pretrained(str(converted)), from_pretrained(str(out))
    assert first.state_dict().keys() == second.state_dict().keys()
    second_state = second.state_dict()
    assert all(torch.equal(value, second_state[key]) for key, value in first.state_dict().items())
    assert "fd3d config `official_fixture.yaml`" in (out / "README.md").read_text()
