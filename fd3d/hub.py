"""Hub-ready model folders: `save_pretrained` / `from_pretrained` for any detector, expert or apprentice.

A model folder holds three files, the layout of a Hugging Face model repository:

- `config.json`: `{"fd3d_config": <the full fd3d config as a dict>, "format_version": 1}`;
- `model.safetensors`: the detector's `state_dict` (the trained backbone included);
- `README.md`: a model card (architecture, input size, backbone, NDS/mAP/TP metrics, GFLOPs, the expert
  it was distilled from and how).

`from_pretrained` takes either a local folder or a Hub id. The rule, applied in this order:

1. a `pathlib.Path` (any non-`str`) is always a local folder;
2. a string naming an existing directory is that local folder (a local folder wins over a Hub id);
3. a string of the form `name` or `org/name` (letters, digits, `-`, `_`, `.`; each part starts with a
   letter or digit; no `--` or `..`) is a Hub id and is downloaded with `snapshot_download`;
4. anything else (`/abs/path`, `./x`, `~/x`, `a/b/c`, backslashes, ...) is a local path that does not
   exist: `HubError` "not found", with no network access.

Every failure is a `HubError` that names the folder or repository, the cause, and what to do instead.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import shutil
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from fvcore.common.config import CfgNode
from huggingface_hub import (
    EvalResult,
    HfApi,
    ModelCard,
    ModelCardData,
    constants,
    get_token,
    snapshot_download,
)
from huggingface_hub import errors as hf_errors
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from fd3d.config import ConfigError, config_from_dict, config_to_dict
from fd3d.modeling.registry import build_model

logger = logging.getLogger(__name__)

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
CARD_NAME = "README.md"
FORMAT_VERSION = 1
# nuScenes detection metrics in the devkit's order, 0-1 scale (errors in metres / radians / m/s).
METRIC_KEYS = ("NDS", "mAP", "mATE", "mASE", "mAOE", "mAVE", "mAAE")
# Errors of huggingface_hub calls: connection and HTTP errors (httpx), OSError (RepositoryNotFound,
# LocalEntryNotFound, OfflineModeIsEnabled, missing token...) and ValueError (HFValidationError).
_HUB_FAILURES = (OSError, ValueError, hf_errors.HTTPError)
# A failed LFS upload reaches the caller as RuntimeError("Error while uploading 'x' to the Hub.") with the
# HTTP error as its __cause__; nothing else in an upload raises RuntimeError, so a push catches it too.
_PUSH_FAILURES = (*_HUB_FAILURES, RuntimeError)
_HUB_ID = re.compile(r"^(?:[A-Za-z0-9][A-Za-z0-9._-]*/)?[A-Za-z0-9][A-Za-z0-9._-]*$")
_MAX_LISTED = 10


class HubError(RuntimeError):
    """A model folder or Hub repository that cannot be used; the message says why and what to do."""


# --------------------------------------------------------------------------------------------- saving


def save_pretrained(
    model: nn.Module,
    cfg: CfgNode,
    folder: str | os.PathLike,
    *,
    metrics: Mapping[str, float] | None = None,
    gflops: float | None = None,
    distilled_from: str | None = None,
    method: str | None = None,
    eval_dataset: str = "nuScenes",
    notes: Sequence[str] = (),
) -> Path:
    """Write `folder` with config.json, model.safetensors and a README.md model card; return its path.

    `metrics` holds at least NDS, mAP, mATE, mASE, mAOE, mAVE, mAAE on the devkit's 0-1 scale (e.g. the
    `metrics.json` of `tools/evaluate.py`; other keys are ignored); `eval_dataset` names the data they
    were measured on in the card; `notes` are listed under "Provenance" (e.g. a converted checkpoint's
    source and sha256). The write is atomic: everything is built in a temporary sibling folder
    that then replaces `folder`, so a crash leaves either the old folder or the new one, never a mix. An
    existing `folder` must be empty or an fd3d model folder (it is replaced, not merged into).

    An exception removes the temporary folder. Only a hard kill can leave one behind: `.NAME.tmp-*`
    (incomplete, safe to delete), or, in the instant between the two renames, `.NAME.old-*` holding the
    previous model with `folder` itself absent.
    """
    target = Path(folder).expanduser().absolute()
    table = _check_metrics(metrics) if metrics is not None else None
    _check_replaceable(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = _sibling(target, "tmp")
    staging.mkdir()  # plain mkdir: the folder gets the umask's permissions, as any folder the user makes
    try:
        (staging / CONFIG_NAME).write_text(
            json.dumps({"fd3d_config": config_to_dict(cfg), "format_version": FORMAT_VERSION}, indent=2)
            + "\n"
        )
        _write_weights(model, staging / WEIGHTS_NAME)
        card = _model_card(
            model, cfg, target.name, table, gflops, distilled_from, method, eval_dataset, notes
        )
        card.save(staging / CARD_NAME)
        _fsync_files(staging)
        _replace_folder(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    logger.info("saved %s model to %s", cfg.MODEL.META_ARCHITECTURE, target)
    return target


def _check_metrics(metrics: Mapping[str, float]) -> dict[str, float]:
    missing = [key for key in METRIC_KEYS if key not in metrics]
    if missing:
        raise ValueError(
            f"metrics lack {missing}; expected the keys {list(METRIC_KEYS)}, got {sorted(metrics)}"
        )
    table = {key: float(metrics[key]) for key in METRIC_KEYS}
    bad = {key: value for key, value in table.items() if not math.isfinite(value)}
    if bad:
        raise ValueError(f"metrics must be finite numbers, got {bad}")
    return table


def _check_replaceable(target: Path) -> None:
    """Refuse to replace anything but an empty folder or a model folder: a typo must not delete a tree."""
    if not target.exists():
        return
    if not target.is_dir():
        raise HubError(f"cannot save a model to {target}: it exists and is not a folder")
    entries = list(target.iterdir())
    if entries and not (target / CONFIG_NAME).is_file():
        names = sorted(entry.name for entry in entries)[:_MAX_LISTED]
        raise HubError(
            f"cannot save a model to {target}: it is a non-empty folder without {CONFIG_NAME} "
            f"(holds {names}); save_pretrained replaces the whole folder, so it only overwrites empty "
            "folders and model folders"
        )


def _write_weights(model: nn.Module, file: Path) -> None:
    """The state dict as contiguous CPU tensors; a tensor sharing storage with an earlier one is cloned,
    so every state-dict key is stored under its own name and loading compares keys one to one."""
    tensors: dict[str, torch.Tensor] = {}
    seen_storages: set[int] = set()
    for key, value in model.state_dict().items():
        tensor = value.detach().cpu()
        storage = tensor.untyped_storage().data_ptr()
        if storage in seen_storages and tensor.numel():
            tensor = tensor.clone()
        seen_storages.add(storage)
        tensors[key] = tensor.contiguous()
    save_file(tensors, str(file), metadata={"format": "pt"})


def _fsync_files(folder: Path) -> None:
    for path in folder.iterdir():
        with open(path, "rb") as handle:
            os.fsync(handle.fileno())


def _sibling(target: Path, kind: str) -> Path:
    """A unique hidden name beside `target`: `.NAME.tmp-<hex>` (being written) or `.NAME.old-<hex>`."""
    return target.with_name(f".{target.name}.{kind}-{uuid.uuid4().hex[:12]}")


def _replace_folder(staging: Path, target: Path) -> None:
    """Rename `staging` to `target`; an existing `target` is renamed aside first and deleted last."""
    if not target.exists():
        os.replace(staging, target)
        return
    old = _sibling(target, "old")
    os.replace(target, old)
    try:
        os.replace(staging, target)
    except BaseException:
        os.replace(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _backbone_text(cfg: CfgNode) -> str:
    backbone = cfg.MODEL.BACKBONE
    depths = "-".join(str(depth) for depth in backbone.DEPTHS)
    widths = "/".join(str(width) for width in backbone.HIDDEN_SIZES)
    dcn = f", DCNv2 in stages {list(backbone.DCN_STAGES)}" if backbone.DCN_STAGES else ""
    init = f"initialised from `{backbone.PRETRAINED}`" if backbone.PRETRAINED else "trained from scratch"
    return f"ResNet ({backbone.LAYER_TYPE} blocks, depths {depths}, widths {widths}{dcn}), {init}"


def _model_card(
    model: nn.Module,
    cfg: CfgNode,
    name: str,
    metrics: dict[str, float] | None,
    gflops: float | None,
    distilled_from: str | None,
    method: str | None,
    eval_dataset: str,
    notes: Sequence[str] = (),
) -> ModelCard:
    architecture = cfg.MODEL.META_ARCHITECTURE
    eval_results = None
    if metrics is not None:
        eval_results = [
            EvalResult(
                task_type="3d-object-detection",
                task_name="3D object detection",
                dataset_type="nuscenes",
                dataset_name=eval_dataset,
                metric_type=key.lower(),
                metric_name=key,
                metric_value=round(value, 4),
            )
            for key, value in metrics.items()
        ]
    card_data = ModelCardData(
        library_name="fd3d",
        tags=["3d-object-detection", "nuscenes", "knowledge-distillation", architecture],
        model_name=name,
        eval_results=eval_results,
    )
    height, width = cfg.INPUT.IMAGE_SIZE
    params_m = sum(parameter.numel() for parameter in model.parameters()) / 1e6
    lines = [
        f"# {name}",
        "",
        f"A camera-only 3D object detector ({architecture}) saved by fd3d (knowledge distillation for "
        "camera-only 3D detectors).",
        "",
        f"- **Architecture:** {architecture}, {cfg.MODEL.HEAD.NUM_QUERIES} queries, "
        f"{cfg.MODEL.HEAD.NUM_LAYERS} decoder layers, {cfg.MODEL.HEAD.EMBED_DIMS} channels",
        f"- **Input size:** {height}×{width} per camera (the model resizes its input images)",
        f"- **Backbone:** {_backbone_text(cfg)}",
        f"- **Parameters:** {params_m:.2f} M",
    ]
    if gflops is not None:
        lines.append(
            f"- **GFLOPs:** {gflops:.2f} (one sample at the input size, one multiply-add = one flop)"
        )
    if distilled_from:
        lines.append(f"- **Distilled from:** `{distilled_from}`")
    if method:
        lines.append(f"- **Distillation method:** {method}")
    if notes:
        lines += ["", "## Provenance", "", *(f"- {note}" for note in notes)]
    lines += ["", "## Metrics", ""]
    if metrics is None:
        lines.append("Not evaluated.")
    else:
        lines += [
            f"Measured on {eval_dataset} with the official nuScenes detection metrics (devkit 0-1 scale; "
            "NDS and mAP: higher is better, the TP errors: lower is better):",
            "",
            "| " + " | ".join(metrics) + " |",
            "|" + " --- |" * len(metrics),
            "| " + " | ".join(f"{value:.4f}" for value in metrics.values()) + " |",
        ]
    lines += [
        "",
        "## How to load",
        "",
        "```python",
        "from fd3d.hub import from_pretrained",
        "",
        'model = from_pretrained("ORG/NAME")  # from the Hub (replace with this repository\'s id)',
        'model = from_pretrained("path/to/folder")  # or a local folder holding these files',
        "predictions = model(batch)  # eval mode: per sample boxes_lidar (N, 9), scores, labels",
        "```",
        "",
        f"`{CONFIG_NAME}` holds the full fd3d config (`fd3d_config`), `{WEIGHTS_NAME}` the weights.",
        "",
    ]
    return ModelCard(f"---\n{card_data.to_yaml()}\n---\n\n" + "\n".join(lines))


# -------------------------------------------------------------------------------------------- loading


def _is_hub_id(text: str) -> bool:
    return bool(_HUB_ID.match(text)) and "--" not in text and ".." not in text


def resolve_folder(repo_or_dir: str | os.PathLike, revision: str | None = None) -> Path:
    """The local folder of a model: `repo_or_dir` itself, or the Hub snapshot it names (module docstring)."""
    text = os.fspath(repo_or_dir)
    if not text:
        raise HubError("empty model location: pass a local model folder or a Hub id (org/name)")
    local = Path(text).expanduser()
    if local.is_dir():
        if revision is not None:
            raise HubError(
                f"revision {revision!r} given for the local folder {local}: revisions are for Hub ids"
            )
        return local
    if local.exists():
        raise HubError(f"{local} is a file, not a model folder (expected a folder with {CONFIG_NAME})")
    if not isinstance(repo_or_dir, str) or not _is_hub_id(text):
        raise HubError(
            f"model folder not found: {local} (a string of the form `name` or `org/name` that is not an "
            "existing folder is read as a Hub id; this one is a path)"
        )
    try:
        snapshot = snapshot_download(
            text,
            revision=revision,
            allow_patterns=[CONFIG_NAME, WEIGHTS_NAME, CARD_NAME],
            library_name="fd3d",
        )
    except _HUB_FAILURES as error:
        raise HubError(_download_failure(text, revision, error)) from error
    return Path(snapshot)


def _download_failure(repo_id: str, revision: str | None, error: Exception) -> str:
    """What went wrong and what to do, by cause: a missing revision, a repository that is missing or
    refused (private or gated), a partial cached copy, or the Hub out of reach (offline, network, 5xx)."""
    where = f"{repo_id!r} at revision {revision!r}" if revision else repr(repo_id)
    if isinstance(error, hf_errors.RevisionNotFoundError):
        return (
            f"the Hub repo {repo_id!r} has no revision {revision or constants.DEFAULT_REVISION!r}: give a "
            f"branch, a tag or a full commit sha of that repo ({_cause(error)})"
        )
    if isinstance(error, hf_errors.RepositoryNotFoundError) or _http_status(error) in (401, 403):
        access = (
            "the token in use may not read it"
            if get_token()
            else "no token was sent (set HF_TOKEN or run `hf auth login`)"
        )
        return (
            f"could not get the model {where} from the Hugging Face Hub: the repo does not exist, or it is "
            f"private or gated and {access} ({_cause(error)})"
        )
    if isinstance(error, hf_errors.IncompleteSnapshotError):
        return (
            f"could not get the model {where}: its cached copy is incomplete (an interrupted download) and "
            "the Hub could not be reached to finish it; nothing was loaded. Retry once the Hub is reachable "
            f"({_cause(error)})"
        )
    offline = (
        " (HF_HUB_OFFLINE is set, so only the local cache was searched)" if constants.HF_HUB_OFFLINE else ""
    )
    broken = (
        " Nothing was loaded: a broken download leaves no partial file, so a retry starts it cleanly."
        if isinstance(error, hf_errors.HTTPError)  # connection dropped or refused, timeout, 5xx
        else ""
    )
    rev = f" --revision {revision}" if revision else ""
    return (
        f"could not get the model {where} from the Hugging Face Hub{offline}: {_cause(error)}.{broken} No "
        f"local folder {repo_id!r} exists either. To use a local folder instead, download it where the Hub "
        f"is reachable with `hf download {repo_id}{rev} --local-dir DIR` and pass DIR"
    )


def _http_status(error: BaseException) -> int | None:
    response = getattr(error, "response", None)
    return getattr(response, "status_code", None)


def _cause(error: BaseException) -> str:
    message = " ".join(str(error).split()).rstrip(".")
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


def _check_model_folder(folder: Path) -> None:
    if not folder.is_dir():
        raise HubError(f"model folder not found: {folder}")
    for name in (CONFIG_NAME, WEIGHTS_NAME):
        if not (folder / name).is_file():
            raise HubError(
                f"{folder} is not an fd3d model folder: missing {name} "
                f"(fd3d.hub.save_pretrained writes {CONFIG_NAME} and {WEIGHTS_NAME})"
            )


def _read_config(file: Path) -> CfgNode:
    try:
        payload = json.loads(file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise HubError(f"cannot read {file}: {_cause(error)}") from error
    if not isinstance(payload, dict) or not isinstance(payload.get("fd3d_config"), dict):
        raise HubError(f"{file} is not an fd3d config: expected an object with an 'fd3d_config' entry")
    version = payload.get("format_version")
    if version != FORMAT_VERSION:
        raise HubError(
            f"{file} has format_version {version!r}; this fd3d reads format_version {FORMAT_VERSION} "
            "(a newer fd3d wrote it? upgrade fd3d)"
        )
    try:
        return config_from_dict(payload["fd3d_config"])
    except ConfigError as error:
        raise HubError(f"{file} does not fit this fd3d's config keys: {error}") from error


def load_pretrained_config(
    repo_or_dir: str | os.PathLike, revision: str | None = None
) -> tuple[CfgNode, Path]:
    """The saved config (frozen, exactly as saved) and the local folder holding it and the weights."""
    folder = resolve_folder(repo_or_dir, revision)
    _check_model_folder(folder)
    return _read_config(folder / CONFIG_NAME), folder


def from_pretrained(repo_or_dir: str | os.PathLike, revision: str | None = None) -> nn.Module:
    """The detector saved in a local folder or a Hub repository, weights loaded strictly, in eval mode.

    `load_pretrained_config` returns the config with its original `MODEL.BACKBONE.PRETRAINED`.
    """
    cfg, folder = load_pretrained_config(repo_or_dir, revision)
    return build_with_weights(cfg, folder / WEIGHTS_NAME).eval()


def build_with_weights(cfg: CfgNode, weights_file: str | os.PathLike) -> nn.Module:
    """`build_model(cfg)` with `weights_file` loaded strictly, built with `MODEL.BACKBONE.PRETRAINED` ""
    (no ImageNet download: the weights file holds the trained backbone)."""
    build_cfg = cfg.clone()
    build_cfg.defrost()
    build_cfg.MODEL.BACKBONE.PRETRAINED = ""
    build_cfg.freeze()
    model = build_model(build_cfg)
    load_weights_into(model, weights_file)
    return model


def load_weights_into(model: nn.Module, weights_file: str | os.PathLike) -> None:
    """Load a safetensors file into `model` strictly: every key present, none extra, every shape equal."""
    file = Path(weights_file)
    if not file.is_file():
        raise HubError(f"weights file not found: {file}")
    try:
        saved = load_file(str(file))
    except (OSError, SafetensorError) as error:
        raise HubError(f"cannot read the weights {file}: {_cause(error)}") from error
    expected = model.state_dict()
    problems = _state_dict_mismatch(saved, expected)
    if problems:
        raise HubError(
            f"weights in {file} do not fit the model built from its config:\n" + "\n".join(problems)
        )
    model.load_state_dict(saved, strict=True)


def _state_dict_mismatch(
    saved: Mapping[str, torch.Tensor], expected: Mapping[str, torch.Tensor]
) -> list[str]:
    missing = [key for key in expected if key not in saved]
    unexpected = [key for key in saved if key not in expected]
    shapes = [
        f"{key}: saved {tuple(saved[key].shape)} vs model {tuple(expected[key].shape)}"
        for key in expected
        if key in saved and saved[key].shape != expected[key].shape
    ]
    problems = []
    for title, items in (
        ("missing keys", missing),
        ("unexpected keys", unexpected),
        ("shape mismatches", shapes),
    ):
        if items:
            listed = "\n    ".join(items[:_MAX_LISTED])
            more = f"\n    ... and {len(items) - _MAX_LISTED} more" if len(items) > _MAX_LISTED else ""
            problems.append(f"  {title} ({len(items)}):\n    {listed}{more}")
    return problems


# ------------------------------------------------------------------------------------------- pushing


def push_to_hub(
    folder: str | os.PathLike,
    repo_id: str,
    *,
    private: bool = False,
    token: str | None = None,
    revision: str | None = None,
    commit_message: str = "Upload fd3d model",
) -> str:
    """Upload a model folder (as written by `save_pretrained`, every file in it) to `repo_id`; the commit URL.

    The repository is created if needed (`private` applies only then), and so is the branch `revision`.
    """
    path = Path(folder).expanduser()
    _check_model_folder(path)
    _read_config(path / CONFIG_NAME)
    if not _is_hub_id(repo_id):
        raise HubError(
            f"invalid Hub repo id {repo_id!r}: expected `name` or `org/name`; the folder {path} is intact"
        )
    api = HfApi(token=token)
    try:
        api.create_repo(repo_id, private=private, exist_ok=True)
        if revision is not None:
            api.create_branch(repo_id, branch=revision, exist_ok=True)
        commit = api.upload_folder(
            repo_id=repo_id, folder_path=path, commit_message=commit_message, revision=revision
        )
    except _PUSH_FAILURES as error:
        where = f"{repo_id!r} (branch {revision!r})" if revision else repr(repo_id)
        cause = _cause(error)
        if isinstance(error, RuntimeError) and error.__cause__ is not None:
            cause += f" ({_cause(error.__cause__)})"
        if _http_status(error) in (401, 403) or _http_status(error.__cause__) in (401, 403):
            refused = "the Hub refused the token in use" if token or get_token() else "no token was sent"
            cause += f"; {refused}: pass a write token (HF_TOKEN, `hf auth login` or --token)"
        raise HubError(
            f"could not push to the Hub repo {where}: {cause}; the folder {path} is intact"
        ) from error
    return commit.commit_url
