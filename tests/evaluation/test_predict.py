"""fd3d.evaluation.predict, against independent references: a naive loop over the dataset's samples one at
a time, `predict_scenes` for the scene protocol, and the loop again for processes' shards gathered."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
from accelerate.data_loader import prepare_data_loader

from fd3d.config import load_config
from fd3d.data.dataset import NuScenesDataset, collate_samples
from fd3d.evaluation import predict as predict_module
from fd3d.evaluation.predict import data_config, dataset_for, loader_for, predict
from fd3d.evaluation.scene_protocol import predict_scenes, scene_loader
from fd3d.modeling.evaluating import evaluating
from fd3d.modeling.registry import build_model

PROJECTS = Path(__file__).resolve().parents[2] / "projects"
VERSION, SPLIT = "v1.0-mini", "mini_val"


def detr3d() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(load_config(PROJECTS / "DETR3D" / "configs" / "cpu_apprentice.yaml"))


def temporal_bevformer() -> torch.nn.Module:
    torch.manual_seed(0)
    config = PROJECTS / "BEVFormer" / "configs" / "cpu_apprentice.yaml"
    return build_model(load_config(config, ["MODEL.BEVFORMER.QUEUE_LENGTH", "2"]))


def one_at_a_time(model: torch.nn.Module, dataset: NuScenesDataset) -> dict[str, dict]:
    with evaluating(model):
        return {dataset.tokens[i]: model(collate_samples([dataset[i]]))[0] for i in range(len(dataset))}


def assert_same(found, expected: dict) -> None:
    np.testing.assert_allclose(found.scores, expected["scores"].numpy(), atol=1e-5, rtol=0)
    np.testing.assert_allclose(found.boxes_lidar, expected["boxes_lidar"].numpy(), atol=1e-4, rtol=0)
    np.testing.assert_array_equal(found.labels, expected["labels"].numpy())


def test_the_dataset_is_decoded_as_the_detector_reads_it(mini_dataroot):
    model = temporal_bevformer()
    cfg = data_config(mini_dataroot, VERSION)
    cfg.INPUT.IMAGE_SIZE, cfg.INPUT.RESIZE = [64, 64], "nearest"  # another model's: not used
    queued, single = dataset_for(model, cfg, SPLIT), dataset_for(model, cfg, SPLIT, scene_protocol=True)
    for dataset in (queued, single):
        assert tuple(dataset.image_size) == tuple(model.image_size) and dataset.resize == model.resize_mode
        assert dataset.pc_range == model.pc_range.tolist()
    assert (queued.queue_length, single.queue_length) == (2, 0)


def test_batched_predictions_equal_a_loop_over_the_samples_in_eval_mode(mini_dataroot):
    model = detr3d().train()  # predict must switch to eval mode (a training forward returns losses)
    dataset = dataset_for(model, data_config(mini_dataroot, VERSION), SPLIT)
    found = predict(model, loader_for(dataset, batch_size=4), progress=False)
    assert model.training
    expected = one_at_a_time(model, dataset)
    assert list(found) == dataset.tokens and len(expected) == 6
    for token, prediction in expected.items():
        assert_same(found[token], prediction)


def test_the_scene_protocol_path_equals_predict_scenes(mini_dataroot):
    model = temporal_bevformer()
    dataset = dataset_for(model, data_config(mini_dataroot, VERSION), SPLIT, scene_protocol=True)
    found = predict(model, loader_for(dataset, scene_protocol=True), scene_protocol=True, progress=False)
    reference_data = NuScenesDataset(mini_dataroot, VERSION, SPLIT, model.image_size, model.pc_range.tolist())
    with evaluating(model):
        expected = predict_scenes(model, scene_loader(reference_data, 0), "cpu")
    assert set(found) == set(expected) == set(dataset.tokens)
    for token, prediction in expected.items():
        assert_same(found[token], prediction)


def test_two_processes_shards_gather_every_sample_exactly_once(mini_dataroot, monkeypatch):
    """Accelerate evens out the last batch by repeating samples on the shorter process: gathered, each
    sample of the split is there once, with its own prediction."""
    model = detr3d()
    dataset = dataset_for(model, data_config(mini_dataroot, VERSION), SPLIT)
    shards = [
        prepare_data_loader(loader_for(dataset, batch_size=4), num_processes=2, process_index=rank,
                            put_on_device=False)  # fmt: skip
        for rank in range(2)
    ]
    read = [token for shard in shards for batch in shard for token in batch["sample_token"]]
    assert len(read) > len(dataset) and set(read) == set(dataset.tokens)  # repeats: the padding
    other = predict(model, shards[1], progress=False)
    monkeypatch.setattr(predict_module, "gather_object", lambda local: [*local, other])
    accelerator = SimpleNamespace(device=torch.device("cpu"), is_main_process=True)
    found = predict(model, shards[0], accelerator, progress=False)
    assert sorted(found) == sorted(dataset.tokens)
    for token, prediction in one_at_a_time(model, dataset).items():
        assert_same(found[token], prediction)
