"""The rig-only example batch carries the same camera geometry as real decoded samples."""

from __future__ import annotations

import numpy as np

from fd3d.data.dataset import NuScenesDataset
from fd3d.data.example_batch import example_batch, rig_lidar2img
from tests.conftest import PC_RANGE


def test_rig_lidar2img_equals_decoded_sample_geometry(mini_dataroot):
    sample = NuScenesDataset(mini_dataroot, "v1.0-mini", "mini_val", (112, 200), PC_RANGE)[0]
    np.testing.assert_allclose(rig_lidar2img(112, 200), sample["lidar2img"].numpy(), rtol=1e-4, atol=1e-3)


def test_example_batch_shapes_and_queue():
    batch = example_batch((32, 48), batch_size=2, queue_length=2)
    assert batch["images"].shape == (2, 6, 3, 32, 48) and batch["images"].dtype.is_floating_point is False
    assert batch["prev_exists"].tolist() == [True, True]
    assert [frame["prev_exists"].tolist() for frame in batch["queue"]] == [[False, False], [True, True]]
    assert len(batch["gt_boxes"]) == 2 and batch["gt_boxes"][0].shape == (0, 9)
