"""The trainer streams a Hub dataset repository (DATASETS.SOURCE hub) through the real `datasets` and
`huggingface_hub` clients on the local Hub: the same losses as the dataroot, and --push-to-hub uploads
the trained apprentice."""

from __future__ import annotations

from pathlib import Path

from fd3d.config import load_config
from fd3d.engine.trainer import batches, prepare_training, training_step
from fd3d.hub import from_pretrained
from tools.train_net import main as train_net

PROJECTS = Path(__file__).resolve().parents[2] / "projects"  # detector configs: <Name>/configs/


def _overrides(dataroot: Path, output: Path, *extra: str) -> list[str]:
    return [
        "DATASETS.DATAROOT", str(dataroot), "DATASETS.VERSION", "v1.0-mini",
        "DATASETS.TRAIN_SPLIT", "mini_train", "DATASETS.TEST_SPLIT", "mini_val",
        "OUTPUT_DIR", str(output), "SOLVER.MAX_ITER", "2",
        "SOLVER.WARMUP_ITERS", "1", "SOLVER.CHECKPOINT_PERIOD", "2", "TEST.EVAL_PERIOD", "0",
        "DATALOADER.SHUFFLE", "False", "INPUT.IMAGE_SIZE", "[56, 100]", *extra,
    ]  # fmt: skip


def _losses(cfg) -> list[dict[str, float]]:
    run = prepare_training(cfg)
    run.model.train()
    stream, out = batches(run, cfg), []
    while run.step < cfg.SOLVER.MAX_ITER:
        losses, _ = training_step(run, next(stream), cfg)
        out.append({name: value.item() for name, value in losses.items()})
    return out


def test_trainer_streams_a_hub_dataset_repo_like_the_dataroot(hub_dataset_repo, mini_dataroot, tmp_path):
    path = PROJECTS / "DETR3D" / "configs" / "cpu_apprentice.yaml"
    local = _losses(load_config(path, _overrides(mini_dataroot, tmp_path / "local")))
    hub = ["DATASETS.SOURCE", "hub", "DATASETS.SHARDS", hub_dataset_repo]
    assert _losses(load_config(path, _overrides(mini_dataroot, tmp_path / "hub", *hub))) == local


def test_train_net_streams_from_the_hub_and_pushes_the_apprentice(hub_dataset_repo, mini_dataroot, tmp_path):
    out = tmp_path / "run"
    hub = ["DATASETS.SOURCE", "hub", "DATASETS.SHARDS", hub_dataset_repo]
    args = [
        "--config-file",
        str(PROJECTS / "DETR3D" / "configs" / "cpu_apprentice.yaml"),
        "--push-to-hub",
        "fd3d-test/apprentice",
    ]
    assert train_net([*args, *_overrides(mini_dataroot, out, *hub)]) == 0
    pushed = from_pretrained("fd3d-test/apprentice")
    saved = from_pretrained(str(out / "model"))
    assert all(
        (a == b).all() for a, b in zip(pushed.state_dict().values(), saved.state_dict().values(), strict=True)
    )
