"""Failures that must stop with a named error and lose nothing: a diverging run, an impossible schedule,
a corrupt checkpoint on resume."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from fd3d.config import ConfigError, distill_config, load_config
from fd3d.engine.checkpoint import (
    CorruptCheckpointError,
    last_checkpoint,
    list_checkpoints,
    load_checkpoint,
    save_checkpoint,
)
from fd3d.engine.trainer import NonFiniteLossError, make_accelerator, train, validate_solver
from fd3d.modeling.losses import DetectionLoss
from tests.engine.test_distributed import free_port
from tests.engine.test_trainer import APPRENTICE, ROOT, config

DIVERGING = ["SOLVER.BASE_LR", "1e30", "SOLVER.WARMUP_ITERS", "0", "SOLVER.CHECKPOINT_PERIOD", "1"]


# ------------------------------------------------------------------------------------ diverging run
@pytest.mark.parametrize("bad", [math.nan, math.inf])
@pytest.mark.parametrize("prediction", ["cls_logits", "box_code"])
def test_non_finite_predictions_give_nan_terms_instead_of_a_matcher_error(prediction, bad):
    gen = torch.Generator().manual_seed(0)
    predicted = {
        "cls_logits": torch.randn(2, 5, 3, generator=gen),
        "box_code": torch.randn(2, 5, 10, generator=gen),
    }
    predicted[prediction][1, 2, 0] = bad
    boxes = [torch.tensor([[1.0, 2.0, 0.0, 2.0, 4.0, 1.5, 0.3, 0.0, 0.0]])] * 2
    focal, l1, matches = DetectionLoss().layer_loss(
        predicted["cls_logits"], predicted["box_code"], boxes, [torch.tensor([1])] * 2
    )
    assert math.isnan(focal.item()) and math.isnan(l1.item())
    assert [(q.numel(), g.numel()) for q, g in matches] == [(0, 0), (0, 0)]


@pytest.mark.parametrize("job, term", [("apprentice", "loss_cls_d0"), ("distiller", "loss_dh_cls_d0")])
def test_diverging_run_stops_on_the_loss_guard_naming_term_step_and_checkpoint(
    mini_dataroot, tmp_path, job, term
):
    path = APPRENTICE if job == "apprentice" else distill_config("detr3d_cpu", "fd3d")
    cfg = config(path, mini_dataroot, tmp_path, *DIVERGING)
    with pytest.raises(
        NonFiniteLossError,
        match=rf"at step 1: .*{term}=nan.*diverged.*no intact checkpoint .* at or before step 0",
    ):
        train(cfg)
    assert [step for step, _ in list_checkpoints(tmp_path)] == [1]


def test_diverging_run_stops_every_process_together(mini_dataroot, tmp_path):
    command = [
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
        "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
        "--main_process_port", str(free_port()),
        str(ROOT / "tools" / "train_net.py"), "--config-file", str(ROOT / APPRENTICE),
        "DATASETS.DATAROOT", str(mini_dataroot), "DATASETS.VERSION", "v1.0-mini",
        "DATASETS.TRAIN_SPLIT", "mini_train", "OUTPUT_DIR", str(tmp_path), "SOLVER.MAX_ITER", "3",
        *DIVERGING,
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode != 0
    # each process names its own terms: neither waits for the other in a collective
    assert done.stderr.count("NonFiniteLossError: non-finite loss at step 1: loss_cls_d0=nan") == 2, (
        done.stderr[-3000:]
    )
    assert "cost matrix" not in done.stderr


# ------------------------------------------------------------------------------------- solver keys
@pytest.mark.parametrize(
    "key, value",
    [
        ("SOLVER.CHECKPOINT_PERIOD", 0),
        ("SOLVER.LOG_PERIOD", 0),
        ("SOLVER.MAX_ITER", 0),
        ("SOLVER.IMS_PER_BATCH", 0),
        ("SOLVER.GRAD_ACCUM_STEPS", 0),
        ("TEST.IMS_PER_BATCH", -1),
        ("SOLVER.WARMUP_ITERS", -1),
        ("SOLVER.MAX_CHECKPOINTS_KEPT", -1),
        ("TEST.EVAL_PERIOD", -1),
        ("SOLVER.BASE_LR", 0.0),
        ("SOLVER.BASE_LR", math.inf),
        ("SOLVER.BASE_LR", math.nan),
        ("SOLVER.WEIGHT_DECAY", -0.01),
        ("SOLVER.GRAD_CLIP", -1.0),
        ("SOLVER.BACKBONE_LR_FACTOR", math.inf),
        ("SOLVER.CHECKPOINT_PERIOD", 2.5),
        ("SOLVER.MAX_ITER", True),
    ],
)
def test_out_of_range_solver_key_is_named_before_anything_is_built(mini_dataroot, tmp_path, key, value):
    cfg = config(APPRENTICE, mini_dataroot, tmp_path / "out").clone()
    cfg.defrost()
    section, name = key.split(".")
    cfg[section][name] = value
    cfg.freeze()
    with pytest.raises(ConfigError, match=rf"^{key}={value!r}: must be a (positive|non-negative) "):
        train(cfg)
    assert not (tmp_path / "out").exists()


def test_checkpoint_period_zero_from_the_command_line_is_a_config_error(mini_dataroot, tmp_path):
    cfg = config(APPRENTICE, mini_dataroot, tmp_path, "SOLVER.CHECKPOINT_PERIOD", "0")
    with pytest.raises(ConfigError, match="SOLVER.CHECKPOINT_PERIOD=0: must be a positive integer"):
        train(cfg)


def test_boundary_values_with_a_meaning_are_accepted():
    cfg = load_config(
        None,
        ["SOLVER.WARMUP_ITERS", "0", "SOLVER.MAX_CHECKPOINTS_KEPT", "0", "TEST.EVAL_PERIOD", "0",
         "SOLVER.GRAD_CLIP", "0.0", "SOLVER.WEIGHT_DECAY", "0.0", "SOLVER.BACKBONE_LR_FACTOR", "0.0"],
    )  # fmt: skip
    validate_solver(cfg)


# ------------------------------------------------------------------------------- corrupt checkpoints
def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def two_checkpoints(tmp_path: Path):
    """A small model, optimizer and registered schedule checkpointed at steps 1 and 2; the weights of each."""
    accelerator = make_accelerator(load_config(None, ["OUTPUT_DIR", str(tmp_path)]))
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0 / (step + 1))
    model, optimizer = accelerator.prepare(model, optimizer)
    accelerator.register_for_checkpointing(scheduler)
    weights = {}
    for step in (1, 2):
        model(torch.ones(4, 3)).sum().backward()
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
        save_checkpoint(accelerator, tmp_path, step, keep=0)
        weights[step] = model.weight.detach().clone()
    return accelerator, model, weights


@pytest.mark.parametrize(
    "name",
    ["model.safetensors", "optimizer.bin", "custom_checkpoint_0.pkl", "random_states_0.pkl", "progress.json"],
)
def test_a_truncated_file_makes_resume_fall_back_to_the_previous_checkpoint(tmp_path, name):
    accelerator, model, weights = two_checkpoints(tmp_path)
    newest = tmp_path / "checkpoints" / "step_00000002"
    truncate(newest / name)
    step, folder = last_checkpoint(tmp_path)
    assert (step, folder.name) == (1, "step_00000001")
    with pytest.warns(
        UserWarning, match=rf"resuming from .*step_00000001.*step_00000002 \({name} is unreadable"
    ):
        assert load_checkpoint(accelerator, folder) == 1
    assert torch.equal(model.weight, weights[1])
    assert (newest / name).is_file()  # kept for inspection


def test_a_missing_optimizer_file_counts_as_corrupt(tmp_path):
    accelerator, _, _ = two_checkpoints(tmp_path)
    (tmp_path / "checkpoints" / "step_00000002" / "optimizer.bin").unlink()
    assert last_checkpoint(tmp_path)[0] == 1


def test_no_intact_checkpoint_lists_every_one(tmp_path):
    accelerator, _, _ = two_checkpoints(tmp_path)
    truncate(tmp_path / "checkpoints" / "step_00000002" / "model.safetensors")
    truncate(tmp_path / "checkpoints" / "step_00000001" / "optimizer.bin")
    with pytest.raises(
        CorruptCheckpointError,
        match=r"no intact checkpoint .*step_00000002 \(model.safetensors is unreadable.*"
        r"step_00000001 \(optimizer.bin is unreadable",
    ):
        last_checkpoint(tmp_path)
    with pytest.raises(CorruptCheckpointError, match=r"step_00000001 cannot be restored: optimizer.bin"):
        load_checkpoint(accelerator, tmp_path / "checkpoints" / "step_00000001")


def test_resume_past_a_truncated_checkpoint_ends_with_the_weights_of_an_uninterrupted_run(
    mini_dataroot, tmp_path
):
    every_step = ["SOLVER.CHECKPOINT_PERIOD", "1"]
    train(config(APPRENTICE, mini_dataroot, tmp_path / "straight", *every_step))
    resumed = tmp_path / "resumed"
    train(config(APPRENTICE, mini_dataroot, resumed, *every_step), stop_after=2)
    assert [step for step, _ in list_checkpoints(resumed)] == [1, 2]
    truncate(resumed / "checkpoints" / "step_00000002" / "model.safetensors")
    with pytest.warns(UserWarning, match=r"step_00000002 \(model.safetensors is unreadable"):
        train(config(APPRENTICE, mini_dataroot, resumed, *every_step), resume=True)
    straight = load_file(str(tmp_path / "straight" / "model" / "model.safetensors"))
    finished = load_file(str(resumed / "model" / "model.safetensors"))
    assert straight.keys() == finished.keys()
    for name in straight:
        assert torch.equal(straight[name], finished[name]), name
