"""The distiller on the CPU-scale pairs: gradient routing, every baseline switch, shape/channel mismatch."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from fd3d.config import ConfigError, distill_config, distill_methods, load_config
from fd3d.data.example_batch import example_batch
from fd3d.distill import Distiller

ROOT = Path(__file__).resolve().parents[2]
PAIRS = ROOT / "configs" / "distill" / "pairs"
# every matched query counts as focal, so QFD and focal SMGD have work from the first step
ALL_MATCHED_FOCAL = ["DISTILL.HEAD.CONF_THRESH", "-1.0", "DISTILL.HEAD.GIOU_THRESH", "-2.0"]
CARS = torch.tensor(
    [[8.0, 12.0, -1.0, 1.9, 4.6, 1.7, 0.3, 1.0, 0.0], [-6.0, -10.0, -1.0, 1.9, 4.6, 1.7, 2.0, 0.0, 0.5]]
)


def batch_with_cars(queue_length: int = 1) -> dict:
    batch = example_batch((224, 400), batch_size=1, queue_length=queue_length)
    batch["gt_boxes"], batch["gt_labels"] = [CARS], [torch.tensor([0, 0])]
    return batch


def build(config: list[Path], *overrides: str) -> Distiller:
    torch.manual_seed(0)
    return Distiller(load_config(config, list(overrides))).train()


def params(module: torch.nn.Module) -> list[torch.nn.Parameter]:
    return [p for p in module.parameters() if p.requires_grad]


def has_gradient(module, loss) -> bool:
    grads = torch.autograd.grad(loss, params(module), retain_graph=True, allow_unused=True)
    return any(g is not None and g.abs().sum() > 0 for g in grads)


@pytest.fixture(scope="module")
def fd3d_bevformer():
    distiller = build(distill_config("bevformer_cpu", "fd3d"), *ALL_MATCHED_FOCAL)
    return distiller, distiller(batch_with_cars())


def test_expert_is_frozen_and_stays_in_eval_mode(fd3d_bevformer):
    distiller, losses = fd3d_bevformer
    assert not any(p.requires_grad for p in distiller.expert.parameters())
    assert not distiller.expert.training and distiller.apprentice.training
    assert not any(torch.is_tensor(v) and v.requires_grad and v.grad_fn is None for v in losses.values())


def test_gradient_routing(fd3d_bevformer):
    distiller, losses = fd3d_bevformer
    assert losses["num_focal_queries"] == 2
    kd = sum(v for k, v in losses.items() if k.startswith("loss_kd"))
    dh = losses["loss_dh_cls"] + losses["loss_dh_box"]
    detection = sum(
        v for k, v in losses.items() if k.startswith("loss") and "_kd" not in k and "_dh" not in k
    )
    assert set(k for k in losses if k.startswith("loss_kd")) == {
        "loss_kd_smgd_pv0",
        "loss_kd_smgd_pv1",
        "loss_kd_smgd_bev",
        "loss_kd_qfd",
    }
    assert losses["loss_kd_qfd"] > 0
    # L_KD: apprentice and generators/aligners, never the head
    assert has_gradient(distiller.apprentice.backbone, kd) and has_gradient(distiller.apprentice.encoder, kd)
    for name, module in distiller.kd_modules.items():
        assert has_gradient(module, kd), name
    assert not has_gradient(distiller.head, kd)
    # L_dh: the head only
    assert has_gradient(distiller.head, dh)
    assert not has_gradient(distiller.apprentice, dh) and not has_gradient(distiller.kd_modules, dh)
    # detection loss: the apprentice only
    assert has_gradient(distiller.apprentice, detection) and not has_gradient(distiller.head, detection)
    # a full backward leaves the expert without gradients
    sum(v for k, v in losses.items() if k.startswith("loss")).backward(retain_graph=True)
    assert all(p.grad is None for p in distiller.expert.parameters())


# (pair, method): every method on the BEVFormer pair, the PV variants on the DETR3D pair
SWITCHES = [("bevformer_cpu", method) for method in distill_methods()] + [
    ("detr3d_cpu", method) for method in ("fd3d", "cwd", "mask_on_gt")
]


@pytest.mark.parametrize(("pair", "method"), SWITCHES)
def test_every_switch_runs_a_training_step(pair, method):
    distiller = build(distill_config(pair, method), *ALL_MATCHED_FOCAL)
    optimizer = torch.optim.AdamW(params(distiller), lr=1e-3)
    before = [p.detach().clone() for p in params(distiller.apprentice)]
    losses = distiller(batch_with_cars(queue_length=0))
    kd_terms = [k for k in losses if k.startswith("loss_kd")]
    assert kd_terms and all(torch.isfinite(losses[k]) for k in kd_terms)
    sum(v for k, v in losses.items() if k.startswith("loss")).backward()
    optimizer.step()
    assert any(not torch.equal(b, p) for b, p in zip(before, params(distiller.apprentice), strict=True))


def test_detr3d_distils_on_perspective_view_with_a_pv_head():
    distiller = build(distill_config("detr3d_cpu", "fd3d"), *ALL_MATCHED_FOCAL)
    assert distiller.head.mode == "pv"
    losses = distiller(batch_with_cars(queue_length=0))
    assert losses["loss_kd_qfd"] > 0 and "loss_kd_smgd_bev" not in losses


def test_expert_with_other_channels_and_bev_downsampling():
    wider = ["DISTILL.EXPERT.OPTS", "['MODEL.FPN.OUT_CHANNELS', '96', 'MODEL.HEAD.EMBED_DIMS', '96']"]
    distiller = build(distill_config("bevformer_cpu", "downsample"), *ALL_MATCHED_FOCAL, *wider)
    assert distiller.expert_shapes["bev"] == ((50, 50), 96) and distiller.apprentice_shapes["bev"] == (
        (25, 25),
        64,
    )
    losses = distiller(batch_with_cars(queue_length=0))
    assert torch.isfinite(losses["loss_kd_smgd_bev"]) and losses["loss_kd_qfd"] > 0


def test_bad_switches_are_named():
    with pytest.raises(ConfigError, match="DISTILL.LOSSES"):
        build([PAIRS / "bevformer_cpu.yaml"], "DISTILL.LOSSES", "['smgd', 'kd']")
    with pytest.raises(ConfigError, match="no BEV feature"):
        build([PAIRS / "detr3d_cpu.yaml"], "DISTILL.LOSSES", "['cwd']", "DISTILL.CWD.STAGES", "['bev']")


def test_expert_loads_from_a_model_folder_and_bad_weights_are_named(tmp_path):
    from fd3d.config import load_config as load
    from fd3d.hub import HubError, save_pretrained
    from fd3d.modeling.registry import build_model

    torch.manual_seed(123)
    expert_cfg = load(ROOT / "projects" / "DETR3D" / "configs" / "cpu_expert.yaml")
    trained = build_model(expert_cfg)
    save_pretrained(trained, expert_cfg, tmp_path / "expert")
    distiller = build(distill_config("detr3d_cpu", "cwd"), "DISTILL.EXPERT.WEIGHTS", str(tmp_path / "expert"))
    loaded = distiller.expert.state_dict().values()
    for (name, expected), actual in zip(trained.state_dict().items(), loaded, strict=True):
        assert torch.equal(expected, actual), name
    with pytest.raises(HubError, match="not found"):
        build(
            distill_config("detr3d_cpu", "cwd"),
            "DISTILL.EXPERT.WEIGHTS",
            str(tmp_path / "nowhere" / "expert"),
        )
    # OPTS that change the architecture make the saved weights misfit: the keys are listed
    wider = ["DISTILL.EXPERT.OPTS", "['MODEL.HEAD.NUM_QUERIES', '150']"]
    with pytest.raises(HubError, match=r"query_content.weight: saved \(200, 64\) vs model \(150, 64\)"):
        build(distill_config("detr3d_cpu", "cwd"), "DISTILL.EXPERT.WEIGHTS", str(tmp_path / "expert"), *wider)


@pytest.mark.parametrize("pair", ["bevformer_cpu", "detr3d_cpu"])
def test_qfd_with_a_linear_adapter_and_per_channel_normalisation(pair):
    distiller = build(
        distill_config(pair, "qfd_only"), *ALL_MATCHED_FOCAL,
        "DISTILL.QFD.ADAPTER", "linear", "DISTILL.QFD.NORMALIZE", "channel",
    )  # fmt: skip
    qfd = distiller.kd_modules["qfd"]
    assert isinstance(qfd.adapter, torch.nn.Linear) and not hasattr(qfd, "aligner")
    losses = distiller(batch_with_cars(queue_length=0))
    assert losses["loss_kd_qfd"] > 0
    assert has_gradient(qfd, losses["loss_kd_qfd"]) and has_gradient(
        distiller.apprentice, losses["loss_kd_qfd"]
    )


def test_bad_qfd_options_are_named():
    with pytest.raises(ConfigError, match=r"DISTILL.QFD.ADAPTER must be one of \('aligner', 'linear'\)"):
        build(distill_config("bevformer_cpu", "qfd_only"), "DISTILL.QFD.ADAPTER", "deconv")
    with pytest.raises(ConfigError, match=r"DISTILL.QFD.NORMALIZE must be one of \('query', 'channel'\)"):
        build(distill_config("bevformer_cpu", "qfd_only"), "DISTILL.QFD.NORMALIZE", "global")
