"""The studies' protocols as data: which methods run, from which configs, on which data and schedule.

Three protocols, each a table a reader can check against the paper:
- the paper protocol (`tools/reproduce.py`): every method trains the CPU-scale apprentice from scratch;
- the warm protocol (`tools/reproduce.py --protocol warm`): every method starts from one apprentice
  trained alone, with the paper's mechanism ablations;
- the distillation study (`tools/distillation_study.py`): the paper protocol on a pair built so that the
  apprentice detects, with stage-calibrated weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fd3d.config import distill_config

ROOT = Path(__file__).resolve().parents[2]  # the repository: the projects' configs and the model zoo
DETECTOR_CONFIGS = ROOT / "projects" / "BEVFormer" / "configs"


@dataclass(frozen=True)
class Method:
    """One row of a study: the config overlays its runs merge in order, the overrides it adds to them,
    whether its distillation head is pre-trained on the expert before the apprentice trains, and the
    method whose calibration it uses."""

    config: list[Path]
    overrides: tuple[str, ...] = ()
    pretrains_head: bool = False
    calibrated_as: str = ""  # a term ablation takes its whole method's stage scales ("" = its own)


def head_overrides(method: Method, steps: int) -> list[str]:
    """The overrides that pre-train `method`'s distillation head for `steps` steps (none if it has none)."""
    return ["DISTILL.HEAD.PRETRAIN_ITERS", str(steps)] if method.pretrains_head else []


@dataclass(frozen=True)
class Plan:
    """A study's data (a synthetic nuScenes-format set) and schedules; `asdict` is its recorded plan."""

    version: str
    scenes: int
    val_scenes: int | None
    samples: int  # per scene
    expert_steps: int
    steps: int  # of every apprentice run


# The paper protocol.
PAIR = "bevformer_cpu"  # configs/distill/pairs/<PAIR>.yaml: the CPU-scale BEVFormer expert and apprentice
EXPERT = [DETECTOR_CONFIGS / "cpu_expert.yaml"]
APPRENTICE = [DETECTOR_CONFIGS / "cpu_apprentice.yaml"]
# Run order: the methods the paper's claim rests on first, so a study cut short still has every seed of them.
PAPER_METHODS = {
    "apprentice": Method(APPRENTICE),
    "fd3d": Method(distill_config(PAIR, "fd3d")),
    "cwd": Method(distill_config(PAIR, "cwd")),
    "fitnet": Method(distill_config(PAIR, "fitnet")),
    "mgd": Method(distill_config(PAIR, "mgd")),
    "smgd_only": Method(distill_config(PAIR, "smgd_only")),
    "qfd_only": Method(distill_config(PAIR, "qfd_only")),
    # not a method of the paper: FD3D with its distillation head pre-trained on the expert first
    "fd3d_head_pretrained": Method(distill_config(PAIR, "fd3d_head_pretrained")),
}
QUICK_METHODS = ("apprentice", "cwd", "fd3d")
ORDER = (  # table rows: the paper's order, then the variant
    "expert",
    "apprentice",
    "fitnet",
    "cwd",
    "mgd",
    "fd3d",
    "smgd_only",
    "qfd_only",
    "fd3d_head_pretrained",
)
FULL = Plan("v1.0-trainval", scenes=60, val_scenes=10, samples=20, expert_steps=6000, steps=2000)
QUICK = Plan("v1.0-mini", scenes=10, val_scenes=None, samples=10, expert_steps=600, steps=400)

