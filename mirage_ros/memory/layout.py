"""The memory's tensor layout and voxel hashing constants, shared by the maths (``memory_maths``,
which records the ONNX graphs) and the host code (one source of truth; no onnx or torch import here).

State (``S = capacity + 1`` rows; the last row is a trash slot that absorbs the writes of skipped
cells so every scatter has a static shape; it always keeps key ``-1``):

=============  ============  =========================================================
name           shape/dtype   meaning
=============  ============  =========================================================
positions      (S, 3) f32    fused point position, world frame, metres; NaN = empty
latents        (S, C) f16    fused latent vector
weights        (S,) f32      confidence: number of fused observations, capped at max_weight
last_seen      (S,) f32      stamp of the last observation, seconds since the memory epoch
counts         (S,) i32      observations fused since the slot was (re)claimed (not capped)
keys           (S,) i64      packed voxel key, -1 = empty slot
stats          (8,) i64      running counters, see STAT_NAMES
=============  ============  =========================================================

Slots form a set-associative hash table: voxel ``(ix, iy, iz)`` may live only in the ``WAYS`` slots
of bucket ``hash(ix, iy, iz) mod (capacity / WAYS)``.
"""

from __future__ import annotations

import numpy as np

from mirage_ros.graphs import STRIDES  # noqa: F401  (the latent strides the memory supports)

STATE_NAMES = ("positions", "latents", "weights", "last_seen", "counts", "keys", "stats")
STAT_NAMES = (
    "frames",  # update calls
    "cells_offered",  # cells with valid depth, not dynamic, finite latent, inside the key range
    "cells_fused",  # offered cells written into the memory (new or existing voxel)
    "cells_revisited",  # ... of which into a voxel that already existed before this frame
    "points_created",  # voxels written into an empty slot
    "evictions",  # voxels written over a live voxel (its bucket was full)
    "cells_dropped",  # offered cells lost to bucket conflicts within one frame
    "points_live",  # live voxels (slots with key >= 0)
)
N_STATS = len(STAT_NAMES)

WAYS = 8  # slots per hash bucket
ROUNDS = 2

# Voxel levels: a cell's voxel edge is voxel_size * 2**level, the largest such edge within
# voxel_per_footprint of the cell's footprint (stride * depth / f), so one frame's cells land in
# voxels of their own at every range. Keys pack (level, ix, iy, iz), each index offset to >= 0.
LEVEL_BITS = 3
LEVELS = 1 << LEVEL_BITS  # edges voxel_size .. voxel_size * 128
KEY_BITS = 20  # per axis: voxel indices in [-2**19, 2**19): +-1 km at 2 mm voxels
KEY_OFFSET = 1 << (KEY_BITS - 1)
KEY_WEIGHTS = (1 << (3 * KEY_BITS), 1 << (2 * KEY_BITS), 1 << KEY_BITS, 1)  # level, ix, iy, iz
BUCKET_PRIMES = (50331653, 73856093, 19349663, 83492791)  # Teschner et al. spatial hash, additive form
WAY_PRIMES = (20011, 40503, 30011, 10007)  # start way of a voxel inside its bucket

# update params vector (float32), in this order
UPDATE_PARAMS = (
    "stamp",
    "voxel_size",  # the finest voxel edge, metres (level 0)
    "voxel_per_footprint",  # voxel edge / cell footprint, at most; 0 = every voxel voxel_size
    "cell_angle",  # footprint per metre of depth of a latent cell: 1 / f of the latent grid
    "min_depth",
    "max_depth",
    "rel_gap",
    "min_fraction",
    "dynamic_max_fraction",
    "max_weight",
    "n_buckets",  # capacity / WAYS; float32 is exact below 2**24 buckets (134M points)
    "hole_depth",  # frame points: depth given to cells without a reading, metres (0 = none)
)
# the update's second output: the frame's own cells as a read-out point set (one row per cell,
# NaN position where none), for the newest-frame overlay; names of the read-out's inputs
FRAME_POINT_NAMES = ("positions", "latents", "counts")
# read-out grid vector (float32): latent grid size, near plane (metres) and the fewest fused
# observations a point needs to be drawn (``counts``; 0 or 1 = every point)
READOUT_GRID = ("width", "height", "near", "min_count")
TRASH_CELLS = 1024  # read-out: spare z-buffer cells for points off the grid (spreads GPU atomics)


