"""What the training engine asks of the model it trains, so that it never learns what that model is.

A detector trained alone answers for itself (these defaults); a distiller answers with its apprentice,
the input size its expert needs, where the apprentice came from, and the phases of its own parts.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn


@dataclass(frozen=True)
class TrainingPhase:
    """`steps` optimizer steps that train only `parameters` before the main steps, on the same data, with
    their own AdamW group and warm-up + cosine schedule. The model computes the phase's losses when called
    as `model(batch, phase=name)`. A phase never changes the main run: the trainer restores the global
    random state after it and restarts the data at the first epoch, and a resumed run skips it."""

    name: str
    steps: int
    parameters: tuple[nn.Parameter, ...]


class TrainableModel:
    """Mixin with the engine's questions; the defaults are those of a detector trained alone."""

    def trained_detector(self) -> nn.Module:
        """The detector being trained: initialised from MODEL.WEIGHTS, evaluated and saved."""
        return self

    def data_image_size(self) -> tuple[int, int]:
        """(H, W) the images are decoded at: the largest input any part of the model reads."""
        return tuple(self.image_size)

    def provenance(self) -> dict[str, str]:
        """Model-card fields saying where the trained detector came from (e.g. `distilled_from`, `method`)."""
        return {}

    def training_phases(self) -> list[TrainingPhase]:
        """Phases run before the main steps, in order."""
        return []
