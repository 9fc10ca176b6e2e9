"""The protocol tables expand to the runs the studies always ran: the same configs, overrides and plans as
the string-keyed tables they replace."""

from dataclasses import asdict

from fd3d.config import distill_config, load_config
from fd3d.studies.distillation import study_plan
from fd3d.studies.protocols import (
    APPRENTICE,
    BALANCED_AS_CALIBRATED,
    FULL,
    PAIR,
    QUICK,
    STUDY_APPRENTICE,
    STUDY_HEAD_PRETRAIN,
    STUDY_METHODS,
    WARM_METHODS,
    Method,
    head_overrides,
)


def test_warm_table_gives_the_configs_and_overrides_of_the_old_table():
    # the old table: {method: (config, overrides)} and the tuple of methods that pre-train the head
    old = {
        "apprentice": (APPRENTICE, []),
        "fd3d": (distill_config(PAIR, "fd3d"), []),
        "fitnet": (distill_config(PAIR, "fitnet"), []),
        "cwd": (distill_config(PAIR, "cwd"), []),
        "mgd": (distill_config(PAIR, "mgd"), []),
        "smgd_focal": (distill_config(PAIR, "smgd_only"), []),
        "smgd_gt": (distill_config(PAIR, "mask_on_gt"), []),
        "cwd_pv": (distill_config(PAIR, "cwd_pv"), []),
        "cwd_bev": (distill_config(PAIR, "cwd_bev"), []),
        "qfd_only": (distill_config(PAIR, "qfd_only"), []),
        "qfd_only_static": (
            distill_config(PAIR, "qfd_only"),
            ["DISTILL.HEAD.NUM_LAYERS", "1", "DISTILL.HEAD.BOX_REFERENCE", "False"],
        ),
        "qfd_only_linear": (distill_config(PAIR, "qfd_only"), ["DISTILL.QFD.ADAPTER", "linear"]),
        "qfd_only_channel": (distill_config(PAIR, "qfd_only"), ["DISTILL.QFD.NORMALIZE", "channel"]),
    }
    old_head = ("fd3d", "smgd_focal", "qfd_only", "qfd_only_static", "qfd_only_linear", "qfd_only_channel")
    assert list(WARM_METHODS) == list(old)  # the run order
    assert {name: (m.config, list(m.overrides)) for name, m in WARM_METHODS.items()} == old
    assert tuple(name for name, m in WARM_METHODS.items() if m.pretrains_head) == old_head


def test_head_overrides_only_for_methods_with_a_head():
    assert head_overrides(Method(APPRENTICE), 7) == []
    assert head_overrides(WARM_METHODS["qfd_only_static"], 7) == ["DISTILL.HEAD.PRETRAIN_ITERS", "7"]
    # the distillation study pre-trains FD3D's head (and its terms' ablations') alone, for 1000 steps
    study = {name: head_overrides(m, STUDY_HEAD_PRETRAIN) for name, m in STUDY_METHODS.items()}
    for name in ("fd3d", "fd3d_smgd", "fd3d_qfd"):
        assert study.pop(name) == ["DISTILL.HEAD.PRETRAIN_ITERS", "1000"]
    assert not any(study.values())
    assert STUDY_METHODS["apprentice"].config == STUDY_APPRENTICE


def test_fd3d_term_ablations_keep_one_term_each_at_fd3ds_calibration():
    """FD3D = SMGD at the BEV + QFD at the PV; each ablation drops one and takes FD3D's stage scales."""
    losses = {name: list(load_config(STUDY_METHODS[name].config).DISTILL.LOSSES)
              for name in ("fd3d", "fd3d_smgd", "fd3d_qfd")}  # fmt: skip
    assert losses == {"fd3d": ["smgd", "qfd"], "fd3d_smgd": ["smgd"], "fd3d_qfd": ["qfd"]}
    assert {name: m.calibrated_as for name, m in STUDY_METHODS.items() if m.calibrated_as} == {
        "fd3d_smgd": "fd3d", "fd3d_qfd": "fd3d"}  # fmt: skip


def test_plans_are_the_recorded_dicts_in_their_order():
    full = {"version": "v1.0-trainval", "scenes": 60, "val_scenes": 10, "samples": 20}
    full.update(expert_steps=6000, steps=2000)
    quick = {"version": "v1.0-mini", "scenes": 10, "val_scenes": None, "samples": 10}
    quick.update(expert_steps=600, steps=400)
    assert list(asdict(FULL).items()) == list(full.items())
    assert list(asdict(QUICK).items()) == list(quick.items())
    # the distillation study's results.json records its plan with these keys, in this order
    study = {**full, "steps": 4000, "eval_period": 1000, "calibration_steps": 200, "measure_every": 10,
             "fraction": 0.5}  # fmt: skip
    study.update(steps=300, eval_period=100, pair="bevformer_cpu_bev50", calibration_steps=20,
                 expert="projects/BEVFormer/zoo/cpu_expert")  # fmt: skip
    assert list(study_plan(300, 100, 20).items()) == list(study.items())


def test_the_methods_whose_balanced_weights_are_their_calibrated_ones_have_one_loss():
    # the balanced report borrows their calibrated runs: true only with one loss per stage
    for name in BALANCED_AS_CALIBRATED:
        losses = load_config(STUDY_METHODS[name].config, []).DISTILL.LOSSES
        assert len(losses) == 1, (name, losses)
    assert len(load_config(STUDY_METHODS["fd3d"].config, []).DISTILL.LOSSES) == 2
