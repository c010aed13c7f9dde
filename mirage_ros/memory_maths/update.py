"""The memory update: pool depth per latent cell, lift cells into the world, key them by voxel and
fuse them into the set-associative hash table (``memory/layout.py`` describes the state).

One latent cell gives at most one candidate point: its edge-aware depth (``pool_cells``) along the
cell centre's ray. Cells are keyed by the voxel they fall in, at the level their footprint picks
(``voxel_levels``: near cells in fine voxels, far ones in coarse, so one frame's cells keep voxels
of their own at every range); a voxel may live in the ``WAYS``
slots of its bucket: a slot holding the same voxel wins, then an empty slot (starting at a
per-voxel way), then the least recently seen. Cells that pick the same slot in one frame are
settled by priority (a match first, then the larger cell id) over ``ROUNDS`` rounds; the cells of
one slot's group are averaged into it, weighted, as a running mean with what the slot held.
"""

from __future__ import annotations

import numpy as np

from mirage_ros.memory import layout as L
from mirage_ros.memory_maths.onnx_ops import OnnxOps

BIG = 3.0e30  # score of a matching slot; +-BIG bracket the other scores


def pool_cells(xp, depth, dynamic, stride: int, p: dict):
    """Edge-aware depth per latent cell (``geometry.pool_depth``), whether the cell has a reading,
    and its dynamic fraction: ``(M,)`` each, ``M = h * w`` in row-major cell order.

    ``depth (H, W)`` metres, ``dynamic (H, W)`` bool; ``p`` holds ``min_depth``, ``max_depth``,
    ``rel_gap`` and ``min_fraction``. The readings of a cell are sorted and split into clusters at
    relative gaps over ``rel_gap``; the nearest cluster holding ``min_fraction`` of the readings
    gives the median.
    """
    s2 = stride * stride

    def blocks(image):  # (H, W) -> (M, s*s)
        spread = xp.space_to_depth(xp.unsqueeze(image, [0, 1]), stride)
        return xp.transpose(xp.reshape(spread, [s2, -1]), [1, 0])

    depth = blocks(depth)
    dynamic = blocks(xp.cast(dynamic, xp.float32))
    dynamic_fraction = xp.reduce("mean", dynamic, [1], keepdims=False)
    reading = xp.all_of(depth > p["min_depth"], depth < p["max_depth"], dynamic < 0.5)
    ordered = xp.sort_ascending(xp.where(reading, depth, L.FAR_SENTINEL), s2, axis=1)  # no-readings last
    lower, upper = xp.slice(ordered, 0, s2 - 1, 1), xp.slice(ordered, 1, s2, 1)
    jump = (upper - lower) > lower * p["rel_gap"]
    is_reading = xp.cast(ordered < 0.5 * L.FAR_SENTINEL, xp.int64)
    cluster = xp.concat([xp.slice(is_reading, 0, 1, 1) * 0, xp.cumsum(xp.cast(jump, xp.int64), 1)], 1)
    sizes = xp.scatter(is_reading * 0, cluster, is_reading, axis=1, reduction="add")
    n_valid = xp.reduce("sum", is_reading, [1])
    need = xp.maximum(xp.cast(n_valid, xp.float32) * p["min_fraction"], 1.0)
    supported = xp.cast(xp.cast(sizes, xp.float32) >= need, xp.float32)
    # nearest supported cluster: weights s2..1 make the first supported column the unique maximum
    # (ArgMax ties are provider-dependent; all-zero rows are cells without depth, dropped later)
    chosen = xp.argmax(supported * xp.const(np.arange(s2, 0, -1)[None, :], xp.float32), axis=1)
    first = xp.gather_elements(xp.cumsum(sizes, 1, exclusive=True), chosen, 1)
    size = xp.maximum(xp.gather_elements(sizes, chosen, 1), 1)
    lo, hi = first + xp.div_int(size - 1, 2), first + xp.div_int(size, 2)
    median = (xp.gather_elements(ordered, lo, 1) + xp.gather_elements(ordered, hi, 1)) * 0.5
    return xp.flat(median), xp.flat(n_valid > 0), dynamic_fraction


def _dot(columns, weights):
    """``sum_i column_i * weight_i`` in exact int64 (no ReduceSum: ORT's loses low bits)."""
    out = columns[0] * weights[0]
    for column, weight in zip(columns[1:], weights[1:]):
        out = out + column * weight
    return out


