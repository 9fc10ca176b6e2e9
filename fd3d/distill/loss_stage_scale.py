"""`DISTILL.LOSS_STAGE_SCALE`: one method's terms at one stage multiplied on their own.

`DISTILL.STAGE_SCALE` multiplies every term of a stage alike, so the methods sharing a stage keep the
ratio of their paper weights. FD3D's BEV holds SMGD (Eq. 8) and QFD (Eq. 14) at once, with QFD's gradient
~20x SMGD's at the paper's weights (lambda 0.25, eta 0.001, Sec. 4.2) on a CPU-sized BEV: a stage scale
alone can give SMGD's BEV term a stated share only by giving QFD twenty times more.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping

from fd3d.config import ConfigError

KEY = "DISTILL.LOSS_STAGE_SCALE"
_ENTRY = re.compile(r"^\s*([A-Za-z0-9_]+)\s*:\s*([A-Za-z]+)\s*=\s*(\S+)\s*$")


def parse_loss_stage_scales(
    entries: Iterable[str], stages_of: Mapping[str, Iterable[str]]
) -> dict[tuple[str, str], float]:
    """{(loss, stage): scale} of the "LOSS:STAGE=SCALE" entries.

    `stages_of` maps each configured loss (`DISTILL.LOSSES`) to the stages its terms distil; an entry
    naming another loss, a stage the loss has no term at, a scale that is not a non-negative finite number,
    or a (loss, stage) given twice raises `ConfigError` naming the entry and what is valid."""
    stages_of = {loss: sorted(set(stages)) for loss, stages in stages_of.items()}
    scales: dict[tuple[str, str], float] = {}
    for entry in entries:
        found = _ENTRY.match(str(entry))
        if found is None:
            raise ConfigError(f"{KEY} entry {entry!r} must read LOSS:STAGE=SCALE, e.g. 'smgd:bev=2.5'")
        loss, stage, value = found.group(1).lower(), found.group(2).lower(), found.group(3)
        if loss not in stages_of:
            raise ConfigError(
                f"{KEY} entry {entry!r}: loss {loss!r} is not in DISTILL.LOSSES {sorted(stages_of)}"
            )
        if stage not in stages_of[loss]:
            raise ConfigError(
                f"{KEY} entry {entry!r}: {loss!r} has terms at the stages {stages_of[loss]}, not {stage!r}"
            )
        try:
            scale = float(value)
        except ValueError:
            scale = math.nan
        if not (math.isfinite(scale) and scale >= 0):
            raise ConfigError(f"{KEY} entry {entry!r}: the scale must be a non-negative finite number")
        if (loss, stage) in scales:
            raise ConfigError(f"{KEY} gives {loss}:{stage} twice")
        scales[(loss, stage)] = scale
    return scales


def loss_stage_entries(scales: Mapping[str, Mapping[str, float]]) -> list[str]:
    """The `DISTILL.LOSS_STAGE_SCALE` entries of {loss: {stage: scale}}, sorted."""
    return [f"{loss}:{stage}={float(scale)!r}" for loss in sorted(scales) for stage, scale in
            sorted(scales[loss].items())]  # fmt: skip
