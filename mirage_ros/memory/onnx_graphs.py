"""Builds the memory's ONNX graphs (update per stride, read-out) with the ``onnx`` helper API.

Run ``python -m mirage_ros.memory.onnx_graphs`` to (re)write ``mirage_ros/memory/graphs/*.onnx``;
the package ships those files, so ``onnx`` is needed only here (build time and tests), never at
runtime. Shapes are symbolic (``S`` slots, ``C`` channels, ``H x W`` image, ``h x w`` latent grid)
and no graph uses Shape->Range: every index tensor is derived on the device (CumSum of ones), so
all nodes stay on the CUDA provider and runs can be captured as CUDA graphs.

The maths (see ``layout.py`` for the state) is mirrored line by line in ``torch_reference.py``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import onnx

from mirage_ros.memory import layout as L
from mirage_ros.memory.graph_builder import BOOL, F16, F32, I32, I64, STATE_TYPES, GraphBuilder, split_scalars, value_info

BIG = 3.0e30  # score of a matching slot; +-BIG bracket the other scores


def _pool_cells(b: GraphBuilder, stride: int, p: dict[str, str]):
    """Edge-aware depth per latent cell (geometry.pool_depth) and the dynamic fraction, (M,) each."""
    s2 = stride * stride

    def blocks(image):  # (H, W) -> (M, s*s), M = h*w in row-major cell order
        spread = b.op("SpaceToDepth", b.op("Unsqueeze", image, b.i([0, 1])), blocksize=stride)
        return b.op("Transpose", b.op("Reshape", spread, b.i([s2, -1])), perm=[1, 0])

    depth = blocks("depth")
    dynamic = blocks(b.op("Cast", "dynamic", to=F32))
    dynamic_fraction = b.op("ReduceMean", dynamic, b.i([1]), keepdims=0)
    reading = b.and_(
        b.op("Greater", depth, p["min_depth"]),
        b.op("Less", depth, p["max_depth"]),
        b.op("Less", dynamic, b.f(0.5)),
    )
    masked = b.where(reading, depth, b.f(L.FAR_SENTINEL))
    ordered, _ = b.op("TopK", masked, b.i([s2]), n_out=2, axis=1, largest=0, sorted=1)  # no-readings last
    lower = b.op("Slice", ordered, b.i([0]), b.i([s2 - 1]), b.i([1]))
    upper = b.op("Slice", ordered, b.i([1]), b.i([s2]), b.i([1]))
    jump = b.op("Greater", b.op("Sub", upper, lower), b.op("Mul", lower, p["rel_gap"]))
    is_reading = b.op("Cast", b.op("Less", ordered, b.f(0.5 * L.FAR_SENTINEL)), to=I64)
    first_col = b.op("Slice", is_reading, b.i([0]), b.i([1]), b.i([1]))
    cluster = b.op(
        "Concat",
        b.op("Mul", first_col, b.i(0)),
        b.op("CumSum", b.op("Cast", jump, to=I64), b.i(1)),
        axis=1,
    )
    sizes = b.op("ScatterElements", b.op("Mul", is_reading, b.i(0)), cluster, is_reading,
                 axis=1, reduction="add")
    n_valid = b.op("ReduceSum", is_reading, b.i([1]), keepdims=1)
    need = b.op("Max", b.op("Mul", b.op("Cast", n_valid, to=F32), p["min_fraction"]), b.f(1.0))
    supported = b.op("Cast", b.op("GreaterOrEqual", b.op("Cast", sizes, to=F32), need), to=F32)
    # nearest supported cluster: weights s2..1 make the first supported column the unique maximum
    # (ArgMax ties are provider-dependent; all-zero rows are cells without depth, dropped later)
    chosen = b.op("ArgMax", b.op("Mul", supported, b.f(np.arange(s2, 0, -1)[None, :])), axis=1, keepdims=1)
    first = b.op("GatherElements", b.op("CumSum", sizes, b.i(1), exclusive=1), chosen, axis=1)
    size = b.op("Max", b.op("GatherElements", sizes, chosen, axis=1), b.i(1))
    lo = b.op("Add", first, b.op("Div", b.op("Sub", size, b.i(1)), b.i(2)))
    hi = b.op("Add", first, b.op("Div", size, b.i(2)))
    median = b.op("Mul", b.op("Add", b.op("GatherElements", ordered, lo, axis=1),
                               b.op("GatherElements", ordered, hi, axis=1)), b.f(0.5))
    has_depth = b.flat(b.op("Greater", n_valid, b.i(0)))
    return b.flat(median), has_depth, dynamic_fraction


def _dot(b: GraphBuilder, columns, weights):  # sum_i column_i * weight_i, exact int64 (no ReduceSum:
    parts = [b.op("Mul", c, b.i(w)) for c, w in zip(columns, weights)]  # ORT's loses low bits)
    return b.op("Add", b.op("Add", parts[0], parts[1]), parts[2])


def _hash(b: GraphBuilder, columns, primes, modulus):
    return b.imod(_dot(b, columns, primes), modulus)


def build_update(stride: int) -> onnx.ModelProto:
    """Update graph: pool depth, lift cells, key them by voxel, fuse into the hash table."""
    b = GraphBuilder()
    p = split_scalars(b, "params", L.UPDATE_PARAMS)

    # --- lift: one candidate point per latent cell, in the world frame -------------------------
    depth, has_depth, dynamic_fraction = _pool_cells(b, stride, p)
    cells = b.op("Transpose", b.op("Reshape", "latent", b.i([0, -1])), perm=[1, 0])  # (M, C)
    finite_latent = b.op("Not", b.op("IsNaN", b.op("ReduceSum", b.op("Mul", cells, b.f(0.0)),
                                                   b.i([1]), keepdims=0)))
    rays = b.op("Reshape", "rays", b.i([2, -1]))
    # R p_cam + t as broadcast multiply-adds over the columns of T_world_cam: a (M, 3) x (3, 3)
    # MatMul is one of the slowest kernels of this graph on CUDA (cuBLAS at K = 3)
    columns_T = b.op("Transpose", "T_world_cam", perm=[1, 0])  # row j = column j of T_world_cam
    axis = [b.op("Slice", b.take(columns_T, j, 0), b.i([0]), b.i([3]), b.i([0])) for j in range(4)]
    p_world = b.op("Add", b.op("Add", b.op("Mul", b.col(b.op("Mul", b.take(rays, 0, 0), depth)), axis[0]),
                                      b.op("Mul", b.col(b.op("Mul", b.take(rays, 1, 0), depth)), axis[1])),
                   b.op("Add", b.op("Mul", b.col(depth), axis[2]), axis[3]))
    candidate = b.and_(has_depth, finite_latent,
                       b.op("LessOrEqual", dynamic_fraction, p["dynamic_max_fraction"]))
    voxel_f = b.op("Floor", b.op("Div", p_world, p["voxel_size"]))
    in_range = b.op("Cast", b.and_(b.op("GreaterOrEqual", voxel_f, b.f(-L.KEY_OFFSET)),
                                   b.op("Less", voxel_f, b.f(L.KEY_OFFSET))), to=F32)
    valid = b.and_(candidate, b.op("Greater", b.op("ReduceMin", in_range, b.i([1]), keepdims=0),
                                   b.f(0.5)))
    # p_world is finite (no-reading cells pool to a finite sentinel), so masking is a multiply
    p_world = b.op("Mul", p_world, b.col(b.op("Cast", valid, to=F32)))
    cells = b.where(b.col(valid), cells, b.f(0.0))
    voxel = b.op("Add", b.op("Cast", b.where(b.col(valid), voxel_f, b.f(0.0)), to=I64), b.i(L.KEY_OFFSET))
    columns = [b.flat(c) for c in b.op("Split", voxel, n_out=3, axis=1, num_outputs=3)]
    key = _dot(b, columns, (1 << (2 * L.KEY_BITS), 1 << L.KEY_BITS, 1))

    # --- table geometry, derived on the device -----------------------------------------------
    n_buckets = b.op("Cast", p["n_buckets"], to=I64)
    trash = b.op("Mul", n_buckets, b.i(L.WAYS))  # S - 1: the last row
    ones = b.op("Cast", b.op("Equal", key, key), to=I64)
    running = b.op("CumSum", ones, b.i(0))
    cell_id = b.op("Sub", running, b.i(1))
    n_cells = b.op("Gather", running, b.i([-1]))  # (1,)
    ways = b.i(np.arange(L.WAYS)[None, :])
    candidates = b.op("Add", b.op("Mul", b.col(_hash(b, columns, L.BUCKET_PRIMES, n_buckets)),
                                  b.i(L.WAYS)), ways)  # (M, WAYS) slot ids
    start_way = b.col(_hash(b, columns, L.WAY_PRIMES, b.i(L.WAYS)))
    preference = b.op("Cast", b.imod(b.op("Add", b.op("Sub", ways, start_way), b.i(L.WAYS)),
                                     b.i(L.WAYS)), to=F32)
    empty_score = b.op("Mul", b.f(2.0 / 3.0 * BIG),
                       b.op("Sub", b.f(1.0), b.op("Div", preference, b.f(2.0 * L.WAYS))))
    lru_score = b.op("Neg", b.op("Gather", "last_seen", candidates))
    zeros_slots = b.op("Mul", "keys", b.i(0))
    key_col = b.col(key)

    # --- slot choice: match > empty (rotated) > least recently seen; conflicts by priority -----
    keys_now, claimed, active = "keys", None, valid
    slot = b.op("Add", b.op("Mul", cell_id, b.i(0)), trash)
    # conflict priority: matches first, then the larger cell id; 0 = not competing
    priority_new = b.op("Add", cell_id, b.i(1))
    priority_match = b.op("Add", priority_new, n_cells)
    for round_ in range(L.ROUNDS):
        cand_keys = b.op("Gather", keys_now, candidates)
        free = b.where(b.op("Less", cand_keys, b.i(0)), empty_score, lru_score)
        if claimed is not None:  # slots taken by another voxel in an earlier round are off limits
            free = b.where(b.op("Greater", b.op("Gather", claimed, candidates), b.i(0)), b.f(-BIG), free)
        score = b.where(b.op("Equal", cand_keys, key_col), b.f(BIG), free)
        way = b.first_argmax(score, L.WAYS)
        chosen_score = b.flat(b.op("GatherElements", score, way, axis=1))
        chosen_slot = b.flat(b.op("GatherElements", candidates, way, axis=1))
        is_match = b.op("Greater", chosen_score, b.f(2.5e30))
        ok = b.and_(active, b.op("Greater", chosen_score, b.f(-0.5 * BIG)))
        priority = b.where(ok, b.where(is_match, priority_match, priority_new), b.i(0))
        # priority 0 (not ok) is the identity of max over zeros: such cells may scatter into their
        # own candidate slot instead of all piling atomics onto the trash row
        best = b.op("ScatterElements", zeros_slots, chosen_slot, priority, axis=0, reduction="max")
        winner = b.imod(b.op("Sub", b.op("Gather", best, chosen_slot), b.i(1)), n_cells)  # -1 -> any cell
        accepted = b.and_(ok, b.op("Equal", b.op("Gather", key, winner), key))
        write_to = b.where(accepted, chosen_slot, trash)
        keys_now = b.op("ScatterElements", keys_now, write_to, b.where(accepted, key, b.i(-1)), axis=0)
        if round_ < L.ROUNDS - 1:
            claimed = b.op("ScatterElements", zeros_slots if claimed is None else claimed, write_to,
                           b.op("Cast", accepted, to=I64), axis=0)
        slot = b.where(accepted, chosen_slot, slot)
        active = b.and_(active, b.op("Not", accepted))
    b.op("Identity", keys_now, out="keys_out")

    # --- fuse: weighted running average of the group of cells that share a slot ---------------
    fused = b.and_(valid, b.op("Not", active))
    old_key = b.op("Gather", "keys", slot)
    revisit = b.and_(fused, b.op("Equal", old_key, key))
    created = b.and_(fused, b.op("Less", old_key, b.i(0)))
    evicted = b.and_(fused, b.op("Not", revisit), b.op("Not", created))
    rep = b.op("Sub", b.op("Gather", b.op("ScatterElements", zeros_slots, slot, priority_new,
                                          axis=0, reduction="max"), slot), b.i(1))
    is_rep = b.op("Equal", rep, cell_id)
    weight = b.op("Cast", fused, to=F32)

    # one scatter-add sums weight, position and latent of each slot's group: (M, 1 + 3 + C)
    w_col = b.col(weight)
    weighted = b.op("Mul", b.op("Concat", w_col, p_world, cells, axis=1), w_col)
    rep_k = b.op("Add", b.col(rep), b.op("Cast", b.op("Mul", weighted, b.f(0.0)), to=I64))
    total = b.op("ScatterElements", b.op("Mul", weighted, b.f(0.0)), rep_k, weighted, axis=0, reduction="add")
    group = b.op("Gather", total, rep, axis=0)
    sum_w = b.flat(b.op("Slice", group, b.i([0]), b.i([1]), b.i([1])))
    old_w = b.where(revisit, b.op("Gather", "weights", slot), b.f(0.0))
    total_w = b.col(b.op("Max", b.op("Add", old_w, sum_w), b.f(1e-12)))
    # running mean (old_w * old + sum(w * new)) / (old_w + sum(w)) of position and latent together
    old = b.op("Concat", b.op("Gather", "positions", slot, axis=0),
               b.op("Cast", b.op("Gather", "latents", slot, axis=0), to=F32), axis=1)
    kept = b.where(b.col(revisit), b.op("Mul", b.col(old_w), old), b.f(0.0))
    mean = b.op("Div", b.op("Add", kept, b.op("Slice", group, b.i([1]), b.i([1 << 30]), b.i([1]))), total_w)
    new_pos = b.op("Slice", mean, b.i([0]), b.i([3]), b.i([1]))
    new_pos = b.where(b.col(fused), new_pos, b.f(np.nan))  # the trash slot stays NaN = empty
    new_lat = b.op("Cast", b.op("Clip", b.op("Slice", mean, b.i([3]), b.i([1 << 30]), b.i([1])),
                                b.f(-65504.0), b.f(65504.0)), to=F16)
    new_w = b.op("Min", b.flat(total_w), p["max_weight"])
    old_n = b.where(revisit, b.op("Gather", "counts", slot), b.const(0, np.int32))
    new_n = b.op("Add", old_n, b.op("Cast", sum_w, to=I32))
    slot3 = b.op("Add", b.col(slot), b.op("Cast", b.op("Mul", p_world, b.f(0.0)), to=I64))
    slot_c = b.op("Add", b.col(slot), b.op("Cast", b.op("Mul", cells, b.f(0.0)), to=I64))
    b.op("ScatterElements", "positions", slot3, new_pos, axis=0, out="positions_out")
    b.op("ScatterElements", "latents", slot_c, new_lat, axis=0, out="latents_out")
    b.op("ScatterElements", "weights", slot, new_w, axis=0, out="weights_out")
    b.op("ScatterElements", "last_seen", slot, b.op("Add", b.op("Mul", weight, b.f(0.0)), p["stamp"]),
         axis=0, out="last_seen_out")
    b.op("ScatterElements", "counts", slot, new_n, axis=0, out="counts_out")
    new_points = b.and_(is_rep, created)
    masks = [valid, fused, revisit, new_points, b.and_(is_rep, evicted), b.and_(valid, active), new_points]
    counts = b.op("ReduceSum", b.op("Cast", b.op("Concat", *[b.col(m) for m in masks], axis=1), to=I64),
                  b.i([0]), keepdims=0)
    delta = b.op("Concat", b.i([1]), counts, axis=0)  # STAT_NAMES order; frames += 1
    b.op("Add", "stats", delta, out="stats_out")

    inputs = [
        value_info("depth", F32, ["H", "W"]),
        value_info("dynamic", BOOL, ["H", "W"]),
        value_info("latent", F32, ["C", "h", "w"]),
        value_info("rays", F32, [2, "h", "w"]),
        value_info("T_world_cam", F32, [4, 4]),
        value_info("params", F32, [len(L.UPDATE_PARAMS)]),
    ] + [value_info(n, *STATE_TYPES[n]) for n in L.STATE_NAMES]
    outputs = [value_info(f"{n}_out", *STATE_TYPES[n]) for n in L.STATE_NAMES]
    return b.model(f"mirage_memory_update_s{stride}", inputs, outputs, build_update.__doc__)


def build_readout() -> onnx.ModelProto:
    """Read-out graph: project stored points fused at least ``min_count`` times to the latent
    grid, z-buffer (min), gather winners."""
    b = GraphBuilder()
    grid = split_scalars(b, "grid", L.READOUT_GRID)
    matrix = b.op("Transpose", b.op("Slice", "projection", b.i([0]), b.i([3]), b.i([1])), perm=[1, 0])
    offset = b.op("Reshape", b.op("Slice", "projection", b.i([3]), b.i([4]), b.i([1])), b.i([1, 3]))
    uvz = b.op("Transpose", b.op("Add", b.op("MatMul", "positions", matrix), offset), perm=[1, 0])
    uz, vz, z = b.op("Split", uvz, n_out=3, axis=0, num_outputs=3)  # (1, S) each
    uz, vz, z = b.flat(uz), b.flat(vz), b.flat(z)  # (S,); empty slots are NaN and fail every test
    u_exact, v_exact = b.op("Div", uz, z), b.op("Div", vz, z)
    u, v = b.op("Floor", u_exact), b.op("Floor", v_exact)
    inside = b.and_(
        b.op("Greater", z, grid["near"]),
        b.op("GreaterOrEqual", u, b.f(0.0)), b.op("Less", u, grid["width"]),
        b.op("GreaterOrEqual", v, b.f(0.0)), b.op("Less", v, grid["height"]),
        b.op("GreaterOrEqual", b.op("Cast", "counts", to=F32), grid["min_count"]),
    )
    n_cells = b.op("Cast", b.op("Mul", grid["width"], grid["height"]), to=I64)
    # points that miss the grid go to one of TRASH_CELLS spare cells: one shared cell would make
    # every scatter below pile its atomics onto a single address on the GPU
    trash = b.op("Add", n_cells, "spill_ids")
    cell = b.where(inside, b.op("Cast", b.op("Add", b.op("Mul", v, grid["width"]), u), to=I64), trash)
    z_key = b.where(inside, z, b.f(np.inf))
    # the z-buffer starts at the far plane, so points beyond it can never win (no extra test)
    far = b.op("Concat", b.op("Reshape", "far", b.i([-1])), b.f(np.full(L.TRASH_CELLS, np.inf)), axis=0)
    zbuffer = b.op("ScatterElements", far, cell, z_key, axis=0, reduction="min")
    wins = b.op("Equal", z_key, b.op("Gather", zbuffer, cell, axis=0))
    point_id = b.op("Add", "slot_ids", b.i(1))
    no_hit = b.op("Cast", b.op("Less", far, b.f(-1.0)), to=I64)  # zeros (M + TRASH_CELLS,)
    winner = b.op("ScatterElements", no_hit, cell, b.where(wins, point_id, b.i(0)), axis=0, reduction="max")
    # (h, w) cell ids built from far's shape on the device: no Shape op, so no CPU node
    ones = b.op("Add", b.op("Cast", b.op("Less", "far", b.f(-1.0)), to=I64), b.i(1))
    row = b.op("Sub", b.op("CumSum", ones, b.i(0)), b.i(1))
    column = b.op("Sub", b.op("CumSum", ones, b.i(1)), b.i(1))
    cell_grid = b.op("Add", b.op("Mul", row, b.op("Cast", grid["width"], to=I64)), column)
    winner = b.op("Sub", b.op("Gather", winner, cell_grid, axis=0), b.i(1))  # (h, w)
    hit = b.op("GreaterOrEqual", winner, b.i(0), out="valid")
    winner_slot = b.op("Max", winner, b.i(0))
    latents = b.op("Cast", b.op("Gather", "latents", winner_slot, axis=0), to=F32)
    latents = b.where(b.op("Unsqueeze", hit, b.i([2])), latents, b.f(0.0))  # (h, w, C)
    b.op("Transpose", latents, perm=[2, 0, 1], out="latent")
    b.op("Where", hit, b.op("Gather", zbuffer, cell_grid, axis=0), b.f(0.0), out="depth")
    # where in its cell the winner lands, in cells from the cell centre: the renderer draws a
    # cell's content at the centre, so a view between cells is off by up to half a cell
    # (on the winners only: h * w cells, not every stored point)
    winners_exact = [b.op("Gather", exact, winner_slot, axis=0) for exact in (u_exact, v_exact)]
    offsets = [b.op("Unsqueeze", b.where(hit, b.op("Sub", b.op("Sub", e, b.op("Floor", e)), b.f(0.5)), b.f(0.0)),
                    b.i([0])) for e in winners_exact]
    b.op("Concat", *offsets, axis=0, out="offset")
    inputs = [
        value_info("positions", F32, ["S", 3]),
        value_info("latents", F16, ["S", "C"]),
        value_info("counts", I32, ["S"]),
        value_info("slot_ids", I64, ["S"]),
        value_info("spill_ids", I64, ["S"]),
        value_info("projection", F32, [3, 4]),
        value_info("grid", F32, [len(L.READOUT_GRID)]),
        value_info("far", F32, ["h", "w"]),
    ]
    outputs = [value_info("latent", F32, ["C", "h", "w"]), value_info("valid", BOOL, ["h", "w"]),
               value_info("depth", F32, ["h", "w"]), value_info("offset", F32, [2, "h", "w"])]
    return b.model("mirage_memory_readout", inputs, outputs, build_readout.__doc__)


def build_all() -> dict[str, onnx.ModelProto]:
    """Every shipped graph by file stem: ``update_s{stride}``, ``readout``, ``carve_s{stride}`` and
    ``subcell_shift``."""
    from mirage_ros.memory import carve, subcell  # they build on this module's helpers

    graphs = {f"update_s{s}": build_update(s) for s in L.STRIDES}
    graphs["readout"] = build_readout()
    return {**graphs, **carve.build_all(), **subcell.build_all()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write the memory's ONNX graphs into the package.")
    parser.add_argument("--out", type=Path, default=L.GRAPH_DIR, help="output folder (default: %(default)s)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, model in build_all().items():
        (args.out / f"{name}.onnx").write_bytes(model.SerializeToString(deterministic=True))
        print(f"wrote {args.out / name}.onnx ({len(model.graph.node)} nodes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
