"""The shipped geometric ONNX graphs (memory update, read-out, carving, sub-cell placement, the
networks' input and output glue), where
they are and what they are called. Recorded by ``python -m mirage_ros.memory_maths.build``; loaded
by the memory (``memory.latent_memory``) and by the networks' sub-cell placement
(``runtime.networks``), which both import this module rather than each other."""

from __future__ import annotations

from pathlib import Path

GRAPH_DIR = Path(__file__).parent
STRIDES = (2, 4, 8, 16)  # one update and one carve graph per latent stride
SUBCELL = "subcell_shift"  # sub-cell placement of rendered views (memory_maths/subcell.py)
READOUT = "readout"  # one view (memory_maths/readout.py)
READOUT_VIEWS = "readout_views"  # V views of one grid size in one call
VIEW_INPUTS = "view_inputs"  # read-outs -> renderer inputs, newest frame overlaid (memory_maths/views.py)
IMAGE_IN = "image_in"  # camera image -> encoder input
IMAGE_OUT = "image_out"  # renderer output -> 8-bit image


def update_name(stride: int) -> str:
    """File stem of the update graph for latent ``stride``."""
    return f"update_s{stride}"


def carve_name(stride: int) -> str:
    """File stem of the carve graph for latent ``stride``."""
    return f"carve_s{stride}"


def path(name: str) -> Path:
    """Path of the shipped graph ``name`` (``"update_s8"``, ``"readout"``)."""
    return GRAPH_DIR / f"{name}.onnx"
