"""fd3d.hub: save/load round trip, model card, atomic writes, strict loading, Hub errors, push tool."""

from __future__ import annotations

import importlib
import json
import os
import shutil
import stat
from pathlib import Path
from types import SimpleNamespace

import huggingface_hub
import pytest
import torch
from huggingface_hub import ModelCard, constants
from huggingface_hub import errors as hf_errors
from safetensors.torch import load_file, save_file

import fd3d.hub.remote
import fd3d.hub.weights
from fd3d.config import load_config
from fd3d.data.example_batch import example_batch
from fd3d.hub import (
    CONFIG_NAME,
    WEIGHTS_NAME,
    HubError,
    from_pretrained,
    load_pretrained_config,
    load_weights_into,
    push_to_hub,
    resolve_folder,
    save_pretrained,
)
from fd3d.modeling import build_model

PROJECTS = Path(__file__).resolve().parents[1] / "projects"  # detector configs: <Name>/configs/
METRICS = {"NDS": 0.41236, "mAP": 0.3125, "mATE": 0.7, "mASE": 0.28, "mAOE": 0.55, "mAVE": 1.25, "mAAE": 0.2}
EXPERT = "some-org/detr3d-cpu-expert"


@pytest.fixture(scope="module")
def cfg():
    return load_config(PROJECTS / "DETR3D/configs/cpu_apprentice.yaml")


@pytest.fixture(scope="module")
def model(cfg):
    torch.manual_seed(0)
    return build_model(cfg).eval()


@pytest.fixture(scope="module")
def saved(model, cfg, tmp_path_factory) -> Path:
    """A model folder written once per module; tests that change it work on a copy."""
    folder = tmp_path_factory.mktemp("hub") / "apprentice"
    return save_pretrained(
        model, cfg, folder, metrics=METRICS, gflops=0.8934, distilled_from=EXPERT, method="FD3D (SMGD + QFD)"
    )


@pytest.fixture
def copy_of_saved(saved, tmp_path) -> Path:
    target = tmp_path / "copy"
    shutil.copytree(saved, target)
    return target


@pytest.fixture
def no_hub(monkeypatch, tmp_path):
    """Offline mode forced and an empty cache, so no cached snapshot can answer."""
    cache = tmp_path / "hf_cache"
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))


def _edit_config(folder: Path, section: str, key: str, value) -> None:
    payload = json.loads((folder / CONFIG_NAME).read_text())
    payload["fd3d_config"]["MODEL"][section][key] = value
    (folder / CONFIG_NAME).write_text(json.dumps(payload))


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def test_round_trip_gives_identical_outputs_and_weights(model, saved):
    loaded = from_pretrained(str(saved))
    assert not loaded.training
    expected, got = model.state_dict(), loaded.state_dict()
    assert list(got) == list(expected)
    assert all(torch.equal(got[key], expected[key]) for key in expected)
    batch = example_batch((112, 200))
    with torch.no_grad():
        before, after = model(batch), loaded(batch)
    for key in ("boxes_lidar", "scores", "labels"):
        assert torch.equal(before[0][key], after[0][key]), key


def test_config_round_trips(cfg, saved):
    payload = json.loads((saved / CONFIG_NAME).read_text())
    assert payload["format_version"] == 1
    loaded_cfg, folder = load_pretrained_config(str(saved))
    assert folder == saved
    assert loaded_cfg == cfg
    assert set(_snapshot(saved)) == {CONFIG_NAME, WEIGHTS_NAME, "README.md"}


def test_model_card_states_metrics_flops_expert_and_usage(saved):
    text = (saved / "README.md").read_text()
    assert "0.4124" in text and "0.3125" in text  # NDS, mAP with 4 decimals
    assert "| NDS | mAP | mATE | mASE | mAOE | mAVE | mAAE |" in text
    assert "**GFLOPs:** 0.89" in text
    assert f"**Distilled from:** `{EXPERT}`" in text and "FD3D (SMGD + QFD)" in text
    assert "112×200" in text and "ResNet (basic blocks, depths 1-1-1-1" in text
    assert "from fd3d.hub import from_pretrained" in text and 'from_pretrained("ORG/NAME")' in text
    data = ModelCard.load(saved / "README.md").data
    assert data.library_name == "fd3d"
    assert data.tags == ["3d-object-detection", "nuscenes", "knowledge-distillation", "DETR3D"]
    nds = next(result for result in data.eval_results if result.metric_name == "NDS")
    assert nds.metric_value == pytest.approx(0.4124)


def test_backbone_pretrained_name_is_kept_but_not_downloaded(copy_of_saved, no_hub):
    _edit_config(copy_of_saved, "BACKBONE", "PRETRAINED", "microsoft/resnet-18")
    loaded = from_pretrained(str(copy_of_saved))  # offline: a backbone download would fail
    assert isinstance(loaded, torch.nn.Module)
    assert load_pretrained_config(str(copy_of_saved))[0].MODEL.BACKBONE.PRETRAINED == "microsoft/resnet-18"


