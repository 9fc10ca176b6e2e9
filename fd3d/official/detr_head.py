"""The part of the official BEVFormer and DETR3D heads they share (mmdet's DETRHead lineage), in fd3d terms.

Both heads hold one `query_embedding` (Q, 2C: positional query, then content), `cls_branches` of
`num_reg_fcs` Linear-LayerNorm-ReLU blocks, `reg_branches` with box refinement, a `code_weights` loss
buffer, and decode with the NMS-free coder. This module reads those options into MODEL.HEAD and maps
those weights onto fd3d's `DetectionTransformerHead`; each detector's converter adds its transformer.
"""

from __future__ import annotations

import re

from fvcore.common.config import CfgNode
from torch import Tensor

from fd3d.official.convert import yaw_code_to_nuscenes
from fd3d.official.mmcv_config import OfficialConfigError
from fd3d.official.options import OptionReader

HEAD = "pts_bbox_head"
# options of the heads that do not change the test-mode forward (losses, assignment, initialisation)
TRAINING_ONLY = (
    "loss_cls", "loss_bbox", "loss_iou", "sync_cls_avg_factor", "train_cfg", "test_cfg", "bg_cls_weight",
    "init_cfg", "num_cls_fcs", "code_weights",
)  # fmt: skip
BOX_BRANCH_HIDDEN = 2  # fd3d's box branch: Linear-ReLU twice, then the code


def read_head(head: OptionReader, cfg: CfgNode) -> None:
    """The shared head options: classes, refinement, queries, branch depth, reference points, loss weights."""
    fd3d_head = cfg.MODEL.HEAD
    head.require("num_classes", 10)
    head.require("with_box_refine", True)
    head.require("as_two_stage", False, False)
    head.require("code_size", 10, 10)
    head.require("in_channels", cfg.MODEL.FPN.OUT_CHANNELS)
    fd3d_head.NUM_QUERIES = int(head.get("num_query", 100))
    fd3d_head.CLS_HIDDEN_LAYERS = int(head.get("num_reg_fcs", 2))
    if fd3d_head.CLS_HIDDEN_LAYERS != BOX_BRANCH_HIDDEN:
        raise OfficialConfigError(
            f"{head.where}.num_reg_fcs must be {BOX_BRANCH_HIDDEN}: fd3d's box branch has that many hidden "
            "layers"
        )
    fd3d_head.REFERENCE_POINTS = "query_pos"
    loss_cls = head.get("loss_cls", {})
    fd3d_head.CLS_WEIGHT = float(loss_cls.get("loss_weight", fd3d_head.CLS_WEIGHT))
    fd3d_head.FOCAL_ALPHA = float(loss_cls.get("alpha", fd3d_head.FOCAL_ALPHA))
    fd3d_head.FOCAL_GAMMA = float(loss_cls.get("gamma", fd3d_head.FOCAL_GAMMA))
    fd3d_head.BOX_WEIGHT = float(head.get("loss_bbox", {}).get("loss_weight", fd3d_head.BOX_WEIGHT))
    head.ignore(*TRAINING_ONLY)


def read_nms_free_coder(coder: OptionReader, cfg: CfgNode) -> list[float]:
    """NMSFreeCoder -> point-cloud range, post-centre range and top-k; returns the point-cloud range."""
    coder.require("type", "NMSFreeCoder")
    coder.require("score_threshold", None, None)
    coder.require("num_classes", 10, 10)
    pc_range = [float(v) for v in coder.get("pc_range")]
    cfg.MODEL.POINT_CLOUD_RANGE = pc_range
    cfg.MODEL.HEAD.POST_CENTER_RANGE = [float(v) for v in coder.get("post_center_range")]
    cfg.MODEL.HEAD.MAX_DETECTIONS = int(coder.get("max_num", 100))
    coder.ignore("voxel_size")
    coder.done()
    return pc_range


def map_head_entry(key: str, value: Tensor, dims: int, mapped: dict[str, Tensor]) -> bool:
    """Put a shared head entry (query embedding, class and box branches, code weights) into `mapped`
    under fd3d's names; False when `key` is not one of them."""
    if key == f"{HEAD}.query_embedding.weight":  # (Q, 2C): positional query, then content
        mapped["head.query_pos.weight"], mapped["head.query_content.weight"] = (
            value[:, :dims],
            value[:, dims:],
        )
    elif key == f"{HEAD}.code_weights":
        pass  # a loss weighting (MODEL.HEAD.CODE_WEIGHTS), not a parameter
    elif match := re.fullmatch(rf"{HEAD}\.cls_branches\.(\d+)\.(.+)", key):
        mapped[f"head.cls_branches.{match[1]}.{match[2]}"] = value
    elif match := re.fullmatch(rf"{HEAD}\.reg_branches\.(\d+)\.(\d+)\.(weight|bias)", key):
        last = int(match[2]) == 2 * BOX_BRANCH_HIDDEN  # its (sin, cos) rows become fd3d's yaw
        mapped[f"head.box_branches.{match[1]}.{match[2]}.{match[3]}"] = (
            yaw_code_to_nuscenes(value) if last else value
        )
    else:
        return False
    return True
