"""A disk cache of the frozen expert's features, one safetensors file per sample.

The expert never changes during distillation and the data is not augmented, so its features of a
sample are the same every epoch: computing them once turns a distillation step into little more than
an apprentice step. Files live under a fingerprint of everything that shapes the features (the
expert's weights, the MODEL and INPUT sections of its config, the input size, the queue), so a changed
expert never reads stale ones, and a config key that cannot change them (a solver setting, a new
default of a later release) does not throw the cache away.
Only the feature levels the distiller uses are stored. Writes are atomic (`fd3d.atomic.write_atomically`:
a file of its own per write, then a rename), so processes sharing the folder and crashes never leave a
half-written file.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from fd3d.atomic import write_atomically
from fd3d.modeling.outputs import CameraGeometry, DetectorFeatures

FEATURE_SECTIONS = ("MODEL", "INPUT")  # the expert config's sections that shape its features


def expert_fingerprint(expert: nn.Module, config: dict, image_size: tuple[int, int], queue: int) -> str:
    """16 hex digits naming the expert's features: weights, `FEATURE_SECTIONS` of `config`, input, queue."""
    config = {section: config.get(section) for section in FEATURE_SECTIONS}
    digest = hashlib.sha256()
    for name, tensor in expert.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    digest.update(json.dumps([config, list(image_size), queue], sort_keys=True, default=str).encode())
    return digest.hexdigest()[:16]


class ExpertFeatureCache:
    def __init__(
        self, root: str | os.PathLike, fingerprint: str, pv_levels: list[int], keep_bev: bool
    ) -> None:
        self.folder = Path(root) / fingerprint
        self.folder.mkdir(parents=True, exist_ok=True)
        self.pv_levels, self.keep_bev = sorted(set(pv_levels)), keep_bev

    def _file(self, token: str) -> Path:
        return self.folder / f"{token}.safetensors"

    def has(self, token: str) -> bool:
        return self._file(token).is_file()

    def store(self, token: str, features: DetectorFeatures, index: int) -> None:
        """Write sample `index` of a batch's features."""
        tensors = {f"pv{level}": features.pv[level][index] for level in self.pv_levels}
        if self.keep_bev:
            tensors["bev"] = features.bev[index]
        tensors["lidar2img"] = features.geometry.lidar2img[index]
        tensors = {key: value.detach().cpu().contiguous() for key, value in tensors.items()}
        meta = {
            "image_size": json.dumps(list(features.geometry.image_size)),
            "pv_strides": json.dumps(features.pv_strides),
            "num_levels": str(len(features.pv)),
            "bev_extent": json.dumps(features.bev_extent),
        }
        write_atomically(self._file(token), lambda partial: save_file(tensors, str(partial), metadata=meta))

    def load(self, tokens: list[str], device: torch.device) -> DetectorFeatures:
        """Features of a batch of cached samples, stacked as the expert would have returned them."""
        from safetensors import safe_open

        samples = [load_file(str(self._file(t)), device=str(device)) for t in tokens]
        with safe_open(str(self._file(tokens[0])), "pt") as handle:
            meta = handle.metadata()

        def stacked(key: str) -> Tensor:
            return torch.stack([sample[key] for sample in samples])

        pv: list[Tensor | None] = [None] * int(meta["num_levels"])
        for level in self.pv_levels:
            pv[level] = stacked(f"pv{level}")
        extent = json.loads(meta["bev_extent"])
        return DetectorFeatures(
            pv=pv,
            pv_strides=json.loads(meta["pv_strides"]),
            geometry=CameraGeometry(stacked("lidar2img"), tuple(json.loads(meta["image_size"]))),
            bev=stacked("bev") if self.keep_bev else None,
            bev_extent=tuple(extent) if extent is not None else None,
        )
