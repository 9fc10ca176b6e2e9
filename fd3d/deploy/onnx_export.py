"""Export a detector to ONNX, run the file with onnxruntime, and stream a split through either runtime.

The exporter is `torch.onnx.export(..., dynamo=True)` (torch.export + onnxscript): the TorchScript-based
exporter is deprecated, and the dynamo one exports every operator fd3d's detectors use (`grid_sample` as
GridSample, `topk`, boolean-mask filtering of the top-k as NonZero/Gather, nn.MultiheadAttention). Its
graph optimiser is switched off: on these graphs it emitted a node reading an undefined value
("sigmoid_2_min_1"), which onnxruntime refused to load. A DCN backbone is refused by name: torchvision's
`deform_conv2d` has no ONNX exporter; `MODEL.BACKBONE.DCN_STAGES []` builds the same model without it.
"""

from __future__ import annotations

import itertools
import json
import os
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnx_ir as ir
import torch
from torch import nn

from fd3d.atomic import write_atomically
from fd3d.data.can_bus import host_can_bus
from fd3d.deploy.graph import DETECTION_OUTPUTS, InferenceGraph, has_export_slots, signature
from fd3d.modeling.backbone import ModulatedDeformConv2d

DEFAULT_OPSET = 18
# per-camera cells an exported BEVFormer gathers: the export rig's busiest camera's, times this
DEFAULT_HIT_MARGIN = 1.25
METADATA_KEY = "fd3d"  # ONNX metadata: the graph's input/output names and the carried BEV's shape

# (inputs of one frame, in graph order) -> (boxes_lidar, scores, labels[, bev]) as numpy arrays
FrameRunner = Callable[[Sequence[np.ndarray]], Sequence[np.ndarray]]


class ExportError(RuntimeError):
    """The model cannot be exported as configured; the message names the option that avoids it."""


@dataclass
class ExportResult:
    path: Path
    seconds: float
    input_names: list[str]
    output_names: list[str]
    opset: int
    export_slots: int | None = None  # BEVFormer: BEV cells gathered per camera


def check_exportable(detector: nn.Module) -> None:
    deformable = [name for name, m in detector.named_modules() if isinstance(m, ModulatedDeformConv2d)]
    if deformable:
        raise ExportError(
            f"{len(deformable)} deformable convolutions ({deformable[0]}, ...) have no ONNX exporter "
            "(torchvision::deform_conv2d); export a model built with MODEL.BACKBONE.DCN_STAGES []"
        )


def cast_like_to_cast(model: ir.Model) -> int:
    """Replace every CastLike whose target type onnx's type inference knows by Cast(to=that type);
    returns how many.

    The exporter writes CastLike (cast to the type of another value) for Python scalars meeting tensors;
    onnxruntime has no CPU kernel to constant-fold it and warns once per node whenever a session opens
    (`Could not find a CPU kernel and hence can't constant fold CastLike`). A Cast computes the same. The
    types are read from an inferred copy: the model itself keeps the exporter's own annotations.
    """
    inferred = onnx.shape_inference.infer_shapes(ir.to_proto(model)).graph
    element_types = {
        info.name: info.type.tensor_type.elem_type
        for info in (*inferred.value_info, *inferred.input, *inferred.output)
        if info.type.HasField("tensor_type") and info.type.tensor_type.elem_type
    }
    replaced = 0
    for node in list(ir.traversal.RecursiveGraphIterator(model.graph)):
        like = node.inputs[1] if node.op_type == "CastLike" and node.domain == "" else None
        dtype = like.dtype if like is not None and like.dtype is not None else None
        if like is not None and dtype is None and like.name in element_types:
            dtype = ir.DataType(element_types[like.name])
        if dtype is None:
            continue
        cast = ir.node("Cast", [node.inputs[0]], {"to": dtype}, name=node.name)
        ir.convenience.replace_nodes_and_values(node.graph, node, [node], [cast], node.outputs, cast.outputs)
        cast.outputs[0].name, cast.outputs[0].type, cast.outputs[0].shape = (
            node.outputs[0].name, node.outputs[0].type, node.outputs[0].shape)  # fmt: skip
        replaced += 1
    return replaced


