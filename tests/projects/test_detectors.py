"""The detector interface the distiller relies on, checked on both CPU-scale plug-ins."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from fd3d.config import load_config
from fd3d.data.example_batch import example_batch
from fd3d.modeling.detector import resize_inputs
from fd3d.modeling.registry import META_ARCH_REGISTRY, build_model

PROJECTS = Path(__file__).resolve().parents[2] / "projects"  # detector configs: <Name>/configs/
GT_BOX = torch.tensor([[5.0, 10.0, -1.0, 1.9, 4.6, 1.7, 0.3, 1.0, 0.0]])


def small_batch(queue_length: int = 0) -> dict:
    batch = example_batch((112, 200), batch_size=2, queue_length=queue_length)
    batch["gt_boxes"] = [GT_BOX, GT_BOX[:0]]
    batch["gt_labels"] = [torch.tensor([0]), torch.zeros(0, dtype=torch.long)]
    return batch


def build(config: str, *overrides: str):
    torch.manual_seed(0)
    return build_model(load_config(PROJECTS / config, list(overrides)))


def test_registry_holds_both_projects_and_names_unknown_ones():
    model = build("DETR3D/configs/cpu_apprentice.yaml")
    assert {"BEVFormer", "DETR3D"} <= {name for name, _ in META_ARCH_REGISTRY}
    cfg = load_config(PROJECTS / "DETR3D/configs/cpu_apprentice.yaml", freeze=False)
    cfg.MODEL.META_ARCHITECTURE = "PETR"
    with pytest.raises(KeyError, match="'PETR' is not registered; registered: .*BEVFormer"):
        build_model(cfg)
    assert type(model).__name__ == "DETR3D"


@pytest.mark.parametrize(
    "config", ["BEVFormer/configs/cpu_apprentice.yaml", "DETR3D/configs/cpu_apprentice.yaml"]
)
def test_forward_is_features_then_head_then_losses(config):
    model = build(config)
    batch = small_batch()
    features = model.extract_features(batch)
    assert [tuple(level.shape) for level in features.pv] == [
        (2, 6, 64, 14, 25),
        (2, 6, 64, 7, 13),
        (2, 6, 64, 4, 7),
    ]
    assert features.pv_strides == [8, 16, 32]
    assert features.geometry.image_size == (112, 200)
    outputs = model.forward_head(features, batch)
    assert outputs.cls_logits.shape == (3, 2, 200, 10) and outputs.box_code.shape == (3, 2, 200, 10)
    staged = model.losses(outputs, batch)
    direct = model(batch)
    assert staged.keys() == direct.keys()
    for key in staged:
        torch.testing.assert_close(staged[key], direct[key])
    model.eval()
    predictions = model(batch)
    assert len(predictions) == 2
    assert predictions[0]["boxes_lidar"].shape[1] == 9
    assert (predictions[0]["scores"][:-1] >= predictions[0]["scores"][1:]).all()


def test_bevformer_exposes_its_bev_with_extent():
    model = build("BEVFormer/configs/cpu_apprentice.yaml")
    features = model.extract_features(small_batch())
    assert features.bev.shape == (2, 64, 25, 25)
    assert features.bev_extent == (-51.2, -51.2, 51.2, 51.2)
    assert build("DETR3D/configs/cpu_apprentice.yaml").extract_features(small_batch()).bev is None


def test_bevformer_history_is_used_only_where_it_exists():
    model = build("BEVFormer/configs/cpu_apprentice.yaml").eval()
    batch = small_batch(queue_length=1)
    with torch.no_grad():
        with_history = model.extract_features(batch).bev
        batch_no_prev = {**batch, "prev_exists": torch.tensor([False, True])}
        mixed = model.extract_features(batch_no_prev).bev
        model.queue_length = 0
        single_frame = model.extract_features(batch).bev
    assert not torch.allclose(with_history, single_frame, atol=1e-4)
    # a frame without a predecessor is encoded exactly as with no queue at all
    torch.testing.assert_close(mixed[0], single_frame[0])
    torch.testing.assert_close(mixed[1], with_history[1])


def test_resize_scales_the_projection_with_the_image():
    lidar2img = example_batch((224, 400))["lidar2img"]
    images = torch.rand(1, 6, 3, 224, 400)
    resized, scaled = resize_inputs(images, lidar2img, (112, 200))
    assert resized.shape == (1, 6, 3, 112, 200)
    point = torch.tensor([3.0, 20.0, -1.0, 1.0])
    big, small = lidar2img[0, 2] @ point, scaled[0, 2] @ point
    torch.testing.assert_close(small[:2] / small[2], big[:2] / big[2] / 2)
