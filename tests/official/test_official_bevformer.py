"""An official BEVFormer checkpoint converted by tools/convert_official_checkpoint.py computes what the
official code computed: ../shared/fixtures/official holds the unmodified official BEVFormer's outputs
(mmcv 1.4.0, CPU, seeded random weights) on two frames of one scene, the second using the first's BEV."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import torch

from fd3d.config import load_config
from fd3d.data.can_bus import relative_can_bus
from fd3d.engine.trainer import evaluate_only
from fd3d.hub import from_pretrained, load_pretrained_config
from fd3d.official.parity import run_frames
from tools.check_official_parity import main as check
from tools.convert_official_checkpoint import main as convert

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "official"
pytestmark = pytest.mark.skipif(not FIXTURES.is_dir(), reason=f"official fixtures not found at {FIXTURES}")
SIN, COS = 6, 7
IMAGE_SIZE = ["--image-size", "90", "160"]  # the fixture's unpadded size (ori_shape); padded to 96x160


def _convert(out: Path, config: Path, checkpoint: Path = FIXTURES / "bevformer_state_dict.pth") -> int:
    args = ["--checkpoint", str(checkpoint), "--official-config", str(config), "--out", str(out)]
    return convert([*args, *IMAGE_SIZE])


@pytest.fixture(scope="module")
def converted(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("official") / "bevformer"
    assert _convert(out, FIXTURES / "bevformer_config.py") == 0
    return out


@pytest.fixture(scope="module")
def official() -> tuple[dict, dict]:
    inputs = torch.load(FIXTURES / "bevformer_inputs.pt", weights_only=False)
    outputs = torch.load(FIXTURES / "bevformer_outputs.pt", weights_only=False)
    return inputs, outputs


def _wrap(angle: torch.Tensor) -> torch.Tensor:
    return torch.atan2(angle.sin(), angle.cos())


def _batch(inputs: dict, frame: int) -> dict:
    """One frame as fd3d takes it: the normalised images without their padding rows (fd3d pads them
    itself), lidar2img, and the absolute CAN-bus vector in float64 (global positions)."""
    meta = inputs["img_metas"][frame]
    height = meta["ori_shape"][0][0]
    return {
        "normalized_images": inputs["img"][frame][..., :height, :],
        "lidar2img": torch.as_tensor(meta["lidar2img"]).float()[None],
        "can_bus": torch.as_tensor(meta["can_bus"], dtype=torch.float64)[None],
    }


def test_converted_config_carries_the_official_mechanisms(converted):
    bev = from_pretrained(str(converted)).encoder
    assert (bev.bev_h, bev.bev_w, len(bev.layers), bev.alignment, bev.tsa_value) == (
        20,
        20,
        2,
        "rotate_shift",
        "input_query",
    )
    assert bev.rotate_center == (100.0, 100.0) and bev.can_bus_mlp is not None
    # official pillar heights: linspace(0.5, Z - 0.5, 4) of the 8 m range from z0 = -5
    heights = bev.pillars[0, :, 2]
    torch.testing.assert_close(heights, torch.tensor([-4.5, -13 / 6, 1 / 6, 2.5]), atol=1e-6, rtol=0)


def test_converted_model_evaluates_with_the_official_temporal_protocol(
    converted, mini_dataroot, tmp_path, monkeypatch
):
    """`--eval-only` on a converted checkpoint steps each scene with one BEV carried (TEST.TEMPORAL_PROTOCOL
    "scene", set by the converter): the BEV encoder runs once per sample, not QUEUE_LENGTH + 1 times."""
    cfg, folder = load_pretrained_config(str(converted))
    assert cfg.TEST.TEMPORAL_PROTOCOL == "scene" and cfg.MODEL.BEVFORMER.QUEUE_LENGTH > 0
    assert cfg.INPUT.RESIZE == "cv2_bilinear"  # the official pipeline's mmcv.imresize
    encoder, encodings = type(from_pretrained(str(converted)).encoder), []
    forward = encoder.forward
    monkeypatch.setattr(
        encoder, "forward", lambda self, *a, **k: encodings.append(1) or forward(self, *a, **k)
    )
    overrides = [
        "MODEL.WEIGHTS",
        str(converted),
        "DATASETS.DATAROOT",
        str(mini_dataroot),
        "DATASETS.VERSION",
        "v1.0-mini",
        "DATASETS.TEST_SPLIT",
        "mini_val",
        "OUTPUT_DIR",
        str(tmp_path / "eval"),
    ]
    metrics = evaluate_only(load_config(None, overrides))
    assert 0.0 <= metrics["NDS"] <= 1.0 and len(encodings) == 6  # mini_val: 2 scenes x 3 keyframes


def test_both_frames_match_the_official_outputs_with_the_bev_chained(converted, official):
    inputs, outputs = official
    model = from_pretrained(str(converted)).eval()
    previous = None
    for frame, reference in enumerate(outputs["frames"]):
        batch = _batch(inputs, frame)
        if previous is not None:  # official forward_test: the scene goes on, its last BEV is the history
            batch.update(prev_bev=previous["bev"], prev_can_bus=previous["can_bus"])
            batch["prev_exists"] = torch.ones(1, dtype=torch.bool)
            prev_embed = previous["bev"][0].flatten(1).T[:, None]
            torch.testing.assert_close(prev_embed, reference["prev_bev_in"], atol=1e-4, rtol=0)
        seen = relative_can_bus(
            batch["can_bus"], batch.get("prev_can_bus"), torch.tensor([previous is not None])
        )
        torch.testing.assert_close(seen[0], reference["can_bus_used"], atol=1e-9, rtol=0)
        with torch.no_grad():
            features = model.extract_features(batch)
            head = model.forward_head(features, batch)
            prediction = model.predict(head)[0]
        bev_embed = features.bev[0].flatten(1).T[:, None]  # (H*W, 1, C), row h*W + w
        torch.testing.assert_close(bev_embed, reference["bev_embed"], atol=1e-4, rtol=0)
        torch.testing.assert_close(head.cls_logits, reference["all_cls_scores"], atol=1e-4, rtol=0)
        theirs = reference["all_bbox_preds"].clone()  # fd3d's (sin, cos): the official pair swapped, negated
        theirs[..., SIN], theirs[..., COS] = -reference["all_bbox_preds"][..., COS], -theirs[..., SIN]
        torch.testing.assert_close(head.box_code, theirs, atol=1e-4, rtol=0)

        assert torch.equal(prediction["labels"], reference["labels_3d"])
        torch.testing.assert_close(prediction["scores"], reference["scores_3d"], atol=1e-6, rtol=0)
        boxes, official_boxes = prediction["boxes_lidar"], reference["boxes_3d"]  # mmdet3d 0.17: z bottom
        torch.testing.assert_close(boxes[:, :2], official_boxes[:, :2], atol=1e-4, rtol=0)
        torch.testing.assert_close(boxes[:, 2] - boxes[:, 5] / 2, official_boxes[:, 2], atol=1e-4, rtol=0)
        torch.testing.assert_close(boxes[:, 3:6], official_boxes[:, 3:6], atol=1e-4, rtol=1e-5)
        assert _wrap(boxes[:, 6] - (-official_boxes[:, 6] - math.pi / 2)).abs().max() < 1e-4
        torch.testing.assert_close(boxes[:, 7:9], official_boxes[:, 7:9], atol=1e-4, rtol=0)
        previous = {"bev": features.bev, "can_bus": batch["can_bus"]}


def _check(converted: Path, *extra: str) -> int:
    args = ["--model", str(converted), "--inputs", str(FIXTURES / "bevformer_inputs.pt")]
    return check([*args, "--reference", str(FIXTURES / "bevformer_outputs.pt"), *extra])


def test_parity_tool_runs_the_official_temporal_protocol(converted, official, tmp_path, capsys):
    dump = tmp_path / "fd3d_outputs.pt"
    assert _check(converted, "--dump", str(dump)) == 0
    printed = capsys.readouterr().out
    assert printed.rstrip().endswith("parity holds (tolerance 0.0001)")
    assert re.search(r"prev_bev_in\s+\S+", printed) and re.search(r"can_bus_used\s+0\.00e\+00", printed)
    frames = torch.load(dump, weights_only=False)["frames"]
    for ours, theirs in zip(frames, official[1]["frames"], strict=True):
        assert set(theirs) - {"img_feats", "stubbed_ops_called"} <= set(ours)
        torch.testing.assert_close(ours["boxes_3d"], theirs["boxes_3d"], atol=1e-4, rtol=0)


def test_a_new_scene_starts_without_history(converted, official):
    """forward_test drops prev_bev when scene_token changes: frame 1 of another scene is frame 1 alone."""
    inputs, _ = official
    model = from_pretrained(str(converted)).eval()
    second_scene = {
        **inputs,
        "img_metas": [inputs["img_metas"][0], {**inputs["img_metas"][1], "scene_token": "b"}],
    }
    alone = {**inputs, "img": inputs["img"][1:], "img_metas": inputs["img_metas"][1:]}
    chained, (fresh,) = run_frames(model, second_scene)[1], run_frames(model, alone)
    assert chained["prev_bev_in"] is None
    assert chained["can_bus_used"][[0, 1, 2, 17]].abs().max() == 0
    assert torch.equal(chained["bev_embed"], fresh["bev_embed"])
    in_scene = run_frames(model, inputs)[1]
    assert (in_scene["bev_embed"] - fresh["bev_embed"]).abs().max() > 1e-2  # the history matters


def _fixture_config(tmp_path: Path, *lines: str) -> Path:
    config = tmp_path / "bevformer_config.py"
    config.write_text((FIXTURES / "bevformer_config.py").read_text() + "\n" + "\n".join(lines) + "\n")
    return config


TRANSFORMER = "model['pts_bbox_head']['transformer']"
ENCODER_LAYER = f"{TRANSFORMER}['encoder']['transformerlayers']"
CONFIG_CHANGES = {
    "tsa-levels": (
        f"{ENCODER_LAYER}['attn_cfgs'][0]['num_levels'] = 4",
        "attn_cfgs[0].num_levels = 4 is not supported (fd3d implements 1)",
    ),
    "cams-embeds": (f"{TRANSFORMER}['use_cams_embeds'] = False", "use_cams_embeds = False is not supported"),
    "heads": (
        f"{ENCODER_LAYER}['attn_cfgs'][1]['deformable_attention']['num_heads'] = 4",
        "deformable_attention.num_heads = 4: fd3d uses one head count",
    ),
    "unknown": (
        f"{TRANSFORMER}['encoder']['use_magic'] = 1",
        "encoder: options fd3d does not support: ['use_magic']",
    ),
    "pc-range": (
        f"{TRANSFORMER}['encoder']['pc_range'] = [-50, -50, -5, 50, 50, 3]",
        "differs from the coder's",
    ),
    "order": (
        f"{ENCODER_LAYER}['operation_order'] = ('self_attn', 'norm', 'cross_attn', 'norm', 'ffn')",
        "operation_order ('self_attn', 'norm', 'cross_attn', 'norm', 'ffn') is not supported",
    ),
}


@pytest.mark.parametrize(("line", "message"), CONFIG_CHANGES.values(), ids=CONFIG_CHANGES)
def test_bevformer_options_fd3d_does_not_implement_are_refused_by_name(tmp_path, capsys, line, message):
    assert _convert(tmp_path / "out", _fixture_config(tmp_path, line)) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def _resized_state(bev_hw: tuple[int, int], queries: int, encoder_layers: int, decoder_layers: int) -> dict:
    """The fixture's weights reshaped to another architecture (a single-level neck; random where new)."""
    state = torch.load(FIXTURES / "bevformer_state_dict.pth", weights_only=True)["state_dict"]
    generator = torch.Generator().manual_seed(0)
    head = "pts_bbox_head"
    dims = state[f"{head}.bev_embedding.weight"].shape[1]
    counts = {"encoder": encoder_layers, "decoder": decoder_layers}
    resized = {}
    for key, value in state.items():
        if re.fullmatch(r"img_neck\.(lateral|fpn)_convs\.[013]\.conv\.\w+", key):
            continue  # one FPN level: the neck reads layer4 only (official index 2 becomes 0)
        key = key.replace("_convs.2.", "_convs.0.")
        layer = re.search(r"\.(encoder|decoder|cls_branches|reg_branches)\D*?(\d+)\.", key)
        if layer is None:
            resized[key] = value
            continue
        count = counts["encoder" if layer[1] == "encoder" else "decoder"]
        for index in range(int(layer[2]), count, 2):  # the fixture's 2 layers repeated as often as needed
            start, end = layer.span(2)
            resized[key[:start] + str(index) + key[end:]] = value
    for layer in range(encoder_layers):  # spatial cross-attention of one camera level instead of four
        prefix = f"{head}.transformer.encoder.layers.{layer}.attentions.1.deformable_attention"
        for name, per_level in (("sampling_offsets", 16), ("attention_weights", 8)):
            for part in ("weight", "bias"):
                tensor = resized[f"{prefix}.{name}.{part}"]
                resized[f"{prefix}.{name}.{part}"] = tensor.unflatten(0, (8, 4, per_level))[:, :1].flatten(
                    0, 2
                )
    height, width = bev_hw
    resized[f"{head}.transformer.level_embeds"] = state[f"{head}.transformer.level_embeds"][:1]
    for key, shape in (
        (f"{head}.bev_embedding.weight", (height * width, dims)),
        (f"{head}.positional_encoding.row_embed.weight", (height, dims // 2)),
        (f"{head}.positional_encoding.col_embed.weight", (width, dims // 2)),
        (f"{head}.query_embedding.weight", (queries, 2 * dims)),
    ):
        resized[key] = torch.randn(shape, generator=generator)
    return resized


def test_other_architectures_convert_completely_from_config_and_weights_alone(official, tmp_path):
    """Non-square BEV, other query and layer counts, a single-level neck: nothing is fitted to the fixture."""
    lines = [
        "model['img_backbone']['out_indices'] = (3,)",
        "model['img_neck'].update(in_channels=[512], num_outs=1)",
        "model['pts_bbox_head'].update(bev_h=12, bev_w=18, num_query=30)",
        "model['pts_bbox_head']['positional_encoding'].update(row_num_embed=12, col_num_embed=18)",
        f"{TRANSFORMER}.update(num_feature_levels=1, rotate_center=[9, 6])",
        f"{TRANSFORMER}['encoder']['num_layers'] = 3",
        f"{TRANSFORMER}['decoder']['num_layers'] = 1",
        f"{ENCODER_LAYER}['attn_cfgs'][1]['deformable_attention']['num_levels'] = 1",
    ]
    checkpoint = tmp_path / "resized.pth"
    torch.save({"meta": {}, "state_dict": _resized_state((12, 18), 30, 3, 1)}, checkpoint)
    out = tmp_path / "out"
    assert _convert(out, _fixture_config(tmp_path, *lines), checkpoint) == 0
    model = from_pretrained(str(out)).eval()
    assert (model.encoder.bev_h, model.encoder.bev_w, len(model.encoder.layers)) == (12, 18, 3)
    assert model.encoder.level_embeds.shape == (1, 64) and model.head.query_pos.weight.shape == (30, 64)
    frames = run_frames(model, official[0])
    assert frames[1]["bev_embed"].shape == (12 * 18, 1, 64) and frames[1]["all_cls_scores"].shape == (
        1,
        1,
        30,
        10,
    )
    assert all(frame["bev_embed"].isfinite().all() for frame in frames)


def test_a_written_fd3d_config_converts_the_same_checkpoint_identically(converted, tmp_path):
    written = tmp_path / "configs" / "official_fixture.yaml"
    official = ["--official-config", str(FIXTURES / "bevformer_config.py"), *IMAGE_SIZE]
    assert convert([*official, "--write-config", str(written)]) == 0
    assert "ALIGNMENT: rotate_shift" in written.read_text()
    out = tmp_path / "from_yaml"
    args = ["--checkpoint", str(FIXTURES / "bevformer_state_dict.pth"), "--config-file", str(written)]
    assert convert([*args, "--out", str(out)]) == 0
    first, second = from_pretrained(str(converted)).state_dict(), from_pretrained(str(out)).state_dict()
    assert first.keys() == second.keys() and all(
        torch.equal(value, second[key]) for key, value in first.items()
    )
