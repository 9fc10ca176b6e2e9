"""The official temporal test protocol (TEST.TEMPORAL_PROTOCOL "scene"): one BEV carried through each scene.

References: the queue protocol (a different code path: the dataset's queue, re-encoded per sample) gives
the same predictions wherever its queue holds the frame's whole history, and differs where it does not;
the official code's own multi-frame outputs are the reference of `stream_frame` through
`fd3d.official.parity.run_frames` (tests/official)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from fd3d.config import ConfigError, load_config
from fd3d.data.dataset import NuScenesDataset, collate_samples
from fd3d.engine.trainer import evaluate_only
from fd3d.evaluation.inference import evaluate_model
from fd3d.evaluation.nuscenes_eval import evaluate_detections
from fd3d.evaluation.predict import to_detections
from fd3d.evaluation.scene_protocol import predict_scenes, scene_indices, scene_loader, uses_scene_protocol
from fd3d.hub import save_pretrained
from fd3d.modeling.evaluating import evaluating
from fd3d.modeling.registry import build_model

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "projects" / "BEVFormer" / "configs" / "cpu_apprentice.yaml"
# the official mechanisms: CAN-bus MLP and rotate + shift alignment read the carried CAN bus too
OFFICIAL_SWITCHES = [
    "MODEL.BEVFORMER.USE_CAN_BUS", "True",
    "MODEL.BEVFORMER.ALIGNMENT", "rotate_shift",
    "MODEL.BEVFORMER.TSA_VALUE", "input_query",
    "MODEL.BEVFORMER.ENCODER_LAYERS", "2",
]  # fmt: skip


def data(dataroot: Path) -> list[str]:
    return [
        "DATASETS.DATAROOT",
        str(dataroot),
        "DATASETS.VERSION",
        "v1.0-mini",
        "DATASETS.TEST_SPLIT",
        "mini_val",
    ]


def temporal_model(queue_length: int, protocol: str = "") -> torch.nn.Module:
    """`protocol`: the TEST.TEMPORAL_PROTOCOL the model's own config names ("" for fd3d's "queue")."""
    torch.manual_seed(0)
    options = [*OFFICIAL_SWITCHES, "MODEL.BEVFORMER.QUEUE_LENGTH", str(queue_length)]
    model = build_model(load_config(CONFIG, [*options, "TEST.TEMPORAL_PROTOCOL", protocol]))
    with torch.no_grad():  # history must matter: the temporal attention's output is not near zero
        for name, parameter in model.named_parameters():
            if "tsa" in name and parameter.dim() > 1:
                parameter.mul_(3.0)
    return model.eval()


def by_scene_protocol(model, dataroot: Path, loader_workers: int = 0) -> dict:
    dataset = NuScenesDataset(dataroot, "v1.0-mini", "mini_val", model.image_size, model.pc_range.tolist())
    with evaluating(model):
        return predict_scenes(model, scene_loader(dataset, loader_workers), "cpu")


def by_queue_protocol(model, dataroot: Path, queue_length: int) -> dict:
    dataset = NuScenesDataset(dataroot, "v1.0-mini", "mini_val", model.image_size, model.pc_range.tolist(),
                              queue_length=queue_length)  # fmt: skip
    with evaluating(model):
        return {dataset.tokens[i]: model(collate_samples([dataset[i]]))[0] for i in range(len(dataset))}


def frame_positions(dataroot: Path) -> dict[str, int]:
    """{sample token: its index in its scene}."""
    dataset = NuScenesDataset(dataroot, "v1.0-mini", "mini_val")
    positions = {}
    for token in dataset.tokens:
        prev = dataset.reader.get("sample", token)["prev"]
        positions[token] = 0 if not prev else positions[prev] + 1
    return positions


def assert_same(a: dict, b: dict) -> None:
    torch.testing.assert_close(a["scores"], b["scores"], atol=1e-5, rtol=0)
    torch.testing.assert_close(a["boxes_lidar"], b["boxes_lidar"], atol=1e-4, rtol=0)
    assert torch.equal(a["labels"], b["labels"])


def test_scene_protocol_equals_a_queue_that_holds_the_whole_history(mini_dataroot):
    """mini_val scenes have 3 keyframes: a queue of 2 is every frame's whole history."""
    model = temporal_model(queue_length=2)
    streamed = by_scene_protocol(model, mini_dataroot)
    queued = by_queue_protocol(model, mini_dataroot, queue_length=2)
    assert set(streamed) == set(queued) and len(streamed) == 6
    for token in queued:
        assert_same(streamed[token], queued[token])


def test_scene_protocol_keeps_history_a_short_queue_drops(mini_dataroot):
    """With a queue of 1 the third frame of a scene forgets the first; carried through the scene, it does
    not: predictions agree on frames 0-1 and differ on frame 2. The protocols are not one code path."""
    model = temporal_model(queue_length=1)
    streamed = by_scene_protocol(model, mini_dataroot)
    queued = by_queue_protocol(model, mini_dataroot, queue_length=1)
    positions = frame_positions(mini_dataroot)
    for token, position in positions.items():
        if position < 2:
            assert_same(streamed[token], queued[token])
        else:
            difference = (streamed[token]["scores"] - queued[token]["scores"]).abs().max()
            assert difference > 1e-4


