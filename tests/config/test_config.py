"""Config loading: every shipped file and pair x method combination loads, inheritance, overlays and
overrides apply, and mistakes are named."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fd3d.config import ConfigError, distill_config, distill_methods, distill_pairs, load_config

ROOT = Path(__file__).resolve().parents[2]
BEVFORMER_CONFIGS = ROOT / "projects" / "BEVFormer" / "configs"
DETR3D_CONFIGS = ROOT / "projects" / "DETR3D" / "configs"
DETECTOR_CONFIGS = sorted(ROOT.glob("projects/*/configs/*.yaml"))
PAIRS = [ROOT / "configs" / "distill" / "pairs" / f"{pair}.yaml" for pair in distill_pairs()]
# every pair with every method: a superset of the combinations that had a file of their own
COMBINATIONS = [distill_config(pair, method) for pair in distill_pairs() for method in distill_methods()]
ALL_CONFIGS = [*DETECTOR_CONFIGS, *PAIRS, *COMBINATIONS]


def config_id(config) -> str:
    files = config if isinstance(config, list) else [config]
    return "+".join(str(path.relative_to(ROOT)) for path in files)


def test_the_paper_pairs_and_methods_ship():
    pairs = {
        "bevformer_base_star_tiny",
        "bevformer_base_small",
        "detr3d_r101_r50",
        "bevformer_cpu",
        "detr3d_cpu",
    }
    assert pairs <= set(distill_pairs())
    assert {"fd3d", "fitnet", "cwd", "mgd", "smgd_only", "qfd_only", "mask_on_gt", "cwd_qfd", "cwd_pv",
            "cwd_bev", "downsample", "heatmap", "fd3d_head_pretrained"} <= set(distill_methods())  # fmt: skip


@pytest.mark.parametrize("path", ALL_CONFIGS, ids=config_id)
def test_every_shipped_config_loads(path):
    cfg = load_config(path)
    assert cfg.is_frozen()
    assert cfg.MODEL.META_ARCHITECTURE in ("BEVFormer", "DETR3D")


def test_inheritance_chain_applies_each_level():
    tiny = load_config(BEVFORMER_CONFIGS / "tiny.yaml")
    # from small.yaml
    assert tiny.MODEL.BEVFORMER.BEV_H == 100 and tiny.MODEL.BEVFORMER.ENCODER_LAYERS == 3
    assert list(tiny.INPUT.IMAGE_SIZE) == [450, 800]
    # from tiny.yaml itself
    assert list(tiny.MODEL.BACKBONE.DEPTHS) == [3, 4, 6, 3] and list(tiny.MODEL.BACKBONE.DCN_STAGES) == []
    # from the base
    assert tiny.MODEL.BEVFORMER.QUEUE_LENGTH == 3 and tiny.MODEL.HEAD.NUM_QUERIES == 900
    base = load_config(BEVFORMER_CONFIGS / "base.yaml")
    assert list(base.MODEL.BACKBONE.DCN_STAGES) == [3, 4] and base.MODEL.BEVFORMER.BEV_H == 200


def test_command_line_overrides_win_and_are_decoded():
    cfg = load_config(
        BEVFORMER_CONFIGS / "tiny.yaml",
        ["MODEL.BEVFORMER.BEV_H", "50", "INPUT.IMAGE_SIZE", "[112, 200]", "OUTPUT_DIR", "/tmp/run"],
    )
    assert cfg.MODEL.BEVFORMER.BEV_H == 50
    assert list(cfg.INPUT.IMAGE_SIZE) == [112, 200]
    assert cfg.OUTPUT_DIR == "/tmp/run"


def test_unknown_override_names_the_key_and_lists_valid_ones():
    with pytest.raises(ConfigError) as info:
        load_config(BEVFORMER_CONFIGS / "tiny.yaml", ["MODEL.BEVFORMER.BEV_HEIGHT", "50"])
    message = str(info.value)
    assert "MODEL.BEVFORMER.BEV_HEIGHT" in message
    assert "BEV_H" in message and "QUEUE_LENGTH" in message  # the valid keys of that section
    assert "Did you mean MODEL.BEVFORMER.BEV_H" in message


def test_unknown_key_in_a_file_is_rejected(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(f'_BASE_: "{DETR3D_CONFIGS / "Base-DETR3D.yaml"}"\nSOLVERR:\n  LR: 0.1\n')
    with pytest.raises(ConfigError, match="'SOLVERR'.*Valid keys under the root"):
        load_config(bad)


def test_detector_keys_exist_only_for_their_architecture():
    with pytest.raises(ConfigError, match="MODEL.BEVFORMER"):
        load_config(DETR3D_CONFIGS / "r50.yaml", ["MODEL.BEVFORMER.BEV_H", "50"])


def test_wrong_value_type_names_the_source():
    with pytest.raises(ConfigError, match="command-line overrides"):
        load_config(DETR3D_CONFIGS / "r50.yaml", ["MODEL.HEAD.NUM_QUERIES", "many"])


def test_odd_overrides_missing_file_and_unknown_architecture():
    with pytest.raises(ConfigError, match="KEY VALUE pairs"):
        load_config(None, ["MODEL.HEAD.NUM_QUERIES"])
    with pytest.raises(ConfigError, match="not found"):
        load_config(ROOT / "configs" / "nope.yaml")
    with pytest.raises(ConfigError, match=r"registered: \['BEVFormer', 'DETR3D'\]"):
        load_config(None, ["MODEL.META_ARCHITECTURE", "PETR"])


# pair + method, and the values each level sets (CPU BEVFormer pair, "mask on GT" method)
OVERLAYS = distill_config("bevformer_cpu", "mask_on_gt")


def assert_pair_plus_mask_on_gt(cfg):
    assert list(cfg.DISTILL.LOSSES) == ["smgd"] and cfg.DISTILL.SMGD.MASKS == "gt"  # method (and its _BASE_)
    assert cfg.DISTILL.HEAD.NUM_QUERIES == 100 and cfg.DISTILL.HEAD.FFN_DIMS == 128  # pair
    assert cfg.MODEL.BEVFORMER.BEV_H == 25 and cfg.MODEL.BEVFORMER.QUEUE_LENGTH == 1  # apprentice, its base
    assert cfg.DISTILL.EXPERT.CONFIG_FILE == str(
        BEVFORMER_CONFIGS / "cpu_expert.yaml"
    )  # relative to the pair
    assert cfg.DISTILL.SMGD.WEIGHT == 0.25  # defaults


def test_overlays_merge_in_order_as_a_list_of_files():
    assert [path.parent.name for path in OVERLAYS] == ["pairs", "methods"]
    assert_pair_plus_mask_on_gt(load_config(OVERLAYS))
    assert_pair_plus_mask_on_gt(load_config([str(path) for path in OVERLAYS]))
    # later files win; the overrides win over every file
    swapped = load_config(
        [*OVERLAYS, distill_config("bevformer_cpu", "fd3d")[1]], ["DISTILL.QFD.WEIGHT", "0.5"]
    )
    assert list(swapped.DISTILL.LOSSES) == ["smgd", "qfd"] and swapped.DISTILL.SMGD.MASKS == "gt"
    assert swapped.DISTILL.QFD.WEIGHT == 0.5


def test_base_may_be_a_list_of_files_each_relative_to_the_file_naming_it(tmp_path):
    pair, method = OVERLAYS
    nested = tmp_path / "runs" / "gt_masks"
    nested.mkdir(parents=True)
    (nested / "run.yaml").write_text(
        f'_BASE_: ["{os.path.relpath(pair, nested)}", "{method}"]\nSOLVER:\n  MAX_ITER: 7\n'
    )
    cfg = load_config(nested / "run.yaml")
    assert_pair_plus_mask_on_gt(cfg)
    assert cfg.SOLVER.MAX_ITER == 7
    assert cfg.dump() == load_config(OVERLAYS, ["SOLVER.MAX_ITER", "7"]).dump()


def test_the_architecture_comes_from_the_last_file_that_sets_one():
    pair, method = distill_config("detr3d_cpu", "fd3d")
    for files in ([pair, method], [method, pair]):
        cfg = load_config(files)
        assert (
            cfg.MODEL.META_ARCHITECTURE == "DETR3D" and "DETR3D" in cfg.MODEL and "BEVFORMER" not in cfg.MODEL
        )
    with pytest.raises(ConfigError, match=r"cpu_apprentice\.yaml: unknown config key 'MODEL\.BEVFORMER'"):
        load_config([BEVFORMER_CONFIGS / "cpu_apprentice.yaml", DETR3D_CONFIGS / "cpu_apprentice.yaml"])


def test_a_bad_file_among_overlays_is_named(tmp_path):
    typo = tmp_path / "typo.yaml"
    typo.write_text("DISTILL:\n  SMGD:\n    MASK: gt\n")
    with pytest.raises(ConfigError, match=r"typo\.yaml: unknown config key 'DISTILL\.SMGD\.MASK'.*MASKS"):
        load_config([*OVERLAYS, typo])
    missing_base = tmp_path / "missing_base.yaml"
    missing_base.write_text(f'_BASE_: ["{OVERLAYS[0]}", "nowhere.yaml"]\n')
    with pytest.raises(ConfigError, match=r"not found: .*nowhere\.yaml \(in the _BASE_ of .*missing_base"):
        load_config(missing_base)
    with pytest.raises(ConfigError, match="not found: .*nope.yaml"):
        load_config([OVERLAYS[0], tmp_path / "nope.yaml"])
    broken = tmp_path / "broken.yaml"
    broken.write_text("DISTILL: [unclosed\n")
    with pytest.raises(ConfigError, match="broken.yaml is not valid YAML"):
        load_config([OVERLAYS[0], broken])
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing\n")
    with pytest.raises(ConfigError, match="empty.yaml cannot be read as a config"):
        load_config([OVERLAYS[0], empty])


def test_unknown_pair_or_method_lists_the_shipped_ones():
    with pytest.raises(ConfigError, match=r"unknown distillation method 'fd4d'; shipped: \[.*'fd3d'"):
        distill_config("bevformer_cpu", "fd4d")
    with pytest.raises(ConfigError, match=r"unknown distillation pair 'petr_cpu'; shipped: \[.*'detr3d_cpu'"):
        distill_config("petr_cpu", "fd3d")
