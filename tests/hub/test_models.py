"""Model repositories end to end through the real clients: push_to_hub, from_pretrained (with revisions and
branches), tools/push_to_hub.py and an expert given by Hub id in a distillation config."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

from fd3d.config import distill_config, load_config
from fd3d.distill.expert import build_frozen_expert
from fd3d.hub import (
    CARD_NAME,
    CONFIG_NAME,
    WEIGHTS_NAME,
    from_pretrained,
    load_pretrained_config,
    push_to_hub,
)

REPO_ROOT = Path(__file__).resolve().parents[2]


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def assert_weights_of(model: torch.nn.Module, folder: Path) -> None:
    expected = load_file(str(folder / WEIGHTS_NAME))
    got = model.state_dict()
    assert set(got) == set(expected)
    assert all(torch.equal(got[key], value) for key, value in expected.items())


def test_push_then_from_pretrained_round_trips(hub_server, model_folders):
    v1, _ = model_folders
    before = _snapshot(v1)
    url = push_to_hub(v1, "org/apprentice")
    head = hub_server.head("org/apprentice")
    assert url == f"{hub_server.url}/org/apprentice/commit/{head}"
    stored = hub_server.files("org/apprentice")
    assert sorted(stored) == [".gitattributes", CARD_NAME, CONFIG_NAME, WEIGHTS_NAME]
    assert stored[WEIGHTS_NAME].lfs and not stored[CONFIG_NAME].lfs  # safetensors through the LFS batch API
    assert {name: stored[name].data for name in before} == before
    assert _snapshot(v1) == before

    model = from_pretrained("org/apprentice")
    assert not model.training
    assert_weights_of(model, v1)
    _, folder = load_pretrained_config("org/apprentice")
    assert folder.name == head and str(folder).startswith(os.environ["HF_HUB_CACHE"])


def test_an_older_commit_gives_the_older_weights(hub_server, model_folders):
    v1, v2 = model_folders
    push_to_hub(v1, "org/apprentice")
    first = hub_server.head("org/apprentice")
    push_to_hub(v2, "org/apprentice", commit_message="second training run")
    second = hub_server.head("org/apprentice")
    assert first != second and hub_server.history("org/apprentice")[:2] == [second, first]

    assert_weights_of(from_pretrained("org/apprentice"), v2)
    assert_weights_of(from_pretrained("org/apprentice", revision=first), v1)
    assert_weights_of(from_pretrained("org/apprentice", revision=second), v2)


def test_push_to_a_branch_leaves_main_alone(hub_server, model_folders):
    v1, v2 = model_folders
    push_to_hub(v1, "org/apprentice")
    push_to_hub(v2, "org/apprentice", revision="experiments")
    assert hub_server.head("org/apprentice", "experiments") != hub_server.head("org/apprentice")
    assert_weights_of(from_pretrained("org/apprentice"), v1)
    assert_weights_of(from_pretrained("org/apprentice", revision="experiments"), v2)


def test_pushing_an_unchanged_folder_makes_no_commit(hub_server, model_folders):
    v1, _ = model_folders
    push_to_hub(v1, "org/apprentice")
    commits = hub_server.history("org/apprentice")
    url = push_to_hub(v1, "org/apprentice")
    assert hub_server.history("org/apprentice") == commits
    assert url.endswith(commits[0])
    assert hub_server.count("lfs-upload") == 1  # the weights went up once


def test_push_tool_in_a_fresh_process_follows_hf_endpoint(hub_server, model_folders):
    """A subprocess reads HF_ENDPOINT & co. from the environment at import, as a user's shell would."""
    v1, _ = model_folders
    command = [sys.executable, "tools/push_to_hub.py", "--checkpoint", str(v1), "--repo-id", "org/cli"]
    done = subprocess.run(
        [*command, "--private"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"{hub_server.url}/org/cli/commit/{hub_server.head('org/cli')}"
    assert hub_server.repos[("model", "org/cli")].private
    assert_weights_of(from_pretrained("org/cli"), v1)


def test_expert_by_hub_id_and_revision(hub_server, model_folders):
    v1, v2 = model_folders
    push_to_hub(v1, "org/expert")
    first = hub_server.head("org/expert")
    push_to_hub(v2, "org/expert")

    def expert(*overrides: str) -> torch.nn.Module:
        opts = ["DISTILL.EXPERT.WEIGHTS", "org/expert", *overrides]
        model, expert_cfg = build_frozen_expert(load_config(distill_config("detr3d_cpu", "fd3d"), opts))
        assert expert_cfg.MODEL.META_ARCHITECTURE == "DETR3D"
        assert not model.training and not any(parameter.requires_grad for parameter in model.parameters())
        return model

    assert_weights_of(expert("DISTILL.EXPERT.REVISION", first), v1)
    assert_weights_of(expert(), v2)
