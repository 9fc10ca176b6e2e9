"""FD3D knowledge distillation (Section 3) and the FitNet / CWD / MGD / mask-on-GT / heatmap baselines."""

from fd3d.distill.distiller import LOSSES, Distiller

__all__ = ["LOSSES", "Distiller"]
