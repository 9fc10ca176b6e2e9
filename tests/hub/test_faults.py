"""Faults on the way, each a HubError naming the repo, the revision and the cause: a 500 on commit, a
failed LFS upload, a dropped download, a wrong revision, a private repo without a token. A failed push
leaves the folder intact and can be retried; a half-downloaded model or expert is never loaded."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from huggingface_hub import constants
from safetensors.torch import load_file

from fd3d.config import distill_config, load_config
from fd3d.distill.expert import build_frozen_expert
from fd3d.hub import WEIGHTS_NAME, HubError, from_pretrained, push_to_hub


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def _same_weights(model: torch.nn.Module, folder: Path) -> bool:
    expected, got = load_file(str(folder / WEIGHTS_NAME)), model.state_dict()
    return set(got) == set(expected) and all(torch.equal(got[key], value) for key, value in expected.items())


def test_commit_500_leaves_the_folder_intact_and_a_retry_succeeds(hub_server, model_folders):
    v1, _ = model_folders
    before = _snapshot(v1)
    hub_server.fail("commit", 500)
    with pytest.raises(HubError) as info:
        push_to_hub(v1, "org/apprentice")
    message = str(info.value)
    assert message.startswith("could not push to the Hub repo 'org/apprentice': HfHubHTTPError")
    assert "500" in message and "/api/models/org/apprentice/commit/main" in message
    assert message.endswith(f"the folder {v1} is intact")
    assert _snapshot(v1) == before
    assert len(hub_server.history("org/apprentice")) == 1  # nothing committed but the repo's creation

    push_to_hub(v1, "org/apprentice")
    assert len(hub_server.history("org/apprentice")) == 2
    assert _same_weights(from_pretrained("org/apprentice"), v1)


def test_a_refused_lfs_upload_is_a_hub_error(hub_server, model_folders):
    v1, _ = model_folders
    before = _snapshot(v1)
    hub_server.fail("lfs-upload", 403)
    with pytest.raises(HubError) as info:
        push_to_hub(v1, "org/apprentice", revision="runs")
    message = str(info.value)
    assert "'org/apprentice' (branch 'runs')" in message
    assert "Error while uploading 'model.safetensors' to the Hub (HfHubHTTPError: 403 Forbidden" in message
    assert "the Hub refused the token in use: pass a write token" in message and str(v1) in message
    assert _snapshot(v1) == before
    push_to_hub(v1, "org/apprentice", revision="runs")
    assert _same_weights(from_pretrained("org/apprentice", revision="runs"), v1)


@pytest.mark.parametrize("revision", ["no-such-branch", "0" * 40])
def test_a_wrong_revision_names_repo_and_revision(hub_server, model_folders, revision):
    push_to_hub(model_folders[0], "org/apprentice")
    with pytest.raises(HubError) as info:
        from_pretrained("org/apprentice", revision=revision)
    message = str(info.value)
    assert message.startswith(f"the Hub repo 'org/apprentice' has no revision '{revision}': give a branch")
    assert "RevisionNotFoundError" in message


def test_a_private_repo_without_a_token(hub_server, model_folders, monkeypatch):
    v1, _ = model_folders
    push_to_hub(v1, "org/secret", private=True)
    monkeypatch.delenv("HF_TOKEN")
    with pytest.raises(HubError) as info:
        from_pretrained("org/secret")
    message = str(info.value)
    assert "could not get the model 'org/secret'" in message and "private or gated" in message
    assert "no token was sent (set HF_TOKEN or run `hf auth login`)" in message
    assert "RepositoryNotFoundError: 401 Client Error" in message
    with pytest.raises(HubError, match="no token was sent: pass a write token"):
        push_to_hub(v1, "org/secret")

    monkeypatch.setenv("HF_TOKEN", "hf_not_the_right_one")
    with pytest.raises(HubError, match="the token in use may not read it"):
        from_pretrained("org/secret")
    monkeypatch.setenv("HF_TOKEN", hub_server.token)
    assert _same_weights(from_pretrained("org/secret"), v1)


def _cache_files(root: str) -> list[Path]:
    return [path for path in Path(root).rglob("*") if path.is_file()]


def test_a_dropped_download_is_never_loaded_and_a_retry_loads_the_full_model(
    hub_server, model_folders, no_retry_pause
):
    v1, _ = model_folders
    push_to_hub(v1, "org/apprentice")
    hub_server.drop_download(WEIGHTS_NAME)  # every attempt, the client's five resumes included
    with pytest.raises(HubError) as info:
        from_pretrained("org/apprentice")
    message = str(info.value)
    assert message.startswith("could not get the model 'org/apprentice' from the Hugging Face Hub: ")
    assert "RemoteProtocolError: peer closed connection without sending complete message body" in message
    assert "Nothing was loaded" in message
    assert hub_server.count("resolve", "GET") >= 6
    cached = _cache_files(constants.HF_HUB_CACHE)
    assert not [path for path in cached if "incomplete" in path.name]
    assert all(path.stat().st_size < 1_000_000 for path in cached)  # config and card only, no weights

    hub_server.clear_faults()
    assert _same_weights(from_pretrained("org/apprentice"), v1)


def test_a_half_downloaded_expert_is_refused_until_the_hub_is_back(hub_server, model_folders, no_retry_pause):
    v1, _ = model_folders
    push_to_hub(v1, "org/expert")
    cfg = load_config(distill_config("detr3d_cpu", "fd3d"), ["DISTILL.EXPERT.WEIGHTS", "org/expert"])
    hub_server.drop_download(WEIGHTS_NAME)
    with pytest.raises(HubError, match="RemoteProtocolError"):
        build_frozen_expert(cfg)

    hub_server.fail("info", 500, times=None)  # the Hub is down: only the partial cached copy is at hand
    with pytest.raises(HubError) as info:
        build_frozen_expert(cfg)
    message = str(info.value)
    assert "could not get the model 'org/expert': its cached copy is incomplete" in message
    assert "nothing was loaded" in message and "model.safetensors" in message

    hub_server.clear_faults()
    model, _ = build_frozen_expert(cfg)
    assert _same_weights(model, v1)


def test_one_dropped_connection_is_retried_by_the_client(hub_server, model_folders, no_retry_pause):
    v1, _ = model_folders
    push_to_hub(v1, "org/apprentice")
    hub_server.drop_download(WEIGHTS_NAME, times=1)
    assert _same_weights(from_pretrained("org/apprentice"), v1)
    weights_gets = [call for call in hub_server.calls if call[0] == "GET" and call[1].endswith(WEIGHTS_NAME)]
    assert len(weights_gets) == 2


def test_push_tool_exits_2_on_a_failed_commit_and_succeeds_when_run_again(hub_server, model_folders, capsys):
    from tools.push_to_hub import main

    v1, _ = model_folders
    argv = ["--checkpoint", str(v1), "--repo-id", "org/cli"]
    hub_server.fail("commit", 503)
    assert main(argv) == 2
    captured = capsys.readouterr()
    error = captured.err.splitlines()[-1]  # after the upload's progress bar
    assert error.startswith("error: could not push to the Hub repo 'org/cli': HfHubHTTPError")
    assert "503" in error and "Traceback" not in captured.err and captured.out == ""
    assert main(argv) == 0
    assert capsys.readouterr().out.strip() == f"{hub_server.url}/org/cli/commit/{hub_server.head('org/cli')}"
