"""ONNX export of both CPU detectors: onnxruntime gives PyTorch's boxes frame by frame, and the same NDS."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from fd3d.config import load_config
from fd3d.data.can_bus import host_can_bus, relative_can_bus
from fd3d.data.dataset import NuScenesDataset
from fd3d.data.example_batch import example_batch
from fd3d.deploy.onnx_export import ExportError, compare_frame, compare_runtimes, export_onnx, onnx_runner
from fd3d.evaluation.nuscenes_eval import Detections, evaluate_detections
from fd3d.evaluation.scene_protocol import predict_scenes, scene_loader
from fd3d.hub import save_pretrained
from fd3d.modeling.evaluating import evaluating
from fd3d.modeling.registry import build_model
from tools.export_onnx import main as export_tool

PROJECTS = Path(__file__).resolve().parents[2] / "projects"  # detector configs: <Name>/configs/
TOLERANCE = 1e-4


def apprentice(name: str, *overrides: str):
    torch.manual_seed(0)
    cfg = load_config(PROJECTS / name / "configs" / "cpu_apprentice.yaml", list(overrides))
    return build_model(cfg).eval(), cfg


def split_samples(root: Path, model) -> tuple[NuScenesDataset, list[dict]]:
    dataset = NuScenesDataset(root, "v1.0-mini", "mini_val", model.image_size, model.pc_range.tolist())
    return dataset, [dataset[i] for i in range(len(dataset))]


def nds(dataset: NuScenesDataset, frames: list, out: Path) -> float:
    detections = {token: Detections(*outputs) for token, outputs in frames}
    return evaluate_detections(dataset.reader, detections, "mini_val", out)["NDS"]


def test_bevformer_streams_through_onnxruntime_as_in_pytorch(mini_dataroot, tmp_path):
    model, _ = apprentice("BEVFormer")
    result = export_onnx(model, example_batch(model.image_size), tmp_path / "bevformer.onnx")
    assert result.input_names == ["images", "lidar2img", "prev_bev", "curr2prev_lidar", "prev_exists"]
    assert result.output_names[-2:] == ["bev", "hits_dropped"]
    dataset, samples = split_samples(mini_dataroot, model)
    assert sum(not bool(s["prev_exists"]) for s in samples) == 2  # two scenes: the state is reset once more
    comparison = compare_runtimes(model, result.path, iter(samples), tolerance=TOLERANCE)
    assert comparison.frames == len(samples)
    assert comparison.failures(TOLERANCE) == [], comparison.worst
    assert comparison.worst["bev"] < TOLERANCE
    scores = [nds(dataset, comparison.detections[n], tmp_path / n) for n in ("eager", "onnx")]
    assert f"{scores[0]:.4f}" == f"{scores[1]:.4f}"


# the official architecture's mechanisms (BEVFormer-Tiny/Small/Base): CAN-bus MLP, rotate + shift alignment
OFFICIAL_SWITCHES = (
    "MODEL.BEVFORMER.USE_CAN_BUS", "True", "MODEL.BEVFORMER.ALIGNMENT", "rotate_shift",
    "MODEL.BEVFORMER.TSA_VALUE", "input_query", "MODEL.BEVFORMER.SCA_QUERY_POS", "False",
    "MODEL.BEVFORMER.QUEUE_LENGTH", "2",
)  # fmt: skip


def test_can_bus_bevformer_exports_the_deployed_signature_and_streams_a_scene_change(mini_dataroot, tmp_path):
    """(images, lidar2img, can_bus, prev_bev, use_prev_bev) -> detections, bev; the host forms the CAN-bus
    deltas and resets the state at the second scene; eager PyTorch and onnxruntime agree frame by frame,
    and both agree with the evaluation's scene protocol (the CAN bus formed inside the model)."""
    model, _ = apprentice("BEVFormer", *OFFICIAL_SWITCHES)
    with torch.no_grad():  # the CAN bus and the history must matter: not near zero at init
        for name, parameter in model.named_parameters():
            if "can_bus_mlp" in name or "tsa" in name:
                parameter.add_(torch.randn_like(parameter) * 0.2)
    result = export_onnx(model, example_batch(model.image_size), tmp_path / "official.onnx")
    assert result.input_names == ["images", "lidar2img", "can_bus", "prev_bev", "use_prev_bev"]
    dataset, samples = split_samples(mini_dataroot, model)
    assert sum(not bool(s["prev_exists"]) for s in samples) == 2
    comparison = compare_runtimes(model, result.path, iter(samples), tolerance=TOLERANCE)
    assert comparison.failures(TOLERANCE) == [], comparison.worst
    assert comparison.worst["bev"] < TOLERANCE
    scores = [nds(dataset, comparison.detections[n], tmp_path / n) for n in ("eager", "onnx")]
    assert f"{scores[0]:.4f}" == f"{scores[1]:.4f}"
    with evaluating(model):  # the deployed host loop is the official test protocol
        protocol = predict_scenes(model, scene_loader(dataset, 0), "cpu")
    for token, (_, scores_, _) in comparison.detections["onnx"]:
        np.testing.assert_allclose(scores_, protocol[token]["scores"].numpy(), atol=1e-4)


