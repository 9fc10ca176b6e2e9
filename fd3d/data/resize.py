"""How images of another size are resized (INPUT.RESIZE), by the data loader and by the model.

- "antialias" (fd3d's): PIL's bilinear filter widened to the scale when shrinking;
- "cv2_bilinear": OpenCV's INTER_LINEAR at half-pixel centres, no antialiasing: `mmcv.imresize`, what the
  official BEVFormer / DETR3D pipelines (RandomScaleImageMultiViewImage) call. Converted official
  checkpoints get it, so that raw images reach them as they reached the official model.
"""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image

RESIZE_MODES = ("antialias", "cv2_bilinear")


def check_resize_mode(mode: str) -> str:
    if mode not in RESIZE_MODES:
        raise ValueError(f"INPUT.RESIZE must be one of {list(RESIZE_MODES)}, got {mode!r}")
    return mode


def resize_image(image: Image.Image, size_hw: tuple[int, int], mode: str) -> np.ndarray:
    """(H, W, 3) uint8 array of an RGB PIL image resized to `size_hw` by `mode`."""
    height, width = int(size_hw[0]), int(size_hw[1])
    if check_resize_mode(mode) == "cv2_bilinear":
        return cv2.resize(np.asarray(image), (width, height), interpolation=cv2.INTER_LINEAR)
    return np.asarray(image.resize((width, height), Image.BILINEAR))