def readout_grid(width: int, height: int, near: float, min_count: int = 0) -> np.ndarray:
    """The read-out graph's ``grid`` input, ``(len(READOUT_GRID),) float32`` in its order."""
    values = {"width": width, "height": height, "near": near, "min_count": min_count}
    return np.array([values[name] for name in READOUT_GRID], np.float32)


def readout_ids(n_points: int) -> dict[str, np.ndarray]:
    """Constant index inputs of the read-out graph for ``n_points`` stored points: ``slot_ids``
    ``(N,)`` = 0..N-1 and ``spill_ids`` ``(N,)`` = slot mod TRASH_CELLS (the spare cell a point
    that misses the grid is sent to)."""
    slot_ids = np.arange(n_points, dtype=np.int64)
    return {"slot_ids": slot_ids, "spill_ids": slot_ids % TRASH_CELLS}
FAR_SENTINEL = 1.0e10  # "no reading" depth inside the pooling (finite so differences stay finite)


def projection_matrix(K_latent, T_cam_world: np.ndarray) -> np.ndarray:
    """``(3, 4) float32`` ``P`` with ``P @ [p_world, 1] = (u' z, v' z, z)`` where ``(u', v')`` are
    latent-grid coordinates shifted by +0.5, so ``floor(u' z / z)`` is the cell column (nearest
    cell centre). ``K_latent``: ``geometry.Intrinsics`` of the latent grid."""
    shift = np.array([[K_latent.fx, 0.0, K_latent.cx + 0.5], [0.0, K_latent.fy, K_latent.cy + 0.5],
                      [0.0, 0.0, 1.0]])
    return (shift @ np.asarray(T_cam_world, np.float64)[:3, :]).astype(np.float32)


def empty_state(capacity: int, channels: int) -> dict[str, np.ndarray]:
    """Host arrays of an empty memory with ``capacity`` slots (a multiple of WAYS) + trash row."""
    slots = capacity + 1
    return {
        "positions": np.full((slots, 3), np.nan, np.float32),
        "latents": np.zeros((slots, channels), np.float16),
        "weights": np.zeros(slots, np.float32),
        "last_seen": np.zeros(slots, np.float32),
        "counts": np.zeros(slots, np.int32),
        "keys": np.full(slots, -1, np.int64),
        "stats": np.zeros(N_STATS, np.int64),
    }


# --- free-space carving (graph: carve.py): what the host and the graph agree on -------------
# carve params vector (float32), in this order
CARVE_PARAMS = (
    "width",  # latent grid width w (cells)
    "height",  # latent grid height h
    "near",  # points nearer to the camera than this are not tested (metres)
    "min_depth",  # live readings outside (min_depth, max_depth) are no reading
    "max_depth",
    "margin",  # seen through when live depth > z + margin + rel_margin * z
    "rel_margin",
    "min_valid_fraction",  # a cell needs this share of pixels with a reading
    "decrement",  # weight lost per test a point is seen through
)
CARVE_STAT_NAMES = (
    "carve_frames",  # carve runs
    "points_seen_through",  # point-frames whose weight was decreased
    "points_carved",  # points removed (weight ran out)
)
SLICES = 4  # each frame tests every SLICES-th slot, in turn: a point is tested every 4th frame
NEIGHBOURHOOD = 3  # cells: a point carves only if its whole 3 x 3 cell neighbourhood is farther
CARVE_STATE = ("positions", "weights", "keys", "stats")


def slot_shares(slots: int) -> list[np.ndarray]:
    """The ``SLICES`` constant ``slot_ids`` inputs for a memory of ``slots`` slots (a multiple of
    ``SLICES``): share ``k`` = ``(slots / SLICES,) int64`` slots ``k, k + SLICES, ...``. Frames
    take them in turn; ``trash_id`` is ``[slots]``, the trash row."""
    return [np.arange(k, slots, SLICES, dtype=np.int64) for k in range(SLICES)]
