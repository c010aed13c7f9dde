"""Free-space carving: stored points that the live depth now sees *through* lose confidence and
are removed when it runs out (the TSDF-style fix for stale points: a person who walked away, a
door that opened, an object the moving-object detector missed).

Per frame, before the update, the carve graph

1. pools the live depth to the memory's latent grid (``stride`` x ``stride`` pixel blocks): per
   cell the **nearest** reading; a cell takes part only when at least ``min_valid_fraction`` of
   its pixels read in ``(min_depth, max_depth)`` and none is flagged dynamic;
2. takes the minimum over each cell's 3 x 3 neighbourhood, so a point carves only when every
   reading around its pixel is farther (silhouette edges, pose and voxel rounding never carve a
   surface that is still there). A flagged neighbour blocks; a neighbour without readings does
   not (depth holes fringe every silhouette, and the far end of a corridor returns nothing: a
   person walking away would otherwise leave an uncarvable trail of their own points);
3. projects this frame's share of the slots (every ``layout.SLICES``-th, a different share each frame,
   so each point is tested every ``SLICES`` frames for a quarter of the cost) like the read-out
   does; a point at depth ``z`` whose pooled live depth ``d`` satisfies
   ``d > z + margin + rel_margin * z`` (noise grows with range) is seen through: its weight drops
   by ``decrement``; at weight <= 0 the slot is emptied (key -1, position NaN, weight 0; its
   count restarts when the slot is claimed again) and ``points_live`` decreases. ``LatentMemory``
   passes ``SLICES`` times the per-frame ``MemoryConfig.carve_decrement``, so a point seen in
   ``w`` frames goes after about ``w`` frames seen through, as if every frame tested it.

A point behind a nearer surface (``d <= z``) is never touched. One bad frame (a pose jump) removes
only points of weight <= ``decrement``: well-observed structure needs many consistent frames.

The graph reads ``positions, weights, keys, stats`` and its own counters ``carve_stats``
(``layout.CARVE_STAT_NAMES``) and writes new versions of them; ``latents`` and ``last_seen`` are not
touched, so the update can read the carve outputs plus the old ``latents``, ``last_seen`` and
``counts``. All shapes are static given the inputs (no Shape/Range; the slot shares are constant
inputs from the host), so every node stays on the CUDA provider. The maths is mirrored in
``torch_reference.carve_torch``.

``python -m mirage_ros.memory.onnx_graphs`` (re)writes ``graphs/carve_s{stride}.onnx`` with the
other graphs.
"""

from __future__ import annotations

import numpy as np
import onnx

from mirage_ros.memory import layout as L
from mirage_ros.memory.graph_builder import BOOL, F32, STATE_TYPES, GraphBuilder, split_scalars, value_info

_I64 = onnx.TensorProto.INT64


def _count(b: GraphBuilder, mask: str) -> str:
    """``(S,) bool -> (1,) int64``, summed in float32: exact below 2**24 slots (the config's cap)
    and several times faster than an int64 ReduceSum on ORT's CPU provider."""
    total = b.op("ReduceSum", b.op("Cast", mask, to=F32), b.i([0]), keepdims=1)
    return b.op("Cast", total, to=_I64)


