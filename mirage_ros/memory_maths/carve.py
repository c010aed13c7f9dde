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
inputs from the host), so every node stays on the CUDA provider.

``python -m mirage_ros.memory_maths.build`` (re)writes ``graphs/carve_s{stride}.onnx`` with
the other graphs.
"""

from __future__ import annotations

import numpy as np

from mirage_ros.memory import layout as L
from mirage_ros.memory_maths.onnx_ops import OnnxOps
from mirage_ros.memory_maths.readout import projected
from mirage_ros.memory_maths.update import STATE_SHAPES, state_inputs


def _count(xp, mask):
    """``(N,) bool -> (1,) int64``, summed in float32: exact below 2**24 slots (the config's cap)
    and several times faster than an int64 ReduceSum on ORT's CPU provider."""
    return xp.cast(xp.reduce("sum", xp.cast(mask, xp.float32), [0], keepdims=True), xp.int64)


def cell_depth(xp, depth, dynamic, stride: int, p: dict):
    """Pooled live depth ``(h * w + 1,)``: nearest reading per cell, 0 = unknown, min over the
    neighbourhood; the extra last entry (0) is where points off the grid look."""
    def blocks(image):  # (H, W) -> (s*s, h, w)
        return xp.squeeze(xp.space_to_depth(xp.unsqueeze(image, [0, 1]), stride), [0])

    depth = blocks(depth)
    reading = (depth > p["min_depth"]) & (depth < p["max_depth"])
    nearest = xp.reduce("min", xp.where(reading, depth, L.FAR_SENTINEL), [0])
    enough = xp.reduce("mean", xp.cast(reading, xp.float32), [0]) >= p["min_valid_fraction"] * (1.0 - 1e-6)
    still = xp.reduce("max", blocks(xp.cast(dynamic, xp.float32)), [0]) < 0.5
    # neighbours: a flagged cell blocks (0), a cell without readings does not (far sentinel)
    value = xp.where(still, xp.where(enough, nearest, L.FAR_SENTINEL), 0.0)
    # min over the neighbourhood = -max(-x); MaxPool pads with -inf, so the image border never blocks
    pooled = -xp.max_pool(-xp.unsqueeze(value, [0]), L.NEIGHBOURHOOD)
    live = xp.where(enough & still, xp.squeeze(pooled, [0]), 0.0)
    return xp.concat([xp.reshape(live, [-1]), xp.const([0.0], xp.float32)], 0)


def carve(xp, depth, dynamic, projection, params, slot_ids, trash_id, state: dict, carve_stats, stride: int):
    """One carve step (module doc).

    Args:
        xp: the backend (``TorchOps`` or ``OnnxOps``).
        depth: ``(H, W) float32`` live depth, metres. dynamic: ``(H, W) bool``.
        projection: ``(3, 4) float32`` ``layout.projection_matrix`` of the live latent grid.
        params: ``(len(layout.CARVE_PARAMS),) float32`` in that order.
        slot_ids: ``(N,) int64`` this frame's share of the slots (``layout.slot_shares``).
        trash_id: ``(1,) int64`` the trash row.
        state: ``layout.CARVE_STATE`` tensors. carve_stats: ``(3,) int64`` (``CARVE_STAT_NAMES``).

    Returns:
        ``layout.CARVE_STATE`` tensors and ``carve_stats``, carved, by name.
    """
    p = dict(zip(L.CARVE_PARAMS, xp.split(params, len(L.CARVE_PARAMS), 0)))
    live = cell_depth(xp, depth, dynamic, stride, p)

    positions = xp.gather(state["positions"], slot_ids)  # (N, 3)
    keys, weights = xp.gather(state["keys"], slot_ids), xp.gather(state["weights"], slot_ids)
    uz, vz, z = (xp.flat(c) for c in xp.split(projected(xp, positions, projection), 3, 1))  # empty: NaN
    u, v = xp.floor(uz / z), xp.floor(vz / z)
    inside = xp.all_of(keys >= 0, z > p["near"], u >= 0.0, u < p["width"], v >= 0.0, v < p["height"])
    cell = xp.where(inside, xp.where(inside, v, 0.0) * p["width"] + xp.where(inside, u, 0.0),
                    p["width"] * p["height"])
    seen = xp.gather(live, xp.cast(cell, xp.int64))  # 0 off the grid
    through = inside & (seen > z + (p["margin"] + p["rel_margin"] * z))

    weight = xp.where(through, weights - p["decrement"], weights)
    removed = through & (weight <= 0.0)
    # removed rows are emptied, every other row of this share writes into the trash row, which is
    # empty (key -1, NaN) by construction: the writes are all the same, so their order is moot
    target = xp.where(removed, slot_ids, trash_id)
    n_removed = _count(xp, removed)
    one_hot = np.zeros(L.N_STATS, np.int64)
    one_hot[L.STAT_NAMES.index("points_live")] = 1
    return {
        "positions": xp.scatter_rows(state["positions"], target, positions * np.nan),
        "keys": xp.scatter(state["keys"], target, keys * 0 - 1),
        "weights": xp.scatter(state["weights"], slot_ids, xp.maximum(weight, 0.0)),
        "stats": state["stats"] - xp.const(one_hot, xp.int64) * n_removed,
        "carve_stats": carve_stats + xp.concat([xp.const([1], xp.int64), _count(xp, through), n_removed], 0),
    }


def graph(stride: int):
    """The carve graph for latent ``stride``: inputs as :func:`carve`'s arguments, outputs
    ``{name}_out``."""
    xp = OnnxOps()
    args = [xp.input("depth", "float32", ["H", "W"]), xp.input("dynamic", bool, ["H", "W"]),
            xp.input("projection", "float32", [3, 4]), xp.input("params", "float32", [len(L.CARVE_PARAMS)]),
            xp.input("slot_ids", "int64", ["N"]), xp.input("trash_id", "int64", [1])]
    state = state_inputs(xp, L.CARVE_STATE)
    carve_stats = xp.input("carve_stats", "int64", [len(L.CARVE_STAT_NAMES)])
    new = carve(xp, *args, state, carve_stats, stride)
    for name in L.CARVE_STATE:
        xp.output(new[name], f"{name}_out", STATE_SHAPES[name][1])
    xp.output(new["carve_stats"], "carve_stats_out", [len(L.CARVE_STAT_NAMES)])
    return xp.model(f"mirage_memory_carve_s{stride}", f"Carve graph for latent stride {stride} "
                    "(mirage_ros.memory_maths.carve).")
