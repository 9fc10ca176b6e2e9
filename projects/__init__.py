"""Detector plug-ins, installed as the package `fd3d_projects` (setup.py's package_dir): import them as
`fd3d_projects.<Name>`, never as `projects`. Each registers itself through an `fd3d.projects` entry point."""