def test_saving_again_replaces_the_folder(model, cfg, copy_of_saved):
    other = build_model(cfg)
    with torch.no_grad():
        for parameter in other.parameters():
            parameter.add_(1.0)
    save_pretrained(other, cfg, copy_of_saved)
    weights = load_file(str(copy_of_saved / WEIGHTS_NAME))
    assert all(torch.equal(weights[key], value) for key, value in other.state_dict().items())
    assert "Not evaluated." in (copy_of_saved / "README.md").read_text()  # no metrics this time
    assert sorted(path.name for path in copy_of_saved.parent.iterdir()) == ["copy"]


def test_crash_mid_write_keeps_the_previous_folder(model, cfg, copy_of_saved, monkeypatch):
    before = _snapshot(copy_of_saved)

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(fd3d.hub.weights, "serialize", disk_full)
    with pytest.raises(OSError, match="No space left"):
        save_pretrained(model, cfg, copy_of_saved, metrics=METRICS)
    assert _snapshot(copy_of_saved) == before
    assert sorted(path.name for path in copy_of_saved.parent.iterdir()) == ["copy"]  # no temp folder left
    monkeypatch.undo()
    loaded = from_pretrained(str(copy_of_saved))
    assert all(torch.equal(loaded.state_dict()[key], value) for key, value in model.state_dict().items())


def test_failed_swap_puts_the_previous_folder_back(model, cfg, copy_of_saved, second_rename_fails):
    before = _snapshot(copy_of_saved)
    calls = second_rename_fails
    with pytest.raises(OSError, match="rename interrupted"):
        save_pretrained(model, cfg, copy_of_saved)
    assert calls[0][0] == "copy" and calls[0][1].startswith(".copy.old-")
    assert _snapshot(copy_of_saved) == before
    assert sorted(path.name for path in copy_of_saved.parent.iterdir()) == ["copy"]


def test_saved_folder_has_ordinary_permissions(saved):
    reference = saved.parent / "reference"
    reference.mkdir()
    assert stat.S_IMODE(saved.stat().st_mode) == stat.S_IMODE(reference.stat().st_mode)


def test_saved_files_have_the_umask_permissions(model, cfg, tmp_path):
    """Every file, model.safetensors included, gets the mode a plain open gives under the umask."""
    previous = os.umask(0o027)
    try:
        folder = save_pretrained(model, cfg, tmp_path / "model")
    finally:
        os.umask(previous)
    modes = {path.name: stat.S_IMODE(path.stat().st_mode) for path in folder.iterdir()}
    assert modes == {name: 0o640 for name in (CONFIG_NAME, WEIGHTS_NAME, "README.md")}  # 0o666 & ~0o027


