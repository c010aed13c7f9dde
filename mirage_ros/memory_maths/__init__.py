"""The memory's maths, written once: the update, read-out, carving and sub-cell placement as
functions over a small array vocabulary (``ops.py``) that either records the shipped ONNX graphs
(``build.py``) or runs eagerly in torch (training, tests).

Build time and training only (``onnx`` or ``torch``); nodes and the runtime load the recorded
graphs from ``mirage_ros/graphs`` and never import this package.
"""
