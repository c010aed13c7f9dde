"""A predicted view's way from memory read-outs to an image, and a camera image's way to the
encoder: the glue around the networks, as graphs, so that a view goes from read-out to image on
the device with one download (``pipeline.WorldModel``) and the CPU runs the same steps.

- :func:`overlay`: the memory's read-out with the newest frame's cells where that frame sees the
  surface (``pipeline`` says why); :func:`renderer_inputs`: a read-out as the renderer takes it;
  ``view_inputs.onnx`` is both, for ``V`` views (``newest`` all invalid = the memory alone).
- :func:`image_in`: ``(H, W, 3) uint8`` camera image -> the encoder's ``(1, 3, H, W)`` in ``[0, 1]``
  (``image_in.onnx``); :func:`image_out`: the renderer's ``(V, 3, H, W)`` -> ``(V, H, W, 3) uint8``
  (``image_out.onnx``).
"""

from __future__ import annotations

import numpy as np

from mirage_ros.memory_maths.onnx_ops import OnnxOps

#: The newest frame's cell wins over the memory's where it is no farther than this share of the
#: memory's depth (both z-buffers hold the nearest surface; the margin absorbs voxel rounding).
NEWEST_DEPTH_TOLERANCE = 0.05


def overlay(xp, memory, newest):
    """Two read-outs ``(latent (V, C, h, w), valid (V, h, w) bool, depth (V, h, w), offset (V, 2, h, w))``
    -> one: ``newest``'s cells where it is valid and the memory has nothing there or a point no
    nearer than ``newest depth / (1 + NEWEST_DEPTH_TOLERANCE)``; ``valid`` is either's."""
    m_latent, m_valid, m_depth, m_offset = memory
    n_latent, n_valid, n_depth, n_offset = newest
    use = n_valid & (~m_valid | (n_depth <= m_depth * (1.0 + NEWEST_DEPTH_TOLERANCE)))
    use_c = xp.unsqueeze(use, [1])
    return (xp.where(use_c, n_latent, m_latent), m_valid | n_valid, xp.where(use, n_depth, m_depth),
            xp.where(use_c, n_offset, m_offset))


def renderer_inputs(xp, latent, valid, depth):
    """A read-out as the renderer takes it: ``latent (V, C, h, w)``, ``valid (V, 1, h, w)`` 1.0 where
    the cell is valid with a positive finite depth (else 0.0) and ``depth (V, 1, h, w)`` metres
    there (0 elsewhere: NaN and inf never reach the network)."""
    drawn = valid & (depth > 0.0) & (depth < np.inf)
    return latent, xp.unsqueeze(xp.cast(drawn, xp.float32), [1]), xp.unsqueeze(xp.where(drawn, depth, 0.0), [1])


def image_in(xp, rgb):
    """``(H, W, 3) uint8`` -> ``(1, 3, H, W) float32`` in ``[0, 1]``."""
    return xp.unsqueeze(xp.transpose(xp.cast(rgb, xp.float32), [2, 0, 1]) / 255.0, [0])


def image_out(xp, rgb):
    """``(V, 3, H, W) float32`` (clipped to ``[0, 1]``) -> ``(V, H, W, 3) uint8``, rounded."""
    scaled = xp.transpose(xp.clip(rgb, 0.0, 1.0), [0, 2, 3, 1]) * 255.0 + 0.5
    return xp.cast(xp.floor(scaled), xp.uint8)


def _readout_inputs(xp, prefix: str):
    return (xp.input(f"{prefix}latent", "float32", ["V", "C", "h", "w"]), xp.input(f"{prefix}valid", "bool", ["V", "h", "w"]),
            xp.input(f"{prefix}depth", "float32", ["V", "h", "w"]), xp.input(f"{prefix}offset", "float32", ["V", 2, "h", "w"]))


def view_inputs_graph():
    """``view_inputs.onnx``: inputs ``latent valid depth offset`` (the memory's read-out) and
    ``newest_*`` (the newest frame's); outputs the renderer's ``latent valid depth`` and the overlaid
    read-out's ``cell_valid cell_depth offset``."""
    xp = OnnxOps()
    latent, valid, depth, offset = overlay(xp, _readout_inputs(xp, ""), _readout_inputs(xp, "newest_"))
    for value, name, shape in zip(renderer_inputs(xp, latent, valid, depth), ("render_latent", "render_valid", "render_depth"),
                                  (["V", "C", "h", "w"], ["V", 1, "h", "w"], ["V", 1, "h", "w"])):
        xp.output(value, name, shape)
    xp.output(valid, "cell_valid", ["V", "h", "w"])
    xp.output(depth, "cell_depth", ["V", "h", "w"])
    xp.output(offset, "cell_offset", ["V", 2, "h", "w"])
    return xp.model("mirage_view_inputs", "Newest-frame overlay and renderer inputs (mirage_ros.memory_maths.views).")


def image_in_graph():
    """``image_in.onnx``: ``rgb (H, W, 3) uint8`` -> ``image (1, 3, H, W) float32``."""
    xp = OnnxOps()
    xp.output(image_in(xp, xp.input("rgb", "uint8", ["H", "W", 3])), "image", [1, 3, "H", "W"])
    return xp.model("mirage_image_in", "Camera image to encoder input (mirage_ros.memory_maths.views).")


def image_out_graph():
    """``image_out.onnx``: ``rgb (V, 3, H, W) float32`` -> ``image (V, H, W, 3) uint8``."""
    xp = OnnxOps()
    xp.output(image_out(xp, xp.input("rgb", "float32", ["V", 3, "H", "W"])), "image", ["V", "H", "W", 3])
    return xp.model("mirage_image_out", "Renderer output to an 8-bit image (mirage_ros.memory_maths.views).")