def test_refuses_to_replace_a_folder_that_is_not_a_model(model, cfg, tmp_path):
    (tmp_path / "notes.txt").write_text("keep me")
    with pytest.raises(HubError, match="non-empty folder without config.json"):
        save_pretrained(model, cfg, tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "keep me"


def test_metrics_missing_a_key_are_refused(model, cfg, tmp_path):
    with pytest.raises(ValueError, match="mAAE"):
        save_pretrained(model, cfg, tmp_path / "m", metrics={k: v for k, v in METRICS.items() if k != "mAAE"})
    assert not (tmp_path / "m").exists()


def test_shape_mismatch_lists_keys_with_both_shapes(copy_of_saved):
    _edit_config(copy_of_saved, "HEAD", "NUM_QUERIES", 150)
    with pytest.raises(HubError) as info:
        from_pretrained(str(copy_of_saved))
    message = str(info.value)
    assert (
        "shape mismatches" in message and "missing keys" not in message and "unexpected keys" not in message
    )
    mismatched = [line.strip() for line in message.splitlines() if ": saved (" in line]
    assert mismatched and all("(200," in line and "vs model (150," in line for line in mismatched)


def test_missing_and_unexpected_keys_are_listed(model, saved, tmp_path):
    weights = load_file(str(saved / WEIGHTS_NAME))
    dropped = next(iter(weights))
    del weights[dropped]
    weights["head.not_a_parameter"] = torch.zeros(3)
    save_file(weights, str(tmp_path / WEIGHTS_NAME))
    with pytest.raises(HubError) as info:
        load_weights_into(build_model(load_pretrained_config(str(saved))[0]), tmp_path / WEIGHTS_NAME)
    message = str(info.value)
    assert f"missing keys (1):\n    {dropped}" in message
    assert "unexpected keys (1):\n    head.not_a_parameter" in message


def test_not_a_model_folder(tmp_path, copy_of_saved):
    (tmp_path / "empty").mkdir()
    with pytest.raises(HubError, match="not an fd3d model folder: missing config.json"):
        from_pretrained(str(tmp_path / "empty"))
    (copy_of_saved / WEIGHTS_NAME).unlink()
    with pytest.raises(HubError, match="missing model.safetensors"):
        from_pretrained(str(copy_of_saved))


def test_invalid_json_names_the_file(copy_of_saved):
    (copy_of_saved / CONFIG_NAME).write_text("{not json")
    with pytest.raises(HubError, match=f"cannot read {copy_of_saved / CONFIG_NAME}: JSONDecodeError"):
        from_pretrained(str(copy_of_saved))


@pytest.mark.parametrize(
    "location", ["./no-such-model", "/no/such/model", "~/no-such-fd3d-model", "a/b/c", "a\\b"]
)
def test_missing_local_path_is_not_found_without_the_network(location, no_hub, monkeypatch):
    monkeypatch.setattr(fd3d.hub.remote, "snapshot_download", pytest.fail)  # never reached
    with pytest.raises(HubError, match="model folder not found"):
        from_pretrained(location)


def test_path_object_is_always_local(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(fd3d.hub.remote, "snapshot_download", pytest.fail)
    with pytest.raises(HubError, match="model folder not found"):
        resolve_folder(Path("some-org/some-model"))


def test_revision_with_a_local_folder_is_refused(saved):
    with pytest.raises(HubError, match="revisions are for Hub ids"):
        resolve_folder(str(saved), revision="v1")


@pytest.mark.parametrize("revision", [None, "v1"])
def test_offline_hub_error_names_repo_and_local_alternative(no_hub, revision):
    with pytest.raises(HubError) as info:
        from_pretrained("some-org/some-model", revision=revision)
    message = str(info.value)
    assert "'some-org/some-model'" in message and "HF_HUB_OFFLINE" in message
    assert "hf download some-org/some-model" in message and "--local-dir DIR" in message
    assert "local folder" in message
    if revision:
        assert "revision 'v1'" in message and "--revision v1" in message


def _connection_error():
    return ConnectionError("Failed to establish a new connection")


def _http_error():
    # Request lives beside Response in the HTTP client huggingface_hub uses (httpx or its fork httpx2).
    http = importlib.import_module(hf_errors.Response.__module__)
    request = http.Request("POST", "https://huggingface.co/api/repos/create")
    response = hf_errors.Response(503, request=request)
    return hf_errors.HfHubHTTPError("503 Server Error: Service Unavailable", response=response)


@pytest.mark.parametrize("make_error", [_connection_error, _http_error])
def test_push_failure_leaves_folder_intact(copy_of_saved, monkeypatch, make_error):
    before = _snapshot(copy_of_saved)

    def unreachable(self, *args, **kwargs):
        raise make_error()

    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", unreachable)
    with pytest.raises(HubError) as info:
        push_to_hub(copy_of_saved, "some-org/x", token="hf_fake")
    message = str(info.value)
    assert "'some-org/x'" in message and message.endswith(f"the folder {copy_of_saved} is intact")
    assert _snapshot(copy_of_saved) == before


def test_push_offline_without_mocks_is_a_hub_error(copy_of_saved, no_hub):
    with pytest.raises(HubError, match="is intact"):
        push_to_hub(copy_of_saved, "some-org/x", token="hf_fake")


def test_push_creates_repo_and_branch_then_uploads(copy_of_saved, monkeypatch):
    calls = []

    def record(name, result=None):
        def method(self, *args, **kwargs):
            calls.append((name, args, kwargs))
            return result

        return method

    commit = SimpleNamespace(commit_url="https://huggingface.co/some-org/x/commit/abc")
    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", record("create_repo"))
    monkeypatch.setattr(huggingface_hub.HfApi, "create_branch", record("create_branch"))
    monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", record("upload_folder", commit))
    url = push_to_hub(copy_of_saved, "some-org/x", private=True, revision="exp", token="hf_fake")
    assert url == commit.commit_url
    assert [name for name, _, _ in calls] == ["create_repo", "create_branch", "upload_folder"]
    assert calls[0][1] == ("some-org/x",) and calls[0][2] == {"private": True, "exist_ok": True}
    assert calls[1][2] == {"branch": "exp", "exist_ok": True}
    assert calls[2][2]["folder_path"] == copy_of_saved and calls[2][2]["revision"] == "exp"


def test_push_refuses_a_folder_that_is_not_a_model(tmp_path):
    with pytest.raises(HubError, match="missing config.json"):
        push_to_hub(tmp_path, "some-org/x")


def test_push_tool_exits_2_with_the_error(tmp_path, capsys):
    from tools.push_to_hub import main

    assert main(["--checkpoint", str(tmp_path), "--repo-id", "some-org/x"]) == 2
    captured = capsys.readouterr()
    assert "not an fd3d model folder: missing config.json" in captured.err
    assert "Traceback" not in captured.err and captured.out == ""


def test_push_tool_prints_the_commit_url(copy_of_saved, monkeypatch, capsys):
    from tools.push_to_hub import main

    def fake_push(folder, repo_id, **kwargs):
        assert (folder, repo_id, kwargs["private"]) == (str(copy_of_saved), "some-org/x", True)
        return "https://huggingface.co/some-org/x/commit/abc"

    monkeypatch.setattr("tools.push_to_hub.push_to_hub", fake_push)
    assert main(["--checkpoint", str(copy_of_saved), "--repo-id", "some-org/x", "--private"]) == 0
    assert capsys.readouterr().out.strip() == "https://huggingface.co/some-org/x/commit/abc"
