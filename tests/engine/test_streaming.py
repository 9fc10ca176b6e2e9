"""Training from a `datasets` stream of Parquet shards (DATASETS.SOURCE parquet): the same batches as the
dataroot when shuffling is off, every sample once per epoch when on, BEVFormer's queue from the shard
itself, and a resumed stream that continues exactly where it stood."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from fd3d.config import load_config
from fd3d.data.dataset import NuScenesDataset
from fd3d.data.hf import export_parquet_shards
from fd3d.data.stream import SceneStream, batches_per_epoch, shard_files_of
from fd3d.engine.trainer import batches, prepare_training, train, training_step

PROJECTS = Path(__file__).resolve().parents[2] / "projects"  # detector configs: <Name>/configs/


@pytest.fixture(scope="module")
def shards(mini_dataroot, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("shards")
    export_parquet_shards(mini_dataroot, "v1.0-mini", out, progress=False)
    return out


def _config(path: str, dataroot: Path, output: Path, *extra: str):
    overrides = [
        "DATASETS.DATAROOT", str(dataroot), "DATASETS.VERSION", "v1.0-mini",
        "DATASETS.TRAIN_SPLIT", "mini_train", "DATASETS.TEST_SPLIT", "mini_val", "OUTPUT_DIR", str(output),
        "SOLVER.MAX_ITER", "4", "SOLVER.WARMUP_ITERS", "1", "SOLVER.CHECKPOINT_PERIOD", "2",
        "SOLVER.BASE_LR", "1e-3", "TEST.EVAL_PERIOD", "0", *extra,
    ]  # fmt: skip
    return load_config(PROJECTS / path, overrides)


def _losses(cfg, steps: int) -> list[dict[str, float]]:
    run = prepare_training(cfg)
    run.model.train()
    stream, out = batches(run, cfg), []
    while run.step < steps:
        losses, _ = training_step(run, next(stream), cfg)
        out.append({name: value.item() for name, value in losses.items()})
    return out


@pytest.mark.parametrize("detector", ["BEVFormer", "DETR3D"])
def test_unshuffled_stream_gives_the_dataroot_losses_bit_for_bit(mini_dataroot, shards, tmp_path, detector):
    path = f"{detector}/configs/cpu_apprentice.yaml"
    common = ["DATALOADER.SHUFFLE", "False"]
    from_dataroot = _losses(_config(path, mini_dataroot, tmp_path / "a", *common), 3)
    streamed = _config(path, mini_dataroot, tmp_path / "b", *common, "DATASETS.SOURCE", "parquet",
                       "DATASETS.SHARDS", str(shards))  # fmt: skip
    assert _losses(streamed, 3) == from_dataroot


def test_stream_samples_equal_the_map_style_dataset_queue_included(mini_dataroot, shards):
    files = shard_files_of(str(shards), "mini_train")
    stream = SceneStream(files, (56, 100), queue_length=2)
    dataset = NuScenesDataset(mini_dataroot, "v1.0-mini", "mini_train", (56, 100), queue_length=2)
    streamed = list(stream)
    assert [s["sample_token"] for s in streamed] == dataset.tokens
    for index in (0, 1, 5, len(dataset) - 1):
        expected, got = dataset[index], streamed[index]
        assert torch.equal(got["images"], expected["images"])
        assert [
            torch.equal(a["images"], b["images"])
            for a, b in zip(got["queue"], expected["queue"], strict=True)
        ] == [True, True]
        assert [bool(f["prev_exists"]) for f in got["queue"]] == [
            bool(f["prev_exists"]) for f in expected["queue"]
        ]


def test_shuffled_stream_covers_every_sample_once_per_epoch_and_epochs_differ(shards, mini_dataroot):
    files = shard_files_of(str(shards), "mini_train")
    expected = NuScenesDataset(mini_dataroot, "v1.0-mini", "mini_train").tokens
    stream = SceneStream(files, (28, 50), shuffle=True, seed=3)
    orders = []
    for epoch in (0, 1):
        stream.set_epoch(epoch)
        orders.append([s["sample_token"] for s in stream])
        assert sorted(orders[-1]) == sorted(expected)
    assert orders[0] != orders[1] and orders[0] != expected
    stream.set_epoch(0)
    assert [s["sample_token"] for s in stream] == orders[0]  # same seed and epoch, same order
    halves = [SceneStream(files, (28, 50), shuffle=True, seed=3, rank=r, world_size=2) for r in (0, 1)]
    parts = [[s["sample_token"] for s in half] for half in halves]
    assert not set(parts[0]) & set(parts[1]) and sorted(parts[0] + parts[1]) == sorted(expected)
    assert batches_per_epoch(halves[0], 0, 1, 0, True) == min(len(parts[0]), len(parts[1]))


def test_a_resumed_stream_continues_exactly_where_it_stood(shards, mini_dataroot, tmp_path):
    """Killed after 2 steps and resumed, the streamed run ends with the same weights as a straight one;
    8 steps cross into the second epoch (mini_train holds 6 samples here)."""
    extra = ["DATASETS.SOURCE", "parquet", "DATASETS.SHARDS", str(shards), "SOLVER.MAX_ITER", "8",
             "INPUT.IMAGE_SIZE", "[28, 50]"]  # fmt: skip
    path = "DETR3D/configs/cpu_apprentice.yaml"
    train(_config(path, mini_dataroot, tmp_path / "straight", *extra))
    train(_config(path, mini_dataroot, tmp_path / "resumed", *extra), stop_after=2)
    train(_config(path, mini_dataroot, tmp_path / "resumed", *extra), resume=True)
    straight = load_file(tmp_path / "straight" / "model" / "model.safetensors")
    resumed = load_file(tmp_path / "resumed" / "model" / "model.safetensors")
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)
