"""Distilling from cached expert features gives exactly the losses of computing them every step."""

from __future__ import annotations

import torch
from safetensors.torch import load_file

from fd3d.config import distill_config, load_config
from fd3d.distill import Distiller
from fd3d.distill.feature_cache import expert_fingerprint
from tests.distill.test_distiller import ALL_MATCHED_FOCAL, batch_with_cars

CONFIG = distill_config("bevformer_cpu", "fd3d")


def losses_of(distiller: Distiller, batch: dict) -> dict[str, float]:
    torch.manual_seed(5)  # the same random SMGD masks in every call
    return {name: value.item() for name, value in distiller(batch).items()}


def test_cached_features_reproduce_the_losses_exactly(tmp_path):
    batch = {**batch_with_cars(queue_length=1), "sample_token": ["sample-a"]}
    torch.manual_seed(0)
    plain = Distiller(load_config(CONFIG, ALL_MATCHED_FOCAL)).train()
    torch.manual_seed(0)
    cached = Distiller(
        load_config(CONFIG, [*ALL_MATCHED_FOCAL, "DISTILL.EXPERT.FEATURE_CACHE", str(tmp_path)])
    ).train()
    # two calls each: BatchNorm statistics move between calls, identically in both distillers
    reference = [losses_of(plain, batch), losses_of(plain, batch)]
    first = losses_of(cached, batch)  # computes and stores
    (stored,) = list(tmp_path.rglob("*.safetensors"))
    assert stored.name == "sample-a.safetensors"
    # only what the distiller reads: the expert's paired PV levels (1, 2) and the BEV
    assert set(load_file(str(stored))) == {"pv1", "pv2", "bev", "lidar2img"}

    calls = {"n": 0}
    original = cached.expert.extract_features

    def counting(batch):
        calls["n"] += 1
        return original(batch)

    cached.expert.extract_features = counting
    second = losses_of(cached, batch)  # read back: the expert does not run
    assert calls["n"] == 0
    assert reference == [first, second]


def test_another_expert_never_reads_stale_features(tmp_path):
    batch = {**batch_with_cars(queue_length=1), "sample_token": ["sample-a"]}
    overrides = [*ALL_MATCHED_FOCAL, "DISTILL.EXPERT.FEATURE_CACHE", str(tmp_path)]
    for seed in (0, 1):  # two differently initialised experts
        torch.manual_seed(seed)
        Distiller(load_config(CONFIG, overrides)).train()(batch)
    assert len([p for p in tmp_path.iterdir() if p.is_dir()]) == 2


def test_the_fingerprint_follows_the_features_not_the_solver():
    expert = torch.nn.Linear(2, 2)
    config = {"MODEL": {"BEV_H": 50}, "INPUT": {"IMAGE_SIZE": [224, 400]}, "SOLVER": {"BASE_LR": 2e-4}}
    reference = expert_fingerprint(expert, config, (224, 400), 1)
    other_solver = {**config, "SOLVER": {"BASE_LR": 1.0}, "NEW_DEFAULT": {"X": 1}}
    assert expert_fingerprint(expert, other_solver, (224, 400), 1) == reference
    for changed in ({**config, "MODEL": {"BEV_H": 25}}, {**config, "INPUT": {"IMAGE_SIZE": [112, 200]}}):
        assert expert_fingerprint(expert, changed, (224, 400), 1) != reference
    assert expert_fingerprint(expert, config, (224, 400), 0) != reference
    with torch.no_grad():
        expert.weight.add_(1.0)
    assert expert_fingerprint(expert, config, (224, 400), 1) != reference
