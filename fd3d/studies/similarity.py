"""Do distilled features move toward the expert's? Linear CKA of each study run's features with the
expert's, on the first val samples, cached in RESULTS/similarity/ with the weights' sha256.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from accelerate.utils import set_seed

from fd3d.atomic import write_json_atomically
from fd3d.config import load_config
from fd3d.data.dataset import NuScenesDataset, collate_samples
from fd3d.distill.similarity import feature_similarity
from fd3d.hub import from_pretrained
from fd3d.modeling.registry import build_model
from fd3d.studies.protocols import FULL, ROOT, SIMILARITY_SAMPLES, STUDY_APPRENTICE, STUDY_EXPERT


def similarities(out: Path, results: Path, runs: dict[str, list[dict]]) -> dict[str, dict[str, float]]:
    """{"<run>@seed<k>": {stage: CKA with the expert}} for every run whose weights are here and for the
    apprentice at its initialisation (seed 0, "untrained"), cached in RESULTS/similarity/ with the
    weights' sha256 (a cached value of other weights is measured again)."""
    models = {"untrained@seed0": (None, lambda: _initial_apprentice(0))}
    for name, group in runs.items():
        for run in group:
            weights = ROOT / run["weights"]
            # None: the weights lived in a lost work folder; only a CKA measured before can be reported
            load = (lambda weights=weights: from_pretrained(str(weights))) if weights.exists() else None
            models[f"{name}@seed{run['seed']}"] = (run["weights_sha256"], load)
    found, expert, dataset = {}, None, None
    for key, (digest, load) in models.items():
        cached = results / "similarity" / f"{key}.json"
        known = json.loads(cached.read_text()) if cached.is_file() else {}
        if known.get("weights_sha256") != digest or "cka" not in known:
            if load is None:
                continue
            if expert is None:  # loaded only when something is measured
                expert = from_pretrained(str(STUDY_EXPERT))
                dataset = NuScenesDataset(out / "data", FULL.version, "val", expert.image_size,
                                          expert.pc_range.tolist(),
                                          queue_length=expert.queue_length)  # fmt: skip
            batches = (collate_samples([dataset[i]]) for i in range(min(SIMILARITY_SAMPLES, len(dataset))))
            known = {"weights_sha256": digest, "cka": feature_similarity(load(), expert, batches)}
            write_json_atomically(cached, known)
        found[key] = known["cka"]
    return found


def _initial_apprentice(seed: int) -> torch.nn.Module:
    set_seed(seed)
    return build_model(load_config(STUDY_APPRENTICE, ["SEED", str(seed)]))