def export_onnx(
    detector: nn.Module,
    example: dict,
    path: str | os.PathLike,
    opset: int = DEFAULT_OPSET,
    hit_margin: float = DEFAULT_HIT_MARGIN,
) -> ExportResult:
    """Export one batch-1 frame of `detector` (traced on the collated `example`) to `path`, atomically.

    A detector with `size_export_slots` (BEVFormer) gathers, per camera, the cells `example`'s rig hits
    times `hit_margin`; frames of a rig that needs more are refused by `stream` (`hits_dropped`)."""
    check_exportable(detector)
    slots = detector.size_export_slots(example, hit_margin) if has_export_slots(detector) else None
    graph = InferenceGraph(detector)
    names, inputs = signature(detector, example)
    start = time.perf_counter()
    with warnings.catch_warnings():
        # torch.export's notes about the deprecated TorchScript exporter and unused state are not ours
        warnings.simplefilter("ignore", category=FutureWarning)
        program = torch.onnx.export(
            graph,
            inputs,
            dynamo=True,
            optimize=False,
            opset_version=opset,
            input_names=names.input_names,
            output_names=names.output_names,
            verbose=False,
        )
    cast_like_to_cast(program.model)
    program.model.metadata_props[METADATA_KEY] = json.dumps(
        {
            "inputs": names.input_names,
            "outputs": names.output_names,
            "bev_shape": names.bev_shape,
            "export_slots": slots,
        }  # fmt: skip
    )
    target = write_atomically(path, lambda partial: program.save(str(partial)))
    seconds = time.perf_counter() - start
    return ExportResult(target, seconds, names.input_names, names.output_names, opset, slots)


