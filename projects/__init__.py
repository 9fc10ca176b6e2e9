"""Detector plug-ins. Each registers itself through an `fd3d.projects` entry point (setup.py)."""
