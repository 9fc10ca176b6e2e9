"""The detection-transformer decoder shared by BEVFormer and DETR3D, with iterative box refinement.

Each layer is self-attention among object queries, a detector-specific cross-attention (deformable
attention on the BEV for BEVFormer, projected-point sampling of camera features for DETR3D) and an
FFN, post-norm. After every layer a regression branch predicts the box; its centre is a correction in
logit space of the layer's 3D reference point, which becomes (detached) the next layer's reference.
Start-up choices that let a from-scratch model learn at once on a CPU: reference points spread
uniformly over the BEV area near the ground, class bias -4.6 (prior 0.01), a car-sized initial box.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from fvcore.common.config import CfgNode
from torch import Tensor, nn

from fd3d.modeling.box_coder import CODE_SIZE, denormalize_centers
from fd3d.modeling.outputs import HeadOutputs

REFERENCE_POINT_MODES = ("learned", "query_pos")
CENTER_DIMS = [0, 1, 4]  # cx, cy, cz inside the 10-value code
PRIOR_PROBABILITY = 0.01
# log of a typical car (w, l, h) in metres, and (sin, cos) of yaw 0
INITIAL_BOX = {2: math.log(1.9), 3: math.log(4.6), 5: math.log(1.7), 7: 1.0}


def inverse_sigmoid(x: Tensor, eps: float = 1e-5) -> Tensor:
    x = x.clamp(0, 1)
    return torch.log(x.clamp(min=eps) / (1 - x).clamp(min=eps))


class CrossAttention(nn.Module):
    """What a detector plugs into the decoder: queries look at its scene representation."""

    def forward(self, query: Tensor, query_pos: Tensor, reference_points: Tensor, context: dict) -> Tensor:
        """query, query_pos (B, Q, C); reference_points (B, Q, 3) in [0, 1] of the point-cloud range.

        Returns the attended update (B, Q, C), without residual.
        """
        raise NotImplementedError


def feed_forward(embed_dims: int, ffn_dims: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(embed_dims, ffn_dims),
        nn.ReLU(inplace=True),
        nn.Dropout(dropout),
        nn.Linear(ffn_dims, embed_dims),
        nn.Dropout(dropout),
    )


class DecoderLayer(nn.Module):
    def __init__(
        self, cross_attention: CrossAttention, embed_dims: int, heads: int, ffn: int, dropout: float
    ):
        super().__init__()
        self.self_attn = nn.MultiheadAttention(embed_dims, heads, dropout=dropout, batch_first=True)
        self.cross_attn = cross_attention
        self.ffn = feed_forward(embed_dims, ffn, dropout)
        self.norms = nn.ModuleList(nn.LayerNorm(embed_dims) for _ in range(3))
        self.dropout = nn.Dropout(dropout)

    def forward(self, query: Tensor, query_pos: Tensor, reference_points: Tensor, context: dict) -> Tensor:
        q = query + query_pos
        query = self.norms[0](query + self.dropout(self.self_attn(q, q, query, need_weights=False)[0]))
        query = self.norms[1](
            query + self.dropout(self.cross_attn(query, query_pos, reference_points, context))
        )
        return self.norms[2](query + self.ffn(query))


def class_branch(embed_dims: int, num_classes: int, hidden_layers: int = 1) -> nn.Sequential:
    """`hidden_layers` Linear-LayerNorm-ReLU blocks, then the logits (the official heads use 2)."""
    if hidden_layers < 0:
        raise ValueError(f"MODEL.HEAD.CLS_HIDDEN_LAYERS must be >= 0, got {hidden_layers}")
    blocks = [
        module
        for _ in range(hidden_layers)
        for module in (nn.Linear(embed_dims, embed_dims), nn.LayerNorm(embed_dims), nn.ReLU(inplace=True))
    ]
    branch = nn.Sequential(*blocks, nn.Linear(embed_dims, num_classes))
    nn.init.constant_(branch[-1].bias, -math.log((1 - PRIOR_PROBABILITY) / PRIOR_PROBABILITY))
    return branch


def box_branch(embed_dims: int) -> nn.Sequential:
    branch = nn.Sequential(
        nn.Linear(embed_dims, embed_dims),
        nn.ReLU(inplace=True),
        nn.Linear(embed_dims, embed_dims),
        nn.ReLU(inplace=True),
        nn.Linear(embed_dims, CODE_SIZE),
    )
    last = branch[-1]
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)
    with torch.no_grad():
        for index, value in INITIAL_BOX.items():
            last.bias[index] = value
    return branch


def refine_boxes(raw_code: Tensor, reference01: Tensor, pc_range: Tensor) -> tuple[Tensor, Tensor]:
    """Box branch output + reference point -> (metric box code (..., 10), refined centres in [0, 1]).

    The branch's centre outputs are corrections in logit space of the reference point, so a zero output
    keeps the box where the query already looks.
    """
    centers01 = (raw_code[..., CENTER_DIMS] + inverse_sigmoid(reference01)).sigmoid()
    metric = denormalize_centers(centers01, pc_range)
    code = torch.cat([metric[..., :2], raw_code[..., 2:4], metric[..., 2:], raw_code[..., 5:]], -1)
    return code, centers01


def initial_reference_points(num_queries: int, ground_z01: float) -> Tensor:
    """(Q, 3) points on a near-square grid over [0, 1]² at height `ground_z01`, in logit space."""
    cols = math.ceil(math.sqrt(num_queries))
    rows = math.ceil(num_queries / cols)
    ys, xs = torch.meshgrid(
        (torch.arange(rows) + 0.5) / rows, (torch.arange(cols) + 0.5) / cols, indexing="ij"
    )
    xy = torch.stack([xs.flatten(), ys.flatten()], -1)[:num_queries]
    z = torch.full((num_queries, 1), ground_z01)
    return inverse_sigmoid(torch.cat([xy, z], -1))


class DetectionTransformerHead(nn.Module):
    """Object queries -> per-layer class logits (L, B, Q, K) and metric box codes (L, B, Q, 10)."""

    def __init__(
        self,
        cfg: CfgNode,
        num_classes: int,
        make_cross_attention: Callable[[], CrossAttention],
        ground_height: float = -1.8,
    ) -> None:
        super().__init__()
        head = cfg.MODEL.HEAD
        dims = head.EMBED_DIMS
        pc_range = cfg.MODEL.POINT_CLOUD_RANGE
        self.register_buffer("pc_range", torch.tensor(pc_range, dtype=torch.float32), False)
        self.query_content = nn.Embedding(head.NUM_QUERIES, dims)
        self.query_pos = nn.Embedding(head.NUM_QUERIES, dims)
        if head.REFERENCE_POINTS not in REFERENCE_POINT_MODES:
            modes, got = REFERENCE_POINT_MODES, head.REFERENCE_POINTS
            raise ValueError(f"MODEL.HEAD.REFERENCE_POINTS must be one of {modes}, got {got!r}")
        if head.REFERENCE_POINTS == "learned":
            ground_z01 = (ground_height - pc_range[2]) / (pc_range[5] - pc_range[2])
            self.reference_logits = nn.Parameter(initial_reference_points(head.NUM_QUERIES, ground_z01))
        else:
            self.reference_points = nn.Linear(dims, 3)
        self.layers = nn.ModuleList(
            DecoderLayer(make_cross_attention(), dims, head.NUM_HEADS, head.FFN_DIMS, head.DROPOUT)
            for _ in range(head.NUM_LAYERS)
        )
        self.cls_branches = nn.ModuleList(
            class_branch(dims, num_classes, head.CLS_HIDDEN_LAYERS) for _ in range(head.NUM_LAYERS)
        )
        self.box_branches = nn.ModuleList(box_branch(dims) for _ in range(head.NUM_LAYERS))

    def initial_reference(self) -> Tensor:
        """(Q, 3) first-layer reference points in [0, 1] of the point-cloud range."""
        if hasattr(self, "reference_logits"):
            return self.reference_logits.sigmoid()
        return self.reference_points(self.query_pos.weight).sigmoid()

    def forward(self, context: dict, batch_size: int) -> HeadOutputs:
        query = self.query_content.weight.expand(batch_size, -1, -1)
        query_pos = self.query_pos.weight.expand(batch_size, -1, -1)
        reference = self.initial_reference().expand(batch_size, -1, -1)
        all_logits, all_codes = [], []
        branches = zip(self.layers, self.cls_branches, self.box_branches, strict=True)
        for layer, cls_layer, box_layer in branches:
            query = layer(query, query_pos, reference, context)
            code, centers01 = refine_boxes(box_layer(query), reference, self.pc_range)
            all_logits.append(cls_layer(query))
            all_codes.append(code)
            reference = centers01.detach()
        return HeadOutputs(cls_logits=torch.stack(all_logits), box_code=torch.stack(all_codes))