def _cell_depth(b: GraphBuilder, stride: int, p: dict[str, str]) -> str:
    """Pooled live depth ``(h * w + 1,)``: nearest reading per cell, 0 = unknown, min over the
    neighbourhood; the extra last entry (0) is where points off the grid look."""
    def blocks(image):  # (H, W) -> (s*s, h, w)
        spread = b.op("SpaceToDepth", b.op("Unsqueeze", image, b.i([0, 1])), blocksize=stride)
        return b.op("Squeeze", spread, b.i([0]))

    depth = blocks("depth")
    reading = b.and_(b.op("Greater", depth, p["min_depth"]), b.op("Less", depth, p["max_depth"]))
    nearest = b.op("ReduceMin", b.where(reading, depth, b.f(L.FAR_SENTINEL)), b.i([0]), keepdims=1)
    enough = b.op("GreaterOrEqual", b.op("ReduceMean", b.op("Cast", reading, to=F32), b.i([0]), keepdims=1),
                  b.op("Mul", p["min_valid_fraction"], b.f(1.0 - 1e-6)))
    still = b.op("Less", b.op("ReduceMax", blocks(b.op("Cast", "dynamic", to=F32)), b.i([0]), keepdims=1),
                 b.f(0.5))
    # neighbours: a flagged cell blocks (0), a cell without readings does not (far sentinel)
    value = b.where(still, b.where(enough, nearest, b.f(L.FAR_SENTINEL)), b.f(0.0))
    # min over the neighbourhood = -max(-x); MaxPool pads with -inf, so the image border never blocks
    pooled = b.op("Neg", b.op("MaxPool", b.op("Neg", b.op("Unsqueeze", value, b.i([0]))),
                              kernel_shape=[L.NEIGHBOURHOOD] * 2, pads=[L.NEIGHBOURHOOD // 2] * 4))
    live = b.where(b.and_(enough, still), b.op("Squeeze", pooled, b.i([0])), b.f(0.0))
    return b.op("Concat", b.op("Reshape", live, b.i([-1])), b.f([0.0]), axis=0)


def build_carve(stride: int) -> onnx.ModelProto:
    """Carve graph for latent stride ``stride`` (see module docstring)."""
    b = GraphBuilder()
    p = split_scalars(b, "params", L.CARVE_PARAMS)
    live = _cell_depth(b, stride, p)

    index = "slot_ids"  # this frame's share of the slots, from the host (see layout.slot_shares)
    positions = b.op("Gather", "positions", index, axis=0)  # (S / SLICES, 3)
    keys, weights = (b.op("Gather", n, index, axis=0) for n in ("keys", "weights"))

    matrix = b.op("Transpose", b.op("Slice", "projection", b.i([0]), b.i([3]), b.i([1])), perm=[1, 0])
    offset = b.op("Reshape", b.op("Slice", "projection", b.i([3]), b.i([4]), b.i([1])), b.i([1, 3]))
    uvz = b.op("Add", b.op("MatMul", positions, matrix), offset)  # empty slots are NaN
    uz, vz, z = (b.flat(c) for c in b.op("Split", uvz, n_out=3, axis=1, num_outputs=3))
    u = b.op("Floor", b.op("Div", uz, z))
    v = b.op("Floor", b.op("Div", vz, z))
    inside = b.and_(
        b.op("GreaterOrEqual", keys, b.i(0)),
        b.op("Greater", z, p["near"]),
        b.op("GreaterOrEqual", u, b.f(0.0)), b.op("Less", u, p["width"]),
        b.op("GreaterOrEqual", v, b.f(0.0)), b.op("Less", v, p["height"]),
    )
    n_cells = b.op("Mul", p["width"], p["height"])
    cell = b.where(inside, b.op("Add", b.op("Mul", b.where(inside, v, b.f(0.0)), p["width"]),
                                b.where(inside, u, b.f(0.0))), n_cells)
    seen = b.op("Gather", live, b.op("Cast", cell, to=_I64), axis=0)  # 0 off the grid
    tolerance = b.op("Add", p["margin"], b.op("Mul", p["rel_margin"], z))
    through = b.and_(inside, b.op("Greater", seen, b.op("Add", z, tolerance)))

    weight = b.where(through, b.op("Sub", weights, p["decrement"]), weights)
    removed = b.and_(through, b.op("LessOrEqual", weight, b.f(0.0)))
    # removed rows are emptied, every other row of this share writes into the trash row, which is
    # empty (key -1, NaN) by construction: the writes are all the same, so their order is moot
    target = b.where(removed, index, "trash_id")
    b.op("ScatterND", "positions", b.col(target), b.op("Mul", positions, b.f(np.nan)), out="positions_out")
    b.op("ScatterElements", "keys", target, b.op("Sub", b.op("Mul", keys, b.i(0)), b.i(1)), axis=0,
         out="keys_out")
    b.op("ScatterElements", "weights", index, b.op("Max", weight, b.f(0.0)), axis=0, out="weights_out")
    n_removed = _count(b, removed)
    live_index = L.STAT_NAMES.index("points_live")
    one_hot = np.zeros(L.N_STATS, np.int64)
    one_hot[live_index] = 1
    b.op("Sub", "stats", b.op("Mul", b.i(one_hot), n_removed), out="stats_out")
    b.op("Add", "carve_stats", b.op("Concat", b.i([1]), _count(b, through), n_removed, axis=0),
         out="carve_stats_out")

    inputs = [
        value_info("depth", F32, ["H", "W"]),
        value_info("dynamic", BOOL, ["H", "W"]),
        value_info("projection", F32, [3, 4]),
        value_info("params", F32, [len(L.CARVE_PARAMS)]),
        value_info("slot_ids", _I64, ["N"]),
        value_info("trash_id", _I64, [1]),
    ] + [value_info(n, *STATE_TYPES[n]) for n in L.CARVE_STATE] + [value_info("carve_stats", _I64, [len(L.CARVE_STAT_NAMES)])]
    outputs = [value_info(f"{n}_out", *STATE_TYPES[n]) for n in L.CARVE_STATE] + [
        value_info("carve_stats_out", _I64, [len(L.CARVE_STAT_NAMES)])]
    return b.model(f"mirage_memory_carve_s{stride}", inputs, outputs, build_carve.__doc__)


def build_all() -> dict[str, onnx.ModelProto]:
    """Every carve graph by file stem: ``carve_s{stride}``."""
    return {L.carve_graph_name(s): build_carve(s) for s in L.STRIDES}
