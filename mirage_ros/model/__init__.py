"""Torch networks, training data, training loop and ONNX export.

This is the only package that imports torch. Nothing at runtime (nodes, memory, pipeline,
evaluation) imports it: they load the exported ONNX files through ``mirage_ros.runtime``.
"""
