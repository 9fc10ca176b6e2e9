"""fd3d: focal knowledge distillation for camera-only 3D object detectors."""

import warnings

# fvcore.nn (sigmoid_focal_loss, giou_loss) wraps a helper in `torch.jit.script` when imported, which
# torch >= 2.10 reports as deprecated on every run. It is harmless and not ours: silence exactly it.
warnings.filterwarnings(
    "ignore", message=r"`torch\.jit\.script` is deprecated", category=FutureWarning, module=r"torch\.jit"
)
