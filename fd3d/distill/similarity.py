"""Do the apprentice's features move toward the expert's? Linear CKA between the two detectors' features
at each paired stage (BEV, and the PV levels paired by size as the distiller pairs them).

CKA (Kornblith et al., 2019) compares two sets of features of the same N items (here BEV cells or image
positions of the same samples) and is invariant to rotations and isotropic scaling of either, so an
apprentice with 64 channels can be compared with an expert of any width without a learnt adapter; 1 means
the two are the same up to such a map, 0 that they are unrelated.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from fd3d.distill.alignment import pair_pyramid_levels
from fd3d.modeling.evaluating import evaluating


def linear_cka(a: Tensor, b: Tensor) -> float:
    """Linear CKA of (N, C1) and (N, C2): ||A^T B||_F^2 / (||A^T A||_F ||B^T B||_F) on centred columns."""
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"CKA compares the same items: {a.shape[0]} vs {b.shape[0]} rows")
    a, b = a.double(), b.double()
    a, b = a - a.mean(0), b - b.mean(0)
    cross = (a.T @ b).pow(2).sum()
    return float(cross / ((a.T @ a).norm() * (b.T @ b).norm()))


def _rows(feature: Tensor) -> Tensor:
    """(..., C, H, W) -> (items, C): one row per cell or pixel."""
    return feature.flatten(0, -4).movedim(1, -1).reshape(-1, feature.shape[-3])


@torch.no_grad()
def feature_similarity(apprentice: nn.Module, expert: nn.Module, batches: Iterable[dict]) -> dict[str, float]:
    """{"bev": CKA, "pv<level>": CKA} over every cell / position of `batches` (the expert's BEV pooled to the
    apprentice's grid when they differ; PV levels paired by equal size, as `StagePairing` pairs them)."""
    rows: dict[str, tuple[list[Tensor], list[Tensor]]] = {}
    with evaluating(apprentice), evaluating(expert):
        for batch in batches:
            ours, theirs = apprentice.extract_features(batch), expert.extract_features(batch)
            pairs = pair_pyramid_levels(
                [tuple(level.shape[-2:]) for level in ours.pv],
                [tuple(level.shape[-2:]) for level in theirs.pv],
            )
            found = {f"pv{a}": (ours.pv[a], theirs.pv[e]) for a, e in pairs}
            if ours.bev is not None and theirs.bev is not None:
                found["bev"] = (ours.bev, F.adaptive_avg_pool2d(theirs.bev, ours.bev.shape[-2:]))
            for name, (mine, reference) in found.items():
                if mine.shape[-2:] != reference.shape[-2:]:
                    continue  # unpaired sizes (index pairing): no common items to compare
                kept = rows.setdefault(name, ([], []))
                kept[0].append(_rows(mine))
                kept[1].append(_rows(reference))
    return {name: linear_cka(torch.cat(a), torch.cat(b)) for name, (a, b) in sorted(rows.items())}