def voxel_levels(xp, depth, p: dict):
    """Per cell, its voxel level ``(M,)`` (float, whole numbers in ``[0, LEVELS)``) and edge
    ``(M,)`` metres: the largest ``voxel_size * 2**level`` within ``voxel_per_footprint`` of the
    cell's footprint ``depth * cell_angle`` (coarser than the last level: the last)."""
    footprint = depth * p["cell_angle"]
    scale = xp.maximum(footprint * p["voxel_per_footprint"] / p["voxel_size"], 1.0)
    level = xp.minimum(xp.floor(xp.log(scale) * (1.0 / np.log(2.0))), float(L.LEVELS - 1))
    return level, p["voxel_size"] * xp.exp(level * float(np.log(2.0)))


def unpack_params(xp, params) -> dict:
    """``params (len(layout.UPDATE_PARAMS),)`` as a dict of ``(1,)`` tensors by name."""
    return dict(zip(L.UPDATE_PARAMS, xp.split(params, len(L.UPDATE_PARAMS), 0)))


def lift(xp, depth, dynamic, latent, rays, T_world_cam, p: dict, stride: int):
    """One point per latent cell, in the world frame (arguments as :func:`update`, ``p`` from
    :func:`unpack_params`). A cell without a reading is placed at ``p["hole_depth"]``.

    Returns:
        ``p_world (M, 3)`` (finite), ``cells (M, C)`` their latents, ``candidate (M,) bool`` (a
        reading, a finite latent, not dynamic: what the memory may store), ``in_frame (M,) bool``
        (the candidates and, with a hole depth > 0, the static cells without a reading: the frame's
        own points) and the cells' ``depth (M,)``; ``M = h * w`` in row-major cell order.
    """
    depth, has_depth, dynamic_fraction = pool_cells(xp, depth, dynamic, stride, p)
    depth = xp.where(has_depth, depth, p["hole_depth"])
    cells = xp.transpose(xp.reshape(latent, [0, -1]), [1, 0])  # (M, C)
    finite_latent = ~xp.isnan(xp.reduce("sum", cells * 0.0, [1], keepdims=False))
    rays = xp.reshape(rays, [2, -1])
    # R p_cam + t as broadcast multiply-adds over the columns of T_world_cam: a (M, 3) x (3, 3)
    # MatMul is one of the slowest kernels of this graph on CUDA (cuBLAS at K = 3)
    columns_T = xp.transpose(T_world_cam, [1, 0])  # row j = column j of T_world_cam
    axis = [xp.slice(xp.gather(columns_T, j, 0), 0, 3, 0) for j in range(4)]
    p_world = ((xp.col(xp.gather(rays, 0, 0) * depth) * axis[0] + xp.col(xp.gather(rays, 1, 0) * depth) * axis[1])
               + (xp.col(depth) * axis[2] + axis[3]))
    static = finite_latent & (dynamic_fraction <= p["dynamic_max_fraction"])
    candidate = has_depth & static
    in_frame = static & (has_depth | (p["hole_depth"] > 0.0))
    return p_world, cells, candidate, in_frame, depth


def frame_points(xp, p_world, cells, in_frame) -> dict:
    """The frame's cells as a read-out point set (``layout.FRAME_POINT_NAMES``): ``positions (M, 3)``
    (NaN where not ``in_frame``), ``latents (M, C) float16``, ``counts (M,) int32`` (1 where a point).
    No voxel keys and no fusion: every cell keeps its own point (the newest-frame overlay)."""
    keep = xp.col(in_frame)
    return {"positions": xp.where(keep, p_world, np.nan),
            "latents": xp.cast(xp.clip(xp.where(keep, cells, 0.0), -65504.0, 65504.0), xp.float16),
            "counts": xp.cast(in_frame, xp.int32)}


