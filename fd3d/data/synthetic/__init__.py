"""The synthetic world: nuScenes-format datasets generated from random scene layouts.

`generator` writes the dataroot (all 13 tables, images, lidar sweeps); `scene_layout` places the boxes,
`raycast` intersects rays with boxes and the ground, `render` shades camera images and `lidar` casts the
32-beam sweep. The loader (`fd3d.data.nuscenes`) never imports this package: it reads what was written.
"""

from fd3d.data.synthetic.generator import SUPPORTED_VERSIONS, SyntheticConfig, generate

__all__ = ["SUPPORTED_VERSIONS", "SyntheticConfig", "generate"]
