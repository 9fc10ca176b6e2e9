"""Official (mmcv) BEVFormer / DETR3D checkpoints -> fd3d model folders.

`convert_checkpoint` reads the official config as plain Python, maps it to an fd3d config (every option
read, supported or refused by name: `fd3d.official.options`), renames and reshapes every weight, builds
the fd3d model, checks that each official entry was used and each fd3d parameter filled with the same
shape, and writes a Hub-format folder whose card names the source files and their sha256.

The mapping for a model type lives with its detector: a project registers an `OfficialModel` subclass
named as the official `model.type` (e.g. `class Detr3D`) in `OFFICIAL_MODEL_REGISTRY`, so the core
never names a detector. What is common to both official families (input normalisation and padding,
mmdet's ResNet and FPN, the NMS-free head's box convention) is here and in `fd3d.official.resnet_fpn`.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from fvcore.common.config import CfgNode
from fvcore.common.registry import Registry
from torch import Tensor

from fd3d.config import config_files, get_cfg, load_config
from fd3d.data.classes import DETECTION_CLASSES
from fd3d.hub import save_pretrained
from fd3d.integrity import sha256_of
from fd3d.modeling import build_model
from fd3d.official.mmcv_config import OfficialConfigError, load_official_config
from fd3d.plugins import load_projects

OFFICIAL_MODEL_REGISTRY = Registry("OFFICIAL_MODEL")
OFFICIAL_MODEL_REGISTRY.__doc__ = (
    "Official model.type -> OfficialModel subclass that maps it to an fd3d plug-in."
)

NUSCENES_IMAGE_SIZE = (900, 1600)
OFFICIAL_SIZE_DIVISOR = 32  # PadMultiViewImage(size_divisor=32) in every official BEVFormer / DETR3D config
SIN, COS = 6, 7  # yaw entries of the 10-value box code
_MAX_LISTED = 12


class ConversionError(RuntimeError):
    """Weights that do not fill the fd3d model exactly: unused, missing or mis-shaped entries."""


class OfficialModel(ABC):
    """How one official model type becomes an fd3d detector: its config and its weights."""

    meta_architecture: str = ""

    @abstractmethod
    def fill_config(self, official: dict, cfg: CfgNode) -> None:
        """Set the detector's keys of `cfg` from the official config dict (`official["model"]`, ...)."""

    @abstractmethod
    def convert_weights(self, state: dict[str, Tensor], cfg: CfgNode) -> tuple[dict[str, Tensor], set[str]]:
        """(fd3d state dict, official keys it used). Unused official keys are an error, not a warning."""


@dataclass
class Conversion:
    folder: Path
    cfg: CfgNode
    notes: list[str]


def yaw_code_to_nuscenes(weight: Tensor) -> Tensor:
    """Rows (or entries) of a box branch's last layer: the official (sin, cos) of mmdet3d-0.17 yaw -> fd3d's.

    mmdet3d 0.17 measures yaw so that the heading is (-sin yaw, -cos yaw); fd3d (and nuScenes) use the
    heading's own angle, -yaw - pi/2. Then sin' = -cos yaw and cos' = -sin yaw: swapping and negating two
    rows of the last linear layer makes the converted network predict fd3d's code exactly (no rounding).
    """
    converted = weight.clone()
    converted[SIN], converted[COS] = -weight[COS], -weight[SIN]
    return converted


def _pipeline_steps(official: dict) -> list[dict]:
    """The test pipeline's steps, with MultiScaleFlipAug3D's inner transforms flattened in place."""
    pipeline = official.get("test_pipeline") or official.get("data", {}).get("test", {}).get("pipeline") or []
    steps = []
    for step in pipeline:
        steps.append(step)
        steps.extend(step.get("transforms", []))
    return steps


