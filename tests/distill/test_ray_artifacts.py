"""The controlled imperfect expert: ray artefacts placed by hand, seen by the diagnostic, and applied by
the distiller after its feature cache."""

from __future__ import annotations

import math

import pytest
import torch

from fd3d.config import ConfigError, distill_config, load_config
from fd3d.distill import Distiller
from fd3d.distill.diagnostics import ray_artifact_index
from fd3d.distill.ray_artifacts import smear_along_rays
from tests.distill.test_distiller import ALL_MATCHED_FOCAL, batch_with_cars


def box(x: float, y: float, width: float = 1.0, length: float = 1.0) -> list[float]:
    return [x, y, -1.0, width, length, 1.5, 0.0, 0.0, 0.0]


def test_a_box_on_the_x_axis_leaks_its_feature_into_the_cells_behind_it():
    # one row of ten 1 m cells along +x (centres 0.5 ... 9.5, y = 0); the ray from the ego is +x
    bev = torch.zeros(1, 2, 1, 10)
    bev[0, :, 0, 2] = torch.tensor([1.0, -2.0])  # the box's own cell (centre x = 2.5)
    bev[0, :, 0, 8] = torch.tensor([0.5, 0.5])  # an unrelated cell, 6 m behind: beyond LENGTH 4
    out = smear_along_rays(bev, [torch.tensor([box(2.5, 0.0)])], (0.0, -0.5, 10.0, 0.5), 0.5, 4.0, 2.0)
    expected = bev.clone()
    for k in (1, 2, 3, 4):  # 1 to 4 m behind the centre, past the box's far edge (0.5 m)
        expected[0, :, 0, 2 + k] += 0.5 * math.exp(-k / 2.0) * torch.tensor([1.0, -2.0])
    torch.testing.assert_close(out, expected)
    assert torch.equal(bev[0, :, 0, 3], torch.zeros(2))  # the input is not modified


def test_only_cells_within_half_the_width_of_the_ray_and_boxes_on_the_map_count():
    bev = torch.zeros(1, 1, 3, 10)  # rows y = -1, 0, 1
    bev[0, 0, 1, 1] = 1.0
    boxes = torch.tensor([box(1.5, 0.0, width=1.0), box(40.0, 0.0)])  # the second is off the map
    out = smear_along_rays(bev, [boxes], (0.0, -1.5, 10.0, 1.5), 1.0, 3.0, 1.0)
    changed = (out != bev)[0, 0].nonzero().tolist()
    assert changed == [[1, 2], [1, 3], [1, 4]]  # row y = 0 only, t = 1, 2, 3 m
    with pytest.raises(ValueError, match="decay"):
        smear_along_rays(bev, [boxes], (0.0, -1.5, 10.0, 1.5), 1.0, 3.0, 0.0)


def test_the_diagnostic_sees_the_artefacts():
    torch.manual_seed(0)
    extent = (-51.2, -51.2, 51.2, 51.2)
    bev = torch.randn(1, 8, 64, 64).abs() * 0.1
    boxes = torch.tensor([box(12.0, 5.0, 2.0, 4.5), box(-15.0, -8.0, 2.0, 4.5), box(3.0, -20.0, 2.0, 4.5)])
    cols = ((boxes[:, 0] + 51.2) / 1.6).long()
    rows = ((boxes[:, 1] + 51.2) / 1.6).long()
    bev[0, :, rows, cols] = 3.0  # strong object features
    behind, background = ray_artifact_index(bev, [boxes], extent)
    smeared = smear_along_rays(bev, [boxes], extent, 1.0, 10.0, 4.0)
    behind_after, background_after = ray_artifact_index(smeared, [boxes], extent)
    assert behind / background < 1.2 < 2.0 < behind_after / background_after


def test_the_distiller_corrupts_after_the_cache_and_refuses_a_bev_free_expert(tmp_path):
    artifacts = [
        "DISTILL.EXPERT.RAY_ARTIFACTS.STRENGTH",
        "0.5",
        "DISTILL.EXPERT.FEATURE_CACHE",
        str(tmp_path),
    ]
    cfg = load_config(distill_config("bevformer_cpu", "cwd"), [*ALL_MATCHED_FOCAL, *artifacts])
    torch.manual_seed(0)
    distiller = Distiller(cfg).train()
    batch = batch_with_cars(queue_length=0)
    batch["sample_token"] = ["sample-with-cars"]
    with torch.no_grad():
        clean = distiller.expert.extract_features(batch)
    for _ in range(2):  # computed and stored, then read back from the cache
        corrupted = distiller.expert_features(batch)
        expected = smear_along_rays(clean.bev, batch["gt_boxes"], clean.bev_extent, 0.5, 10.0, 4.0)
        torch.testing.assert_close(corrupted.bev, expected)
        assert not torch.equal(corrupted.bev, clean.bev)
    assert len(list(tmp_path.rglob("*.safetensors"))) == 1
    stored = distiller._feature_cache(batch).load(list(batch["sample_token"]), torch.device("cpu"))
    torch.testing.assert_close(stored.bev, clean.bev)  # the cache keeps the clean features
    detr3d = load_config(distill_config("detr3d_cpu", "cwd"), artifacts)
    with pytest.raises(ConfigError, match="RAY_ARTIFACTS"):
        Distiller(detr3d)