def onnx_runner(path: str | os.PathLike, threads: int | None = None) -> tuple[FrameRunner, dict]:
    """An onnxruntime CPU session of an exported file as a FrameRunner, and the file's fd3d metadata."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    if METADATA_KEY not in meta:
        raise ExportError(f"{path} was not written by fd3d's exporter (no {METADATA_KEY!r} metadata)")
    info = json.loads(meta[METADATA_KEY])
    names = [i.name for i in session.get_inputs()]

    def run(inputs: Sequence[np.ndarray]) -> Sequence[np.ndarray]:
        return session.run(None, dict(zip(names, inputs, strict=True)))

    return run, info


def eager_runner(detector: nn.Module) -> FrameRunner:
    """The same graph in PyTorch eager mode, as a FrameRunner."""
    graph = InferenceGraph(detector)

    @torch.no_grad()
    def run(inputs: Sequence[np.ndarray]) -> Sequence[np.ndarray]:
        return [t.numpy() for t in graph(*(torch.from_numpy(np.asarray(a)) for a in inputs))]

    return run


def stream(
    run: FrameRunner, samples: Iterator[dict], info: dict
) -> Iterator[tuple[str, Sequence[np.ndarray]]]:
    """(sample token, outputs) frame after frame: the host loop of a deployed graph.

    `info` is the graph's metadata (`inputs` names, `bev_shape`). `samples` are single samples in time
    order, scene after scene (`NuScenesDataset` order); a frame whose `prev_exists` is False starts a
    scene: the BEV state is reset to zeros and `use_prev_bev` / `prev_exists` is False. A CAN-bus graph
    gets the CAN-bus changes since the scene's previous frame (`host_can_bus`).
    """
    names, bev_shape = info["inputs"], info["bev_shape"]
    state = np.zeros(bev_shape, dtype=np.float32) if bev_shape is not None else None
    prev_can_bus = None
    for sample in samples:
        has_previous = bool(sample["prev_exists"]) and state is not None
        can_bus = sample["can_bus"].numpy()
        values = {
            "images": sample["images"][None].numpy(),
            "lidar2img": sample["lidar2img"][None].numpy().astype(np.float32),
            "prev_bev": state if has_previous else (None if state is None else np.zeros_like(state)),
            "curr2prev_lidar": sample["curr2prev_lidar"][None].numpy().astype(np.float32),
            "prev_exists": np.array([has_previous]),
            "use_prev_bev": np.array([has_previous]),
            "can_bus": host_can_bus(can_bus, prev_can_bus if has_previous else None)[None].astype(np.float32),
        }
        outputs = run([values[name] for name in names])
        if "hits_dropped" in info["outputs"] and int(outputs[info["outputs"].index("hits_dropped")]):
            raise ExportError(
                f"frame {sample['sample_token']}: its rig hits more BEV cells per camera than the graph "
                f"gathers ({info['export_slots']}, sized on the rig it was exported with); export again "
                "with this rig's frame or a larger --hit-margin"
            )
        if state is not None:
            state, prev_can_bus = outputs[len(DETECTION_OUTPUTS)], can_bus
        yield sample["sample_token"], outputs


def compare_frame(
    a: Sequence[np.ndarray], b: Sequence[np.ndarray], tolerance: float, has_bev: bool = False
) -> dict[str, float]:
    """Differences of one frame's outputs from two runtimes.

    Detections are matched by (query, label), what identifies them whatever their rank: near-equal scores
    may swap places between runtimes. `boxes_lidar` / `codes` / `scores`: max |difference| over matched
    detections (the check uses the codes: decoding's exp and atan2 amplify float32 noise);
    `boundary_swaps`: detections in one top-k only whose score is within `tolerance` of the other's
    lowest kept score (a tie at the cut-off); `unexplained`: detections in one top-k only beyond that
    (must be 0); `bev` (with `has_bev`): max |difference| of the carried state.
    """
    index = {name: i for i, name in enumerate(DETECTION_OUTPUTS)}
    keyed = []
    for outputs in (a, b):
        keys = zip(outputs[index["queries"]].tolist(), outputs[index["labels"]].tolist(), strict=True)
        keyed.append({key: row for row, key in enumerate(keys)})
    common = sorted(set(keyed[0]) & set(keyed[1]))
    rows_a = [keyed[0][k] for k in common]
    rows_b = [keyed[1][k] for k in common]
    result = {}
    for name in ("boxes_lidar", "codes", "scores"):
        x, y = a[index[name]][rows_a], b[index[name]][rows_b]
        result[name] = float(np.abs(x.astype(np.float64) - y.astype(np.float64)).max(initial=0.0))
    swaps = unexplained = 0
    for mine, theirs, outputs, other in ((keyed[0], keyed[1], a, b), (keyed[1], keyed[0], b, a)):
        floor = float(other[index["scores"]].min(initial=np.inf))
        for key in set(mine) - set(theirs):
            at_cutoff = outputs[index["scores"]][mine[key]] <= floor + tolerance
            swaps, unexplained = swaps + int(at_cutoff), unexplained + int(not at_cutoff)
    result.update(boundary_swaps=float(swaps), unexplained=float(unexplained))
    if has_bev:
        state = len(DETECTION_OUTPUTS)
        result["bev"] = float(np.abs(a[state] - b[state]).max())
    return result


@dataclass
class RuntimeComparison:
    worst: dict[str, float]  # `compare_frame`'s figures, max (counts: sum) over every frame
    # runtime -> (sample token, (boxes_lidar, scores, labels)) per frame
    detections: dict[str, list[tuple[str, Sequence[np.ndarray]]]]
    frames: int

    def failures(self, tolerance: float) -> list[str]:
        """What differs beyond `tolerance`: box codes or scores of the same detections, or detections that
        only one runtime kept for another reason than a tie at the top-k cut-off."""
        bad = [name for name in ("codes", "scores") if self.worst[name] > tolerance]
        return bad + (["unexplained detections"] if self.worst["unexplained"] else [])


def compare_runtimes(
    detector: nn.Module,
    onnx_path: str | os.PathLike,
    samples: Iterator[dict],
    threads: int | None = None,
    tolerance: float = 1e-4,
) -> RuntimeComparison:
    """Eager PyTorch and onnxruntime frame after frame on the same samples, each feeding back its own BEV."""
    onnx_run, info = onnx_runner(onnx_path, threads)
    bev_shape = info["bev_shape"]
    left, right = itertools.tee(samples)  # lockstep: holds one sample at a time
    eager_frames = stream(eager_runner(detector), left, info)
    onnx_frames = stream(onnx_run, right, info)
    worst: dict[str, float] = {}
    outputs: dict[str, list] = {"eager": [], "onnx": []}
    for eager, onnx_frame in zip(eager_frames, onnx_frames, strict=True):
        for key, value in compare_frame(eager[1], onnx_frame[1], tolerance, bev_shape is not None).items():
            counted = key in ("boundary_swaps", "unexplained")
            worst[key] = worst.get(key, 0.0) + value if counted else max(worst.get(key, 0.0), value)
        outputs["eager"].append((eager[0], eager[1][:3]))
        outputs["onnx"].append((onnx_frame[0], onnx_frame[1][:3]))
    return RuntimeComparison(worst, outputs, len(outputs["eager"]))


def frames_per_second(run: FrameRunner, inputs: Sequence[np.ndarray], iterations: int, warmup: int) -> float:
    """Median frames/s of `run` on the same frame over `iterations` timed runs after `warmup` untimed ones."""
    for _ in range(warmup):
        run(inputs)
    seconds = []
    for _ in range(iterations):
        start = time.perf_counter()
        run(inputs)
        seconds.append(time.perf_counter() - start)
    return 1.0 / float(np.median(seconds))


def graph_inputs(detector: nn.Module, example: dict) -> list[np.ndarray]:
    """The numpy inputs of one frame of the graph for a collated `example` (state: zeros, with history)."""
    names, inputs = signature(detector, example)
    arrays = [t.numpy() for t in inputs]
    for index, name in enumerate(names.input_names):
        if name in ("prev_exists", "use_prev_bev"):
            arrays[index] = np.ones_like(arrays[index])  # time the temporal path too
    return arrays
