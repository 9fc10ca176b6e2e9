"""FD3D knowledge distillation (Section 3) and the FitNet / CWD / MGD / mask-on-GT / heatmap baselines.

Importing the package registers every method in `DISTILL_LOSS_REGISTRY` (one module each).
"""

from fd3d.distill import cwd, fitnet, heatmap, mgd, qfd, smgd  # noqa: F401  (register the methods)
from fd3d.distill.distiller import Distiller, build_training_model
from fd3d.distill.registry import DISTILL_LOSS_REGISTRY, DistillationLoss, registered_losses

__all__ = [
    "DISTILL_LOSS_REGISTRY",
    "DistillationLoss",
    "Distiller",
    "build_training_model",
    "registered_losses",
]
