"""Sub-cell placement of a rendered view: move each latent cell's rendered content to where its
point actually projects.

The read-out z-buffers stored points into latent cells (``stride`` pixels wide), and the renderer
draws a cell's content centred on the cell. A point rarely projects onto a cell centre: after a
small camera motion the whole view is off by up to half a cell (2 px at stride 4), which costs
more than the latent code itself does. The read-out reports, per cell, where its winning point
lands (``Readout.offset``, ``(du, dv)`` in cells from the centre); this graph warps the rendered
image by that field:

    out(x, y) = rendered(x - s * du(x, y), y - s * dv(x, y))

with ``(du, dv)`` interpolated bilinearly between cell centres (neighbouring points of one surface
move together, so the field is smooth where the picture has content) and the image sampled
bilinearly, clamped at the border. Cells the memory does not cover have offset 0 and stay put.

Measured before it shipped (``docs/evaluation.md``): warping one frame's latents 0.2 s ahead,
covered-region PSNR +1.6 dB (corridor) and +1.9 dB (office) with the same networks.

Inputs: ``rgb (B, 3, H, W) float32`` (the renderer's output, ``H = s*h``, ``W = s*w``) and
``offset (B, 2, h, w) float32``; output ``rgb_placed (B, 3, H, W)``. No Shape->Range: the pixel and
cell grids come from CumSum of ones shaped like the inputs, so every node can run on CUDA.
Training places cells with :func:`place_subcell_torch`, the same function in torch.
``python -m mirage_ros.memory_maths.build`` (re)writes ``graphs/subcell_shift.onnx``.
"""

from __future__ import annotations

from mirage_ros.memory_maths.onnx_ops import OnnxOps
from mirage_ros.memory_maths.torch_ops import TorchOps


def _counts(xp, plane):
    """Column and row numbers ``1..W``, ``1..H`` of a ``(B, H, W)`` plane (``(B, H, W)`` each) and
    one element's size in GridSample's ``[-1, 1]`` units, ``2 / W`` and ``2 / H``."""
    ones = xp.cast(plane < -3.0e38, xp.float32) + 1.0
    column, row = xp.cumsum(ones, 2), xp.cumsum(ones, 1)
    return column, row, 2.0 / xp.reduce("max", column, keepdims=False), 2.0 / xp.reduce("max", row, keepdims=False)


def _points(xp, x, y):
    """``(B, H, W)`` x and y -> ``(B, H, W, 2)``."""
    return xp.concat([xp.unsqueeze(x, [3]), xp.unsqueeze(y, [3])], 3)


def place_subcell(xp, rgb, offset):
    """Warp ``rgb (B, 3, H, W)`` by ``stride * offset`` (``offset (B, 2, h, w)``, cells; module doc)."""
    column, row, step_x, step_y = _counts(xp, xp.gather(rgb, 0, 1))
    # pixel centres in GridSample's [-1, 1] (align_corners 0)
    x, y = (column - 0.5) * step_x - 1.0, (row - 0.5) * step_y - 1.0
    _, _, cell_x, cell_y = _counts(xp, xp.gather(offset, 0, 1))
    field = xp.grid_sample(offset, _points(xp, x, y))  # (B, 2, H, W): the offset at each pixel
    # one cell is 2 / w in normalised units (the image is s * w pixels wide)
    source = _points(xp, x - xp.gather(field, 0, 1) * cell_x, y - xp.gather(field, 1, 1) * cell_y)
    return xp.grid_sample(rgb, source)


def place_subcell_torch(rgb, offset):
    """:func:`place_subcell` in torch, differentiable in ``rgb``."""
    return place_subcell(TorchOps(rgb.device), rgb, offset.to(rgb.dtype))


def graph():
    """The placement graph: inputs ``rgb``, ``offset``, output ``rgb_placed``."""
    xp = OnnxOps()
    rgb, offset = xp.input("rgb", "float32", ["B", 3, "H", "W"]), xp.input("offset", "float32", ["B", 2, "h", "w"])
    xp.output(place_subcell(xp, rgb, offset), "rgb_placed", ["B", 3, "H", "W"])
    return xp.model("mirage_subcell_shift", "Warp rgb by stride * offset (mirage_ros.memory_maths.subcell).")