def fill_input_config(
    official: dict, cfg: CfgNode, image_size: Iterable[int] | None, notes: list[str]
) -> None:
    """INPUT and MODEL.PIXEL_* from `img_norm_cfg`, the pipeline's scale and padding, and `image_size`."""
    norm = official.get("img_norm_cfg")
    if norm is None:
        raise OfficialConfigError("the config has no img_norm_cfg (mean, std, to_rgb)")
    # mmcv loads images as BGR; to_rgb=False leaves them so, and mean/std are in that order
    cfg.INPUT.FORMAT = "RGB" if norm.get("to_rgb", True) else "BGR"
    cfg.INPUT.RESIZE = "cv2_bilinear"  # the pipelines resize with mmcv.imresize (cv2, no antialiasing)
    cfg.MODEL.PIXEL_MEAN, cfg.MODEL.PIXEL_STD = (
        [float(v) for v in norm["mean"]],
        [float(v) for v in norm["std"]],
    )
    steps = _pipeline_steps(official)
    pads = [step for step in steps if step.get("type") == "PadMultiViewImage"]
    if pads:
        cfg.INPUT.SIZE_DIVISIBILITY = int(pads[0].get("size_divisor") or 0)
    else:
        cfg.INPUT.SIZE_DIVISIBILITY = OFFICIAL_SIZE_DIVISOR
        notes.append(
            f"no test pipeline in the config: padding to a multiple of {OFFICIAL_SIZE_DIVISOR} assumed"
        )
    scales = [step for step in steps if step.get("type") == "RandomScaleImageMultiViewImage"]
    if image_size is not None:
        size = [int(v) for v in image_size]
    elif scales:
        factor = float(scales[0]["scales"][0])
        size = [round(NUSCENES_IMAGE_SIZE[0] * factor), round(NUSCENES_IMAGE_SIZE[1] * factor)]
    else:
        size = list(NUSCENES_IMAGE_SIZE)
        notes.append(f"input size {size[0]}x{size[1]} (nuScenes; no scaling in the config)")
    cfg.INPUT.IMAGE_SIZE = size


def check_class_names(official: dict) -> None:
    names = official.get("class_names")
    if names is not None and list(names) != list(DETECTION_CLASSES):
        raise OfficialConfigError(
            f"class_names {list(names)} differ from fd3d's nuScenes classes {list(DETECTION_CLASSES)}"
        )


def _listed(title: str, items: list[str]) -> str:
    shown = "\n    ".join(items[:_MAX_LISTED])
    more = f"\n    ... and {len(items) - _MAX_LISTED} more" if len(items) > _MAX_LISTED else ""
    return f"  {title} ({len(items)}):\n    {shown}{more}"


def check_complete(
    state: dict[str, Tensor], used: set[str], mapped: dict[str, Tensor], expected: dict
) -> None:
    """Every official entry used, every fd3d entry filled, every shape equal; else one error listing all."""
    problems = []
    unused = sorted(set(state) - used)
    missing = sorted(set(expected) - set(mapped))
    unexpected = sorted(set(mapped) - set(expected))
    shapes = [
        f"{key}: converted {tuple(mapped[key].shape)} vs fd3d {tuple(expected[key].shape)}"
        for key in sorted(set(mapped) & set(expected))
        if tuple(mapped[key].shape) != tuple(expected[key].shape)
    ]
    for title, items in (
        ("official entries left unused", unused),
        ("fd3d parameters left unfilled", missing),
        ("converted entries fd3d does not have", unexpected),
        ("shape mismatches", shapes),
    ):
        if items:
            problems.append(_listed(title, items))
    if problems:
        raise ConversionError("the checkpoint does not fill the fd3d model exactly:\n" + "\n".join(problems))


