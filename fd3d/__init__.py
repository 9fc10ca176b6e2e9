"""fd3d: focal knowledge distillation for camera-only 3D object detectors.

The front door, loaded on first use so that `import fd3d` stays cheap:

    import fd3d
    fd3d.list_configs("zoo")                      # {name: folder} of the shipped models
    model = fd3d.from_pretrained(folder_or_hub_id)  # any detector, weights loaded strictly
    model.save_pretrained("my_model")             # and back
    cfg = fd3d.load_config(path, overrides)       # fvcore CfgNode, validated
    detector = fd3d.build_model(cfg)              # freshly initialised
    fd3d.train(cfg)                               # the Accelerate trainer (detection or distillation)
    fd3d.evaluate(model, dataroot, out_dir)       # official devkit metrics

`fd3d.Distiller` is the FD3D distiller (an apprentice, a frozen expert, the configured methods).
"""

import importlib
import warnings

__version__ = "0.1.0"

# fvcore.nn (sigmoid_focal_loss, giou_loss) wraps a helper in `torch.jit.script` when imported, which
# torch >= 2.10 reports as deprecated on every run. It is harmless and not ours: silence exactly it.
warnings.filterwarnings(
    "ignore", message=r"`torch\.jit\.script` is deprecated", category=FutureWarning, module=r"torch\.jit"
)

_EXPORTS = {
    "load_config": "fd3d.config",
    "build_model": "fd3d.modeling.registry",
    "from_pretrained": "fd3d.hub",
    "Distiller": "fd3d.distill.distiller",
    "train": "fd3d.engine.trainer",
    "evaluate": "fd3d.api",
    "list_configs": "fd3d.api",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'fd3d' has no attribute {name!r}; the API: {__all__}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
