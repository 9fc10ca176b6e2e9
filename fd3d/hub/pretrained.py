"""`save_pretrained` / `from_pretrained`: any detector, expert or apprentice, to a model folder and back.

The folder's files are described in `fd3d.hub.folder`; `from_pretrained` takes a local folder or a Hub
id, resolved as `fd3d.hub.remote` describes.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from fvcore.common.config import CfgNode
from torch import nn

from fd3d.atomic import atomic_folder
from fd3d.data.schema import REAL_NUSCENES
from fd3d.hub.card import check_metrics, model_card
from fd3d.hub.folder import (
    CARD_NAME,
    CONFIG_NAME,
    WEIGHTS_NAME,
    check_model_folder,
    check_replaceable,
    read_config,
    write_config,
)
from fd3d.hub.remote import resolve_folder
from fd3d.hub.weights import build_with_weights, save_weights

logger = logging.getLogger(__name__)


def save_pretrained(
    model: nn.Module,
    cfg: CfgNode,
    folder: str | os.PathLike,
    *,
    metrics: Mapping[str, float] | None = None,
    gflops: float | None = None,
    distilled_from: str | None = None,
    method: str | None = None,
    eval_dataset: str = REAL_NUSCENES,
    notes: Sequence[str] = (),
) -> Path:
    """Write `folder` with config.json, model.safetensors and a README.md model card; return its path.

    `metrics` holds at least NDS, mAP, mATE, mASE, mAOE, mAVE, mAAE on the devkit's 0-1 scale (e.g. the
    `metrics.json` of `tools/evaluate.py`; other keys are ignored); `eval_dataset` names the data they
    were measured on in the card; `notes` are listed under "Provenance" (e.g. a converted checkpoint's
    source and sha256). The write is atomic (`fd3d.atomic.atomic_folder`): everything is built in a
    temporary sibling folder that then replaces `folder`, so a crash leaves either the old folder or the
    new one, never a mix. An existing `folder` must be empty or an fd3d model folder (it is replaced, not
    merged into). Every file gets the umask's permissions, as any file the user makes.

    An exception removes the temporary folder. Only a hard kill can leave one behind: `.NAME.tmp-*`
    (incomplete, safe to delete), or, in the instant between the two renames, `.NAME.old-*` holding the
    previous model with `folder` itself absent.
    """
    target = Path(folder).expanduser().absolute()
    table = check_metrics(metrics) if metrics is not None else None
    check_replaceable(target)
    with atomic_folder(target) as staging:
        write_config(cfg, staging / CONFIG_NAME)
        save_weights(model, staging / WEIGHTS_NAME)
        card = model_card(model, cfg, target.name, table, gflops, distilled_from, method, eval_dataset, notes)
        card.save(staging / CARD_NAME)
    logger.info("saved %s model to %s", cfg.MODEL.META_ARCHITECTURE, target)
    return target


def load_pretrained_config(
    repo_or_dir: str | os.PathLike, revision: str | None = None
) -> tuple[CfgNode, Path]:
    """The saved config (frozen, exactly as saved) and the local folder holding it and the weights."""
    folder = resolve_folder(repo_or_dir, revision)
    check_model_folder(folder)
    return read_config(folder / CONFIG_NAME), folder


def from_pretrained(repo_or_dir: str | os.PathLike, revision: str | None = None) -> nn.Module:
    """The detector saved in a local folder or a Hub repository, weights loaded strictly, in eval mode.

    `load_pretrained_config` returns the config with its original `MODEL.BACKBONE.PRETRAINED`.
    """
    cfg, folder = load_pretrained_config(repo_or_dir, revision)
    return build_with_weights(cfg, folder / WEIGHTS_NAME).eval()