def test_host_can_bus_is_the_models_relative_can_bus():
    rng = np.random.default_rng(0)
    current, previous = rng.normal(size=18) * 100, rng.normal(size=18) * 100
    for prev, has in ((previous, True), (None, False)):
        expected = relative_can_bus(
            torch.from_numpy(current)[None], None if prev is None else torch.from_numpy(prev)[None],
            torch.tensor([has]),
        )[0].numpy()  # fmt: skip
        np.testing.assert_allclose(host_can_bus(current, prev), expected, atol=1e-12)
    assert host_can_bus(current, None)[[0, 1, 2, 17]].tolist() == [0, 0, 0, 0]


def test_the_fed_back_bev_matters(mini_dataroot, tmp_path):
    """The graph's prev_bev input is really used: another history changes the BEV."""
    model, _ = apprentice("BEVFormer")
    with torch.no_grad():  # a history that is not zero-like at init: random TSA/value projections act on it
        for p in model.encoder.layers[0].tsa.sampling_offsets.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    _, samples = split_samples(mini_dataroot, model)
    sample = samples[1]
    assert bool(sample["prev_exists"])
    batch = {k: sample[k][None] for k in ("images", "lidar2img", "curr2prev_lidar", "prev_exists")}
    with torch.no_grad():
        zero = model.extract_features({**batch, "prev_bev": torch.zeros(1, 64, 25, 25)}).bev
        other = model.extract_features({**batch, "prev_bev": torch.ones(1, 64, 25, 25)}).bev
    assert (zero - other).abs().max() > 1e-3


def test_detr3d_export_check_tool(mini_dataroot, tmp_path, capsys):
    model, cfg = apprentice("DETR3D")
    save_pretrained(model, cfg, tmp_path / "model")
    args = ["--model", str(tmp_path / "model"), "--out", str(tmp_path / "detr3d.onnx"), "--check",
            "--dataroot", str(mini_dataroot), "--version", "v1.0-mini", "--split", "mini_val"]  # fmt: skip
    assert export_tool(args) == 0
    printed = capsys.readouterr().out
    assert "check passed" in printed and "inputs  images, lidar2img\n" in printed
    run, info = onnx_runner(tmp_path / "detr3d.onnx")
    assert info["bev_shape"] is None and info["outputs"] == [
        "boxes_lidar",
        "scores",
        "labels",
        "queries",
        "codes",
    ]


def test_a_deformable_backbone_is_refused_by_name(tmp_path):
    model, _ = apprentice("DETR3D", "MODEL.BACKBONE.DCN_STAGES", "[3]")
    with pytest.raises(ExportError, match=r"MODEL\.BACKBONE\.DCN_STAGES \[\]"):
        export_onnx(model, example_batch(model.image_size), tmp_path / "dcn.onnx")
    assert not list(tmp_path.iterdir())