def update(xp, depth, dynamic, latent, rays, T_world_cam, params, state: dict, stride: int) -> dict:
    """One memory update.

    Args:
        xp: the backend (:class:`~mirage_ros.memory_maths.torch_ops.TorchOps` or ``onnx_ops.OnnxOps``).
        depth: ``(H, W) float32`` metres (NaN / out of range = no reading), ``H = s * h``.
        dynamic: ``(H, W) bool`` pixels of moving objects (kept out).
        latent: ``(C, h, w) float32`` the frame's latents (a NaN cell is skipped).
        rays: ``(2, h, w) float32`` ``(x / z, y / z)`` of each cell centre's ray (``latent_rays``).
        T_world_cam: ``(4, 4) float32`` camera (optical frame) pose in the world frame.
        params: ``(len(layout.UPDATE_PARAMS),) float32`` in that order.
        state: the ``layout.STATE_NAMES`` tensors.

    Returns:
        The new state, by the same names, and the frame's own points (:func:`frame_points`) as
        ``frame_{name}``.
    """
    p = unpack_params(xp, params)
    p_world, cells, candidate, in_frame, depth = lift(xp, depth, dynamic, latent, rays, T_world_cam, p, stride)
    frame = frame_points(xp, p_world, cells, in_frame)
    level, edge = voxel_levels(xp, depth, p)
    voxel_f = xp.floor(p_world / xp.col(edge))
    in_range = xp.cast(xp.all_of(voxel_f >= float(-L.KEY_OFFSET), voxel_f < float(L.KEY_OFFSET)), xp.float32)
    valid = xp.all_of(candidate, xp.reduce("min", in_range, [1], keepdims=False) > 0.5)
    # p_world is finite (no-reading cells sit at the hole depth), so masking is a multiply
    p_world = p_world * xp.col(xp.cast(valid, xp.float32))
    cells = xp.where(xp.col(valid), cells, 0.0)
    voxel = xp.cast(xp.where(xp.col(valid), voxel_f, 0.0), xp.int64) + L.KEY_OFFSET
    columns = [xp.cast(xp.where(valid, level, 0.0), xp.int64)] + [xp.flat(c) for c in xp.split(voxel, 3, 1)]
    key = _dot(columns, L.KEY_WEIGHTS)

    # --- table geometry, derived on the device -----------------------------------------------
    keys = state["keys"]
    n_buckets = xp.cast(p["n_buckets"], xp.int64)
    trash = n_buckets * L.WAYS  # S - 1: the last row
    running = xp.cumsum(xp.cast(key == key, xp.int64), 0)
    cell_id = running - 1
    n_cells = xp.gather(running, xp.const([-1], xp.int64))  # (1,)
    ways = xp.const(np.arange(L.WAYS)[None, :], xp.int64)
    candidates = xp.col(xp.mod(_dot(columns, L.BUCKET_PRIMES), n_buckets)) * L.WAYS + ways  # (M, WAYS)
    start_way = xp.col(xp.mod(_dot(columns, L.WAY_PRIMES), L.WAYS))
    preference = xp.cast(xp.mod((ways - start_way) + L.WAYS, L.WAYS), xp.float32)
    empty_score = (2.0 / 3.0 * BIG) * (1.0 - preference / (2.0 * L.WAYS))
    lru_score = -xp.gather(state["last_seen"], candidates)
    zeros_slots = keys * 0
    key_col = xp.col(key)

    # --- slot choice: match > empty (rotated) > least recently seen; conflicts by priority -----
    keys_now, claimed, active = keys, None, valid
    slot = cell_id * 0 + trash
    # conflict priority: matches first, then the larger cell id; 0 = not competing
    priority_new = cell_id + 1
    priority_match = priority_new + n_cells
    for round_ in range(L.ROUNDS):
        cand_keys = xp.gather(keys_now, candidates)
        free = xp.where(cand_keys < 0, empty_score, lru_score)
        if claimed is not None:  # slots taken by another voxel in an earlier round are off limits
            free = xp.where(xp.gather(claimed, candidates) > 0, -BIG, free)
        score = xp.where(cand_keys == key_col, BIG, free)
        way = xp.first_argmax(score, L.WAYS)
        chosen_score = xp.flat(xp.gather_elements(score, way, 1))
        chosen_slot = xp.flat(xp.gather_elements(candidates, way, 1))
        is_match = chosen_score > 2.5e30
        ok = xp.all_of(active, chosen_score > -0.5 * BIG)
        priority = xp.where(ok, xp.where(is_match, priority_match, priority_new), 0)
        # priority 0 (not ok) is the identity of max over zeros: such cells may scatter into their
        # own candidate slot instead of all piling atomics onto the trash row
        best = xp.scatter(zeros_slots, chosen_slot, priority, reduction="max")
        winner = xp.mod(xp.gather(best, chosen_slot) - 1, n_cells)  # -1 -> any cell
        accepted = xp.all_of(ok, xp.gather(key, winner) == key)
        write_to = xp.where(accepted, chosen_slot, trash)
        keys_now = xp.scatter(keys_now, write_to, xp.where(accepted, key, -1))
        if round_ < L.ROUNDS - 1:
            claimed = xp.scatter(zeros_slots if claimed is None else claimed, write_to,
                                 xp.cast(accepted, xp.int64))
        slot = xp.where(accepted, chosen_slot, slot)
        active = xp.all_of(active, ~accepted)

    # --- fuse: weighted running average of the group of cells that share a slot ---------------
    fused = valid & ~active
    old_key = xp.gather(keys, slot)
    revisit = fused & (old_key == key)
    created = fused & (old_key < 0)
    evicted = xp.all_of(fused, ~revisit, ~created)
    rep = xp.gather(xp.scatter(zeros_slots, slot, priority_new, reduction="max"), slot) - 1
    is_rep = rep == cell_id
    weight = xp.cast(fused, xp.float32)

    # one scatter-add sums weight, position and latent of each slot's group: (M, 1 + 3 + C)
    w_col = xp.col(weight)
    weighted = xp.concat([w_col, p_world, cells], 1) * w_col
    rep_k = xp.col(rep) + xp.cast(weighted * 0.0, xp.int64)
    group = xp.gather(xp.scatter(weighted * 0.0, rep_k, weighted, reduction="add"), rep)
    sum_w = xp.flat(xp.slice(group, 0, 1, 1))
    old_w = xp.where(revisit, xp.gather(state["weights"], slot), 0.0)
    total_w = xp.col(xp.maximum(old_w + sum_w, 1e-12))
    # running mean (old_w * old + sum(w * new)) / (old_w + sum(w)) of position and latent together
    old = xp.concat([xp.gather(state["positions"], slot), xp.cast(xp.gather(state["latents"], slot), xp.float32)], 1)
    kept = xp.where(xp.col(revisit), xp.col(old_w) * old, 0.0)
    mean = (kept + xp.slice(group, 1, 1 << 30, 1)) / total_w
    new_pos = xp.where(xp.col(fused), xp.slice(mean, 0, 3, 1), np.nan)  # the trash slot stays NaN = empty
    new_lat = xp.cast(xp.clip(xp.slice(mean, 3, 1 << 30, 1), -65504.0, 65504.0), xp.float16)
    new_w = xp.minimum(xp.flat(total_w), p["max_weight"])
    old_n = xp.where(revisit, xp.gather(state["counts"], slot), xp.const(0, xp.int32))
    new_n = old_n + xp.cast(sum_w, xp.int32)
    slot3 = xp.col(slot) + xp.cast(p_world * 0.0, xp.int64)
    slot_c = xp.col(slot) + xp.cast(cells * 0.0, xp.int64)
    new_points = is_rep & created
    masks = [valid, fused, revisit, new_points, is_rep & evicted, valid & active, new_points]
    counts = xp.reduce("sum", xp.cast(xp.concat([xp.col(m) for m in masks], 1), xp.int64), [0], keepdims=False)
    return {
        "positions": xp.scatter(state["positions"], slot3, new_pos),
        "latents": xp.scatter(state["latents"], slot_c, new_lat),
        "weights": xp.scatter(state["weights"], slot, new_w),
        "last_seen": xp.scatter(state["last_seen"], slot, weight * 0.0 + p["stamp"]),
        "counts": xp.scatter(state["counts"], slot, new_n),
        "keys": keys_now,
        "stats": state["stats"] + xp.concat([xp.const([1], xp.int64), counts], 0),  # STAT_NAMES order
        **{f"frame_{name}": value for name, value in frame.items()},
    }


