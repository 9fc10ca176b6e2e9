"""fp16 and int8 copies of an exported graph: same inputs and outputs, the fd3d metadata kept, detections
close to the fp32 graph's (int8 quantised where calibrated), and the int8 graph really quantised."""

from __future__ import annotations

import onnx
import pytest

from fd3d.data.dataset import collate_samples
from fd3d.deploy.onnx_export import export_onnx, onnx_runner, stream
from fd3d.deploy.precision import to_fp16, to_int8
from tests.deploy.test_onnx_export import apprentice, split_samples
from tools.benchmark_deploy import recorded_inputs


@pytest.fixture(scope="module")
def exported(mini_dataroot, tmp_path_factory):
    model, _ = apprentice("BEVFormer")
    _, samples = split_samples(mini_dataroot, model)
    folder = tmp_path_factory.mktemp("precision")
    path = export_onnx(model, collate_samples([samples[0]]), folder / "fp32.onnx").path
    return path, samples


def scores_of(path, samples):
    run, info = onnx_runner(path)
    return info, [outputs[1] for _, outputs in stream(run, iter(samples), info)]


def test_fp16_copy_keeps_the_signature_and_the_scores(exported):
    fp32, samples = exported
    fp16 = to_fp16(fp32, fp32.with_name("fp16.onnx"))
    info32, reference = scores_of(fp32, samples)
    info16, found = scores_of(fp16, samples)
    assert info16 == info32
    assert any(i.data_type == onnx.TensorProto.FLOAT16 for i in onnx.load(fp16).graph.initializer)
    for a, b in zip(reference, found, strict=True):
        assert abs(a.max() - b.max()) < 5e-3


def test_int8_copy_is_quantised_calibrated_and_close(exported):
    fp32, samples = exported
    run, info = onnx_runner(fp32)
    calibration = recorded_inputs(run, iter(samples), info, 3)
    assert len(calibration) == 3 and len(calibration[0]) == len(info["inputs"])
    int8 = to_int8(fp32, fp32.with_name("int8.onnx"), calibration)
    ops = {node.op_type for node in onnx.load(int8).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    info8, found = scores_of(int8, samples)
    _, reference = scores_of(fp32, samples)
    assert info8 == info
    for a, b in zip(reference, found, strict=True):
        assert abs(a.max() - b.max()) < 0.05
    with pytest.raises(ValueError, match="at least one calibration frame"):
        to_int8(fp32, fp32.with_name("none.onnx"), [])