def test_interleaved_scenes_keep_their_own_state(mini_dataroot):
    """DataLoader workers each read their own scenes, so frames of scenes arrive interleaved."""
    model = temporal_model(queue_length=2)
    dataset = NuScenesDataset(
        mini_dataroot, "v1.0-mini", "mini_val", model.image_size, model.pc_range.tolist()
    )
    order = scene_indices(dataset, 0, 1)
    interleaved = [i for pair in zip(order[:3], order[3:], strict=True) for i in pair]
    assert interleaved != order
    with evaluating(model):
        found = predict_scenes(model, (collate_samples([dataset[i]]) for i in interleaved), "cpu")
    for token, prediction in by_scene_protocol(model, mini_dataroot).items():
        assert_same(found[token], prediction)


def test_scenes_are_split_whole_between_processes(mini_dataroot):
    dataset = NuScenesDataset(mini_dataroot, "v1.0-mini", "mini_train")
    scene_of = {i: dataset.reader.get("sample", t)["scene_token"] for i, t in enumerate(dataset.tokens)}
    parts = [scene_indices(dataset, rank, 2) for rank in range(2)]
    assert sorted(parts[0] + parts[1]) == list(range(len(dataset)))
    assert not {scene_of[i] for i in parts[0]} & {scene_of[i] for i in parts[1]}
    for part in parts:  # time order inside each scene
        for i, j in zip(part, part[1:], strict=False):
            if scene_of[i] == scene_of[j]:
                assert dataset.reader.get("sample", dataset.tokens[j])["prev"] == dataset.tokens[i]


def test_eval_only_scores_both_protocols_and_the_scene_one_encodes_each_frame_once(
    mini_dataroot, tmp_path, monkeypatch
):
    model = temporal_model(queue_length=2)
    encoder, encodings = type(model.encoder), []
    forward = encoder.forward
    monkeypatch.setattr(
        encoder, "forward", lambda self, *a, **k: encodings.append(1) or forward(self, *a, **k)
    )
    cfg = load_config(CONFIG, [*OFFICIAL_SWITCHES, "MODEL.BEVFORMER.QUEUE_LENGTH", "2"])
    save_pretrained(model, cfg, tmp_path / "model")
    metrics, counts = {}, {}
    for protocol in ("queue", "scene"):
        encodings.clear()
        overrides = [*data(mini_dataroot), "MODEL.WEIGHTS", str(tmp_path / "model"),
                     "TEST.TEMPORAL_PROTOCOL", protocol, "OUTPUT_DIR", str(tmp_path / protocol)]  # fmt: skip
        metrics[protocol] = evaluate_only(load_config(CONFIG, overrides))
        counts[protocol] = len(encodings)
    assert counts == {"queue": 6 * 3, "scene": 6}  # 6 samples; a queue of 2 re-encodes 2 frames per sample
    assert metrics["scene"]["NDS"] == pytest.approx(metrics["queue"]["NDS"], abs=1e-6)
    assert math.isfinite(metrics["scene"]["NDS"])


def submission(folder: Path) -> dict:
    return json.loads((folder / "results_nusc.json").read_text())["results"]


def test_evaluate_model_applies_the_protocol_the_models_config_names(mini_dataroot, tmp_path):
    """`fd3d.evaluate` / `evaluate_model` (a model without a run config, as downloaded or converted): a
    model whose config names "scene" is scored frame by frame through its scenes, the submission written
    from `predict_scenes`' predictions; the argument overrides the config ("queue" = a queue model's)."""
    model = temporal_model(queue_length=1, protocol="scene")
    evaluate_model(model, mini_dataroot, "v1.0-mini", "mini_val", tmp_path / "scene", progress=False)
    streamed = {
        token: to_detections(found) for token, found in by_scene_protocol(model, mini_dataroot).items()
    }
    reader = NuScenesDataset(mini_dataroot, "v1.0-mini", "mini_val").reader
    evaluate_detections(reader, streamed, "mini_val", tmp_path / "streamed")
    assert submission(tmp_path / "scene") == submission(tmp_path / "streamed")
    evaluate_model(model, mini_dataroot, "v1.0-mini", "mini_val", tmp_path / "queue", False, "queue")
    evaluate_model(temporal_model(queue_length=1), mini_dataroot, "v1.0-mini", "mini_val",
                   tmp_path / "own", progress=False)  # fmt: skip
    assert submission(tmp_path / "queue") == submission(tmp_path / "own") != submission(tmp_path / "scene")


def test_a_protocol_name_that_does_not_exist_is_named():
    with pytest.raises(ConfigError, match=r"TEST.TEMPORAL_PROTOCOL must be one of \['queue', 'scene'\]"):
        uses_scene_protocol(temporal_model(queue_length=1), "video")


def test_single_frame_detectors_never_step_scenes():
    model = build_model(load_config(ROOT / "projects" / "DETR3D" / "configs" / "cpu_apprentice.yaml"))
    assert not uses_scene_protocol(model, "scene")