STATE_SHAPES = {
    "positions": ("float32", ["S", 3]),
    "latents": ("float16", ["S", "C"]),
    "weights": ("float32", ["S"]),
    "last_seen": ("float32", ["S"]),
    "counts": ("int32", ["S"]),
    "keys": ("int64", ["S"]),
    "stats": ("int64", [L.N_STATS]),
}


def state_inputs(xp: OnnxOps, names) -> dict:
    """Graph inputs for the state tensors ``names``."""
    return {n: xp.input(n, STATE_SHAPES[n][0], STATE_SHAPES[n][1]) for n in names}


def graph(stride: int):
    """The update graph for latent ``stride``: inputs ``depth, dynamic, latent, rays, T_world_cam,
    params`` and the state, outputs ``{name}_out`` for each state tensor and ``frame_{name}`` for
    the frame's points (``layout.FRAME_POINT_NAMES``)."""
    xp = OnnxOps()
    args = [xp.input("depth", "float32", ["H", "W"]), xp.input("dynamic", bool, ["H", "W"]),
            xp.input("latent", "float32", ["C", "h", "w"]), xp.input("rays", "float32", [2, "h", "w"]),
            xp.input("T_world_cam", "float32", [4, 4]), xp.input("params", "float32", [len(L.UPDATE_PARAMS)])]
    new = update(xp, *args, state_inputs(xp, L.STATE_NAMES), stride)
    for name in L.STATE_NAMES:
        xp.output(new[name], f"{name}_out", STATE_SHAPES[name][1])
    for name in L.FRAME_POINT_NAMES:
        xp.output(new[f"frame_{name}"], f"frame_{name}", ["M"] + STATE_SHAPES[name][1][1:])
    return xp.model(f"mirage_memory_update_s{stride}", "Update graph: pool depth, lift cells, key them by voxel, "
                    "fuse into the hash table (mirage_ros.memory_maths.update).")
