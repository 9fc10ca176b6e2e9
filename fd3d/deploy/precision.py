"""Lower-precision copies of an exported graph: float16 weights and activations, or int8 quantisation.

- fp16: `onnxruntime.transformers.float16.convert_float_to_float16` with the graph's inputs and outputs
  kept in their types (the host loop is unchanged); onnxruntime's CPU provider runs ops without float16
  kernels in float32 behind casts it inserts itself.
- int8: `onnxruntime.quantization.quantize_static` (QDQ, per-channel int8 weights, uint8 activations) of
  the convolutions and matrix products, its activation ranges calibrated on frames the caller gives
  (train-split frames streamed through the float32 graph, its BEV fed back as when deployed).
The fd3d metadata of the source file (input and output names, BEV shape) is kept.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import onnx
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
from onnxruntime.transformers.float16 import convert_float_to_float16

from fd3d.atomic import write_atomically
from fd3d.deploy.onnx_export import METADATA_KEY

QUANTIZED_OPS = ("Conv", "MatMul", "Gemm")


def _metadata(model: onnx.ModelProto) -> dict[str, str]:
    return {entry.key: entry.value for entry in model.metadata_props}


def _keep_metadata(model: onnx.ModelProto, metadata: dict[str, str]) -> None:
    del model.metadata_props[:]
    for key, value in metadata.items():
        model.metadata_props.add(key=key, value=value)


def to_fp16(source: str | os.PathLike, target: str | os.PathLike) -> Path:
    """Write the float16 copy of the exported graph `source` to `target`, atomically."""
    model = onnx.load(str(source))
    metadata = _metadata(model)
    converted = convert_float_to_float16(model, keep_io_types=True)
    _keep_metadata(converted, metadata)
    return write_atomically(target, lambda partial: onnx.save(converted, str(partial)))


class RecordedFrames(CalibrationDataReader):
    """Calibration data: recorded graph inputs, one {name: array} per frame."""

    def __init__(self, names: Sequence[str], frames: Iterable[Sequence[np.ndarray]]) -> None:
        self._feeds = iter([dict(zip(names, inputs, strict=True)) for inputs in frames])

    def get_next(self) -> dict | None:
        return next(self._feeds, None)


def to_int8(
    source: str | os.PathLike, target: str | os.PathLike, calibration: Sequence[Sequence[np.ndarray]]
) -> Path:
    """Write the int8 copy of `source` to `target`, atomically, calibrated on `calibration` (the graph's
    inputs of each frame, in input order)."""
    if not calibration:
        raise ValueError("int8 quantisation needs at least one calibration frame")
    model = onnx.load(str(source))
    if METADATA_KEY not in _metadata(model):
        raise ValueError(f"{source} was not written by fd3d's exporter (no {METADATA_KEY!r} metadata)")
    names = [value.name for value in model.graph.input]
    reader = RecordedFrames(names, calibration)
    with tempfile.TemporaryDirectory() as scratch:
        quantized = Path(scratch) / "int8.onnx"
        quantize_static(
            str(source),
            str(quantized),
            reader,
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            per_channel=True,
            op_types_to_quantize=list(QUANTIZED_OPS),
        )
        result = onnx.load(str(quantized))
    _keep_metadata(result, _metadata(model))
    return write_atomically(target, lambda partial: onnx.save(result, str(partial)))
