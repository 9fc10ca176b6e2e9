"""Installable fd3d: focal knowledge distillation for camera-only 3D detectors."""

import re
from pathlib import Path

from setuptools import find_packages, setup

# one version, the package's own `fd3d.__version__`
VERSION = re.search(r'^__version__ = "([^"]+)"', Path("fd3d/__init__.py").read_text(), re.M).group(1)

setup(
    name="fd3d",
    version=VERSION,
    description="Distilling focal knowledge from an imperfect expert for camera-only 3D object detection",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    # The detector plug-ins live in the top-level `projects/` folder and install as `fd3d_projects`: a
    # top-level package named `projects` would be too generic a name for site-packages. Nothing imports
    # the bare name `projects` (tests/test_packaging.py), so no plug-in is ever imported, and registered,
    # twice under two names.
    packages=[
        *find_packages(include=["fd3d", "fd3d.*"]),
        "fd3d_projects",
        *(f"fd3d_projects.{name}" for name in find_packages("projects")),
    ],
    package_dir={"fd3d_projects": "projects"},
    install_requires=[
        "torch>=2.4",
        "torchvision",
        # nuscenes-devkit 1.2 needs numpy<2; pyarrow 26 refuses to import beside numpy 1.x.
        "numpy<2",
        "nuscenes-devkit==1.2.0",
        "pyarrow>=24,<26",
        "datasets>=3",
        "fvcore",
        "transformers>=4.40",
        "safetensors",
        "accelerate>=1.0",
        "huggingface_hub",
        "tensorboard",
        "pillow",
        "scipy",
        "threadpoolctl",
        "tqdm",
    ],
    extras_require={
        "dev": ["pytest", "ruff", "pytest-httpserver>=1.2"],
        # ONNX export and onnxruntime inference (fd3d.deploy); ml-dtypes 0.6 needs numpy 2
        "deploy": ["onnx", "onnxruntime", "onnxscript", "ml-dtypes<0.6"],
    },
    # Detector plug-ins: importing one registers its meta-architecture and config section.
    entry_points={
        "fd3d.projects": [
            "BEVFormer = fd3d_projects.BEVFormer.bevformer",
            "DETR3D = fd3d_projects.DETR3D.detr3d",
        ]
    },
)