def test_compare_frame_matches_detections_by_query_and_label():
    boxes = np.arange(27, dtype=np.float32).reshape(3, 9)
    codes = np.arange(30, dtype=np.float32).reshape(3, 10)
    scores = np.array([0.9, 0.5, 0.5], np.float32)
    a = [boxes, scores, np.array([1, 2, 3]), np.array([7, 8, 9]), codes]
    # the two tied detections in the other order, the first box (and its code) off by 1e-3
    off = np.float32(1e-3) * (np.arange(3)[:, None] == 0)
    b = [boxes[[0, 2, 1]] + off, scores, np.array([1, 3, 2]), np.array([7, 9, 8]), codes[[0, 2, 1]] + off]
    result = compare_frame(a, b, 1e-4)
    assert result["boxes_lidar"] == pytest.approx(1e-3, rel=1e-3) and result["scores"] == 0.0
    assert result["codes"] == pytest.approx(1e-3, rel=1e-3)
    assert result["boundary_swaps"] == 0 and result["unexplained"] == 0
    # the last one swapped at the cut-off for another detection with the same score
    b_swap = [b[0], b[1], np.array([1, 3, 4]), np.array([7, 9, 5]), b[4]]
    assert compare_frame(a, b_swap, 1e-4)["boundary_swaps"] == 2  # (8, 2) out, (5, 4) in, both at 0.5
    b_far = [b[0], np.array([0.9, 0.5, 0.8], np.float32), np.array([1, 3, 4]), np.array([7, 9, 5]), b[4]]
    assert compare_frame(a, b_far, 1e-4)["unexplained"] == 1  # (5, 4) at 0.8 is no tie at the cut-off


def test_a_foreign_onnx_file_is_named(tmp_path):
    import onnx

    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Identity", ["x"], ["y"])],
        "foreign",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])],
    )
    onnx.save(onnx.helper.make_model(graph), tmp_path / "foreign.onnx")
    with pytest.raises(ExportError, match="not written by fd3d"):
        onnx_runner(tmp_path / "foreign.onnx")


def test_a_bare_onnxruntime_session_opens_an_exported_file_without_warnings(tmp_path, capfd):
    """No CastLike is left for onnxruntime's constant folding to warn about (each one printed a line)."""
    import onnx
    import onnxruntime as ort

    model, _ = apprentice("BEVFormer", *OFFICIAL_SWITCHES)
    path = export_onnx(model, example_batch(model.image_size), tmp_path / "official.onnx").path
    assert not [node for node in onnx.load(path).graph.node if node.op_type == "CastLike"]
    capfd.readouterr()
    ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])  # default options: warnings shown
    printed = capfd.readouterr()
    assert "W:onnxruntime" not in printed.err + printed.out


def widened(samples: list[dict], factor: float) -> list[dict]:
    """The same frames seen by cameras whose focal lengths are `factor` times theirs (principal point
    kept): another rig, with a wider field of view for factor < 1 (more BEV cells hit per camera)."""
    height, width = samples[0]["images"].shape[-2:]
    zoom = torch.tensor([[factor, 0, (1 - factor) * width / 2, 0], [0, factor, (1 - factor) * height / 2, 0],
                         [0, 0, 1, 0], [0, 0, 0, 1]], dtype=samples[0]["lidar2img"].dtype)  # fmt: skip
    return [{**sample, "lidar2img": zoom @ sample["lidar2img"]} for sample in samples]


def test_the_graph_gathers_only_hit_cells_and_another_rig_within_the_margin_gives_eagers_boxes(
    mini_dataroot, tmp_path
):
    model, _ = apprentice("BEVFormer")
    result = export_onnx(model, example_batch(model.image_size), tmp_path / "bevformer.onnx", hit_margin=1.25)
    _, info = onnx_runner(result.path)
    cells = model.encoder.bev_h * model.encoder.bev_w
    assert info["export_slots"] < cells / 2  # a camera sees a fraction of the grid: far fewer than every cell
    _, samples = split_samples(mini_dataroot, model)
    comparison = compare_runtimes(model, result.path, iter(widened(samples, 0.97)), tolerance=TOLERANCE)
    assert comparison.failures(TOLERANCE) == [], comparison.worst


def test_a_rig_that_hits_more_cells_than_the_graph_gathers_is_refused(mini_dataroot, tmp_path):
    model, _ = apprentice("BEVFormer")
    result = export_onnx(model, example_batch(model.image_size), tmp_path / "bevformer.onnx", hit_margin=1.0)
    _, samples = split_samples(mini_dataroot, model)
    with pytest.raises(
        ExportError, match=r"hits more BEV cells per camera than the graph gathers .*--hit-margin"
    ):
        compare_runtimes(model, result.path, iter(widened(samples, 0.5)), tolerance=TOLERANCE)
