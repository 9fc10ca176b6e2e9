"""Deployment: one frame of a detector as an exportable graph, ONNX export, onnxruntime execution."""

from fd3d.deploy.graph import InferenceGraph
from fd3d.deploy.onnx_export import ExportError, compare_runtimes, export_onnx, onnx_runner

__all__ = ["ExportError", "InferenceGraph", "compare_runtimes", "export_onnx", "onnx_runner"]
