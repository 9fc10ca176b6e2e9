"""Head pre-training (DISTILL.HEAD.PRETRAIN_ITERS): it trains the head only, it learns, it leaves the
apprentice's run as it would have been, and a resumed run does not repeat it."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from fd3d.config import ConfigError, distill_config
from fd3d.data.dataset import collate_samples
from fd3d.distill.distiller import HEAD_PRETRAINING
from fd3d.engine import trainer
from fd3d.engine.trainer import batches, phase_summary_file, prepare_training, train
from tests.engine.test_trainer import APPRENTICE, config

FD3D = distill_config("detr3d_cpu", "fd3d")
# every matched query counts as focal, so the toy-scale heads give SMGD/QFD something to distil
FOCAL = ["DISTILL.HEAD.CONF_THRESH", "-1.0", "DISTILL.HEAD.GIOU_THRESH", "-2.0"]
HEAD_PRETRAINING_FILE = phase_summary_file(HEAD_PRETRAINING)


def head_loss(losses: dict) -> torch.Tensor:
    """L_dh summed over the head's layers: what pre-training minimises."""
    return sum(value for name, value in losses.items() if name.startswith("loss_dh"))


def test_pretraining_lowers_the_head_loss_and_moves_nothing_else(mini_dataroot, tmp_path):
    no_warmup = ["SOLVER.WARMUP_ITERS", "0"]
    start = prepare_training(config(FD3D, mini_dataroot, tmp_path / "start", *no_warmup))
    initial = start.accelerator.unwrap_model(start.model)  # the distiller a pre-training run starts from
    dataset = start.loader.dataset
    probe = collate_samples([dataset[0], dataset[1]])
    before_state = {name: value.clone() for name, value in initial.state_dict().items()}
    with torch.no_grad():
        before = initial.head_losses(probe)

    cfg = config(FD3D, mini_dataroot, tmp_path / "warm", "DISTILL.HEAD.PRETRAIN_ITERS", "30", *no_warmup)
    run = prepare_training(cfg)  # runs the phase
    distiller = run.accelerator.unwrap_model(run.model)
    summary = json.loads((tmp_path / "warm" / HEAD_PRETRAINING_FILE).read_text())

    with torch.no_grad():
        after = distiller.head_losses(probe)
    assert summary["steps"] == 30
    assert head_loss(after) < 0.8 * head_loss(before)
    changed = [n for n, v in distiller.state_dict().items() if not torch.equal(v, before_state[n])]
    assert changed and all(name.startswith("head.") for name in changed), changed


def test_the_apprentice_starts_as_without_pretraining(mini_dataroot, tmp_path):
    """Same initial weights, global random state and data order: only the head differs."""
    plain_cfg = config(FD3D, mini_dataroot, tmp_path / "plain")
    plain = prepare_training(plain_cfg)
    plain_rng = torch.get_rng_state()
    warm_cfg = config(FD3D, mini_dataroot, tmp_path / "warm", "DISTILL.HEAD.PRETRAIN_ITERS", "3")
    warm = prepare_training(warm_cfg)
    assert torch.equal(torch.get_rng_state(), plain_rng)

    plain_state = plain.accelerator.unwrap_model(plain.model).state_dict()
    warm_state = warm.accelerator.unwrap_model(warm.model).state_dict()
    differ = {name for name in plain_state if not torch.equal(plain_state[name], warm_state[name])}
    assert differ and all(name.startswith("head.") for name in differ), differ
    assert next(batches(plain, plain_cfg))["sample_token"] == next(batches(warm, warm_cfg))["sample_token"]
    assert json.loads((tmp_path / "warm" / HEAD_PRETRAINING_FILE).read_text())["steps"] == 3


def test_a_resumed_run_skips_pretraining_and_ends_with_the_same_weights(mini_dataroot, tmp_path, monkeypatch):
    pretrain = ["DISTILL.HEAD.PRETRAIN_ITERS", "3", *FOCAL]
    train(config(FD3D, mini_dataroot, tmp_path / "straight", *pretrain))
    train(config(FD3D, mini_dataroot, tmp_path / "resumed", *pretrain), stop_after=2)

    def must_not_run(*args, **kwargs):
        raise AssertionError("the head was pre-trained again on resume")

    monkeypatch.setattr(trainer, "run_phase", must_not_run)
    train(config(FD3D, mini_dataroot, tmp_path / "resumed", *pretrain), resume=True)
    straight = load_file(str(tmp_path / "straight" / "model" / "model.safetensors"))
    resumed = load_file(str(tmp_path / "resumed" / "model" / "model.safetensors"))
    for name in straight:
        assert torch.equal(straight[name], resumed[name]), name


@pytest.mark.parametrize(
    ("path", "iters"),
    [(distill_config("detr3d_cpu", "fitnet"), "5"), (FD3D, "-1"), (APPRENTICE, "5")],
)
def test_pretraining_without_a_head_or_with_a_negative_count_is_named(mini_dataroot, tmp_path, path, iters):
    cfg = config(path, mini_dataroot, tmp_path, "DISTILL.HEAD.PRETRAIN_ITERS", iters)
    with pytest.raises(ConfigError, match="DISTILL.HEAD.PRETRAIN_ITERS"):
        prepare_training(cfg)
