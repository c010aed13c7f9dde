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

Inputs: ``rgb (1, 3, H, W) float32`` (the renderer's output, ``H = s*h``, ``W = s*w``) and
``offset (1, 2, h, w) float32``; output ``rgb_placed (1, 3, H, W)``. No Shape->Range: the pixel and
cell grids come from CumSum of ones shaped like the inputs, so every node can run on CUDA.
``python -m mirage_ros.memory.onnx_graphs`` (re)writes ``graphs/subcell_shift.onnx``.
"""

from __future__ import annotations

import onnx

from mirage_ros.memory import layout as L
from mirage_ros.memory.graph_builder import F32, GraphBuilder, value_info


def _indices(b: GraphBuilder, plane: str) -> tuple[str, str, str, str]:
    """Column and row numbers ``1..W``, ``1..H`` of a ``(H, W)`` plane (``(H, W)`` each) and one
    element's size in GridSample's ``[-1, 1]`` units, ``2 / W`` and ``2 / H``."""
    ones = b.op("Add", b.op("Cast", b.op("Less", plane, b.f(-3.0e38)), to=F32), b.f(1.0))
    column, row = b.op("CumSum", ones, b.i(1)), b.op("CumSum", ones, b.i(0))
    step_x = b.op("Div", b.f(2.0), b.op("ReduceMax", column, keepdims=0))
    step_y = b.op("Div", b.f(2.0), b.op("ReduceMax", row, keepdims=0))
    return column, row, step_x, step_y


def build_subcell_shift() -> onnx.ModelProto:
    """Warp ``rgb`` by ``stride * offset`` (module doc)."""
    b = GraphBuilder()
    column, row, step_x, step_y = _indices(
        b, b.op("Gather", b.op("Gather", "rgb", b.i(0), axis=0), b.i(0), axis=0))
    # pixel centres in GridSample's [-1, 1] (align_corners 0)
    x = b.op("Sub", b.op("Mul", b.op("Sub", column, b.f(0.5)), step_x), b.f(1.0))
    y = b.op("Sub", b.op("Mul", b.op("Sub", row, b.f(0.5)), step_y), b.f(1.0))
    _, _, cell_x, cell_y = _indices(b, b.op("Gather", b.op("Gather", "offset", b.i(0), axis=0), b.i(0), axis=0))
    pixel_grid = b.op("Unsqueeze", b.op("Concat", b.op("Unsqueeze", x, b.i([2])),
                                        b.op("Unsqueeze", y, b.i([2])), axis=2), b.i([0]))  # (1, H, W, 2)
    field = b.op("GridSample", "offset", pixel_grid, mode="bilinear", padding_mode="border", align_corners=0)
    du, dv = b.op("Split", b.op("Gather", field, b.i(0), axis=0), n_out=2, axis=0, num_outputs=2)  # (1, H, W)
    # one cell is 2 / w in normalised units (the image is s * w pixels wide)
    source_x = b.op("Sub", x, b.op("Mul", b.op("Gather", du, b.i(0), axis=0), cell_x))
    source_y = b.op("Sub", y, b.op("Mul", b.op("Gather", dv, b.i(0), axis=0), cell_y))
    source = b.op("Unsqueeze", b.op("Concat", b.op("Unsqueeze", source_x, b.i([2])),
                                    b.op("Unsqueeze", source_y, b.i([2])), axis=2), b.i([0]))
    b.op("GridSample", "rgb", source, mode="bilinear", padding_mode="border", align_corners=0, out="rgb_placed")
    inputs = [value_info("rgb", F32, [1, 3, "H", "W"]), value_info("offset", F32, [1, 2, "h", "w"])]
    outputs = [value_info("rgb_placed", F32, [1, 3, "H", "W"])]
    return b.model("mirage_subcell_shift", inputs, outputs, build_subcell_shift.__doc__)


def build_all() -> dict[str, onnx.ModelProto]:
    return {L.SUBCELL_GRAPH: build_subcell_shift()}
