"""BEVFormer with the official mechanisms switched on (CAN-bus MLP, rotate + shift alignment, official TSA
values, SCA without positional embedding, official pillar heights): one temporal protocol whether the
history comes from the dataset's queue or is streamed frame by frame, and per-sample history in a batch."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from fd3d.config import load_config
from fd3d.data.can_bus import can_bus_from_pose
from fd3d.data.example_batch import example_batch
from fd3d.data.geometry import pose_matrix, yaw_to_quaternion
from fd3d.modeling.registry import build_model

CONFIG = Path(__file__).resolve().parents[3] / "projects" / "BEVFormer" / "configs" / "cpu_apprentice.yaml"
OFFICIAL_SWITCHES = [
    "MODEL.BEVFORMER.USE_CAN_BUS", "True",
    "MODEL.BEVFORMER.ALIGNMENT", "rotate_shift",
    "MODEL.BEVFORMER.ROTATE_CENTER", "[12.0, 10.0]",
    "MODEL.BEVFORMER.TSA_VALUE", "input_query",
    "MODEL.BEVFORMER.SCA_QUERY_POS", "False",
    "MODEL.BEVFORMER.PILLAR_HEIGHTS", "half_metre_inset",
    "MODEL.BEVFORMER.QUEUE_LENGTH", "2",
    "MODEL.BEVFORMER.ENCODER_LAYERS", "2",
]  # fmt: skip


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_model(load_config(CONFIG, OFFICIAL_SWITCHES)).eval()


def _drive(batch: dict, step: int) -> None:
    """The ego 1.5 m further along a 3 deg turn each frame (absolute CAN bus, as the data loader gives)."""
    yaw = math.radians(40.0 + 3.0 * step)
    pose = pose_matrix([100.0 + 1.5 * step, 50.0 + step, 0.0], yaw_to_quaternion(yaw))
    batch["can_bus"] = torch.from_numpy(can_bus_from_pose(pose)).float().expand(len(batch["images"]), -1)


def _frames() -> tuple[dict, list[dict]]:
    batch = example_batch((112, 200), batch_size=1, queue_length=2, seed=5)
    frames = [*batch.pop("queue"), batch]
    for step, frame in enumerate(frames):
        _drive(frame, step)
    frames[0]["prev_exists"] = torch.tensor([False])
    return {**batch, "queue": frames[:2]}, frames


def test_queue_and_streaming_give_the_same_bev(model):
    batch, frames = _frames()
    with torch.no_grad():
        from_queue = model.extract_features(batch).bev
        streamed, previous = None, None
        for frame in frames:
            history = {} if previous is None else {"prev_bev": streamed, "prev_can_bus": previous["can_bus"]}
            streamed = model.extract_features({**frame, **history}).bev
            previous = frame
        alone = model.extract_features(frames[-1]).bev
    torch.testing.assert_close(from_queue, streamed, atol=1e-5, rtol=0)
    assert (alone - streamed).abs().max() > 1e-3  # the history (and the CAN-bus deltas) matter


def test_each_sample_keeps_its_own_history(model):
    _, frames = _frames()
    pair = {k: torch.cat([v, v]) if torch.is_tensor(v) else v + v for k, v in frames[-1].items()}
    previous = {k: torch.cat([v, v]) if torch.is_tensor(v) else v for k, v in frames[-2].items()}
    with torch.no_grad():
        prev_bev = model.extract_features(previous).bev
        pair.update(
            prev_bev=prev_bev, prev_can_bus=previous["can_bus"], prev_exists=torch.tensor([True, False])
        )
        both = model.extract_features(pair).bev
        fresh = model.extract_features(frames[-1]).bev  # the same frame with no history at all
    torch.testing.assert_close(both[1:], fresh, atol=1e-5, rtol=0)
    assert (both[0] - both[1]).abs().max() > 1e-3


def test_a_missing_can_bus_is_named(model):
    batch = example_batch((112, 200), batch_size=1)
    del batch["can_bus"]
    with pytest.raises(KeyError, match=r"needs batch\['can_bus'\]"):
        model.extract_features(batch)


OFFICIAL = {  # the official configs' BEV size, FPN levels, input size, backbone style (their README's params)
    "tiny": (50, 1, [450, 800], "pytorch", "RGB"),
    "small": (150, 1, [720, 1280], "caffe", "BGR"),
    "base": (200, 4, [900, 1600], "caffe", "BGR"),
}


@pytest.mark.parametrize("name", OFFICIAL)
def test_shipped_official_configs_hold_the_official_architecture(name):
    cfg = load_config(CONFIG.parent / f"official_{name}.yaml")
    bev, levels, image_size, style, channels = OFFICIAL[name]
    assert (cfg.MODEL.BEVFORMER.BEV_H, cfg.MODEL.BEVFORMER.BEV_W, cfg.MODEL.FPN.NUM_OUTS) == (
        bev,
        bev,
        levels,
    )
    assert (cfg.INPUT.IMAGE_SIZE, cfg.MODEL.BACKBONE.STYLE, cfg.INPUT.FORMAT) == (image_size, style, channels)
    assert cfg.MODEL.BEVFORMER.ALIGNMENT == "rotate_shift" and cfg.MODEL.BEVFORMER.USE_CAN_BUS


def test_the_official_tiny_config_builds_the_released_size():
    model = build_model(load_config(CONFIG.parent / "official_tiny.yaml"))
    parameters = sum(p.numel() for p in model.parameters())
    running = sum(b.numel() for name, b in model.named_buffers() if "running" in name)
    assert round((parameters + running) / 1e6, 1) == 33.6  # BEVFormer-tiny in the official README