def read_checkpoint(path: str | os.PathLike) -> dict[str, Tensor]:
    """The state dict of an mmcv checkpoint ({'meta', 'state_dict'}) or of a bare state dict."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise ConversionError(f"could not read checkpoint {path}: {type(error).__name__}: {error}") from error
    state = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise ConversionError(
            f"{path} holds no state dict of tensors (expected mmcv's {{'state_dict': ...}})"
        )
    return state


def official_model(official: dict) -> OfficialModel:
    load_projects()
    model_type = official.get("model", {}).get("type")
    if model_type not in OFFICIAL_MODEL_REGISTRY:
        known = sorted(name for name, _ in OFFICIAL_MODEL_REGISTRY)
        raise OfficialConfigError(
            f"model.type {model_type!r} has no fd3d converter; converters exist for {known}"
        )
    return OFFICIAL_MODEL_REGISTRY.get(model_type)()


def mapping_for(meta_architecture: str) -> OfficialModel:
    """The official-model mapping whose fd3d detector is `meta_architecture` (for a shipped fd3d config)."""
    load_projects()
    found = [cls for _, cls in OFFICIAL_MODEL_REGISTRY if cls.meta_architecture == meta_architecture]
    if not found:
        known = sorted(cls.meta_architecture for _, cls in OFFICIAL_MODEL_REGISTRY)
        raise OfficialConfigError(
            f"no official checkpoint converts to MODEL.META_ARCHITECTURE {meta_architecture!r}; "
            f"converters produce {known}"
        )
    return found[0]()


def fd3d_config_of_official(
    official_config: str | os.PathLike,
    image_size: Iterable[int] | None = None,
    skip_missing_bases: bool = False,
) -> tuple[CfgNode, list[str]]:
    """The fd3d config of an official mmcv config file, and the assumptions made (notes)."""
    skipped: list[str] | None = [] if skip_missing_bases else None
    official = load_official_config(official_config, skipped)
    mapping = official_model(official)
    notes = [f"_base_ file not found, left out: {path}" for path in skipped or []]
    check_class_names(official)
    cfg = get_cfg(mapping.meta_architecture)
    cfg.MODEL.META_ARCHITECTURE = mapping.meta_architecture
    fill_input_config(official, cfg, image_size, notes)
    mapping.fill_config(official, cfg)
    cfg.freeze()
    return cfg, notes


def convert_checkpoint(
    checkpoint: str | os.PathLike,
    out: str | os.PathLike,
    *,
    official_config: str | os.PathLike | None = None,
    config_file: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
    image_size: Iterable[int] | None = None,
    skip_missing_bases: bool = False,
) -> Conversion:
    """Convert, check and save; returns the folder, the fd3d config and the assumptions made (notes).

    The architecture comes from the official mmcv config (`official_config`) or from an fd3d config that
    describes it (`config_file`, e.g. projects/DETR3D/configs/official_r101_dcn.yaml, or a list of overlays
    merged in order); exactly one is given.
    """
    if (official_config is None) == (config_file is None):
        raise OfficialConfigError(
            "give exactly one of official_config (mmcv .py) and config_file (fd3d .yaml)"
        )
    if official_config is not None:
        cfg, notes = fd3d_config_of_official(official_config, image_size, skip_missing_bases)
        source = f"Official config `{Path(official_config).name}` (sha256 `{sha256_of(official_config)}`)"
    else:
        overrides = ["INPUT.IMAGE_SIZE", str(list(image_size))] if image_size is not None else []
        cfg, notes = load_config(config_file, overrides), []
        names = " + ".join(f"`{Path(path).name}`" for path in config_files(config_file))
        source = f"Architecture from fd3d config {names}"
    mapping = mapping_for(cfg.MODEL.META_ARCHITECTURE)
    state = read_checkpoint(checkpoint)
    mapped, used = mapping.convert_weights(state, cfg)
    model = build_model(cfg).eval()
    check_complete(state, used, mapped, model.state_dict())
    model.load_state_dict(mapped, strict=True)
    provenance = [
        f"Converted by `tools/convert_official_checkpoint.py` from the official checkpoint "
        f"`{Path(checkpoint).name}` (sha256 `{sha256_of(checkpoint)}`)",
        source,
        "Box yaw follows fd3d's (nuScenes) convention and box z is the centre; the official model's "
        "mmdet3d-0.17 yaw is converted inside the weights (`yaw_code_to_nuscenes`).",
        *notes,
    ]
    folder = save_pretrained(model, cfg, out, notes=provenance)
    return Conversion(folder=folder, cfg=cfg, notes=notes)
