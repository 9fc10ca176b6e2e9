"""DETR3D plug-in (see README.md)."""