# The warm protocol. The distillation head depends only on the expert, so methods that need it pre-train it
# first: on a short warm schedule a jointly trained head would find no focal query for most of the run.
STATIC_HEAD = ("DISTILL.HEAD.NUM_LAYERS", "1", "DISTILL.HEAD.BOX_REFERENCE", "False")
WARM_METHODS = {
    "apprentice": Method(APPRENTICE),  # the same steps without an expert
    "fd3d": Method(distill_config(PAIR, "fd3d"), pretrains_head=True),
    "fitnet": Method(distill_config(PAIR, "fitnet")),
    "cwd": Method(distill_config(PAIR, "cwd")),
    "mgd": Method(distill_config(PAIR, "mgd")),  # Table 4a: global random mask
    "smgd_focal": Method(distill_config(PAIR, "smgd_only"), pretrains_head=True),  # Table 4a: focal mask
    "smgd_gt": Method(distill_config(PAIR, "mask_on_gt")),  # Table 4a: mask on GT
    "cwd_pv": Method(distill_config(PAIR, "cwd_pv")),  # Table 4c
    "cwd_bev": Method(distill_config(PAIR, "cwd_bev")),  # Table 4c
    "qfd_only": Method(distill_config(PAIR, "qfd_only"), pretrains_head=True),
    "qfd_only_static": Method(distill_config(PAIR, "qfd_only"), STATIC_HEAD, pretrains_head=True),
    # QFD's two open choices (Sec. 3.3): the apprentice's own map through a 1x1 adapter, per-channel min-max
    "qfd_only_linear": Method(
        distill_config(PAIR, "qfd_only"), ("DISTILL.QFD.ADAPTER", "linear"), pretrains_head=True
    ),
    "qfd_only_channel": Method(
        distill_config(PAIR, "qfd_only"), ("DISTILL.QFD.NORMALIZE", "channel"), pretrains_head=True
    ),
}
WARM_HEAD_TO_HEAD = ("apprentice", "fd3d", "fitnet", "cwd", "mgd")
WARM_WEIGHTINGS = ("paper", "matched")
# besides every method vs the apprentice: FD3D vs each baseline and the ablations' own contrasts
WARM_PAIRED_COMPARISONS = [
    ("fd3d", "fitnet"),
    ("fd3d", "cwd"),
    ("fd3d", "mgd"),
    ("cwd_bev", "cwd_pv"),
    ("smgd_focal", "mgd"),
    ("smgd_focal", "smgd_gt"),
    ("qfd_only", "qfd_only_static"),
    ("qfd_only_linear", "qfd_only"),
    ("qfd_only_channel", "qfd_only"),
]
# matched weighting: every method's gradient norm at the apprentice's features = this x the detection loss's
MATCHED_FRACTION = 0.5


@dataclass(frozen=True)
class WarmSchedule:
    """The warm protocol's schedule: steps from the warm start, its learning rate and warm-up, head-only
    pre-training steps and the steps measured to match the weights."""

    steps: int = 1000
    base_lr: float = 1e-4
    warmup: int = 50
    head_pretrain: int = 2000
    calibration_steps: int = 20


WARM = WarmSchedule()

# The distillation study.
STUDY_PAIR = "bevformer_cpu_bev50"
STUDY_APPRENTICE = [DETECTOR_CONFIGS / "cpu_apprentice_bev50.yaml"]
STUDY_EXPERT = ROOT / "projects" / "BEVFormer" / "zoo" / "cpu_expert"
STUDY_RESULTS = ROOT / "benchmarks" / "results" / "distillation_study"
STUDY_DATA = "synthetic nuScenes-format data (fd3d generator, seed 1000), not nuScenes"
# run order: the claim (FD3D vs the apprentice) first, then the baselines, strongest measured first.
# FD3D's focal queries come from its distillation head, which depends only on the expert: trained first on
# the frozen expert for STUDY_HEAD_PRETRAIN steps, so SMGD and QFD have focal queries from the apprentice's
# step 1.
STUDY_METHODS = {
    "apprentice": Method(STUDY_APPRENTICE),
    "fd3d": Method(distill_config(STUDY_PAIR, "fd3d"), pretrains_head=True),
    "fitnet": Method(distill_config(STUDY_PAIR, "fitnet")),
    "mgd": Method(distill_config(STUDY_PAIR, "mgd")),
    "cwd": Method(distill_config(STUDY_PAIR, "cwd")),
    "heatmap": Method(distill_config(STUDY_PAIR, "heatmap")),
    # which of FD3D's terms carries its gain: each alone, at FD3D's calibrated scale for its stage
    "fd3d_smgd": Method(distill_config(STUDY_PAIR, "smgd_only"), pretrains_head=True, calibrated_as="fd3d"),
    "fd3d_qfd": Method(distill_config(STUDY_PAIR, "qfd_only"), pretrains_head=True, calibrated_as="fd3d"),
}
# calibrated: DISTILL.STAGE_SCALE brings each stage's terms together to the fraction (their paper ratio
# kept); balanced: DISTILL.LOSS_STAGE_SCALE splits each stage's fraction equally between its losses.
STUDY_WEIGHTINGS = ("calibrated", "paper", "balanced")
# one loss per stage (a single method in DISTILL.LOSSES): their balanced scales are their calibrated ones,
# so the balanced table takes their calibrated runs
BALANCED_AS_CALIBRATED = ("fitnet", "cwd", "mgd", "heatmap")
STUDY_HEAD_PRETRAIN = 1000
SIMILARITY_SAMPLES = 40  # the first val samples (cells and image positions of each are the CKA's items)


@dataclass(frozen=True)
class StudySchedule:
    """The distillation study's schedule: steps of every run, steps between val evaluations, and the
    calibration's steps, measurement interval and gradient fraction."""

    steps: int = 4000
    eval_period: int = 1000
    calibration_steps: int = 200
    measure_every: int = 10
    fraction: float = 0.5


STUDY = StudySchedule()
