"""The newest frame as points: each latent cell lifted into the world on its own (``update.lift``),
no voxel keys, no hash table, no fusion.

The world model overlays the newest frame's latents on the fused memory's read-out
(``views.overlay``); for that it needs the frame's cells read out at target cameras, which this
graph's point set gives the read-out graph directly (``h * w`` rows, cell ``i`` in row ``i``).
Cells without a reading can be placed at ``hole_depth`` first (a frame's far depth: they then warp
exactly under rotation; ``pipeline.fill_depth_holes`` says why).
"""

from __future__ import annotations

import numpy as np

from mirage_ros.memory import layout as L
from mirage_ros.memory_maths.onnx_ops import OnnxOps
from mirage_ros.memory_maths.update import lift, unpack_params


def frame_points(xp, depth, dynamic, latent, rays, T_world_cam, params, hole_depth, stride: int) -> dict:
    """One frame's cells as a read-out point set.

    Args:
        depth, dynamic, latent, rays, T_world_cam, params: as ``update.update``.
        hole_depth: ``(1,) float32`` metres given to pixels without a reading in
            ``(min_depth, max_depth)`` (0: none; they stay without a reading).

    Returns:
        ``positions (M, 3) float32`` world frame (NaN: the cell has no point), ``latents (M, C)
        float16`` and ``counts (M,) int32`` (1 where a point), ``M = h * w``.
    """
    p = unpack_params(xp, params)
    reading = xp.all_of(depth > p["min_depth"], depth < p["max_depth"])
    depth = xp.where(reading, depth, hole_depth)
    p_world, cells, candidate, _ = lift(xp, depth, dynamic, latent, rays, T_world_cam, p, stride)
    keep = xp.col(candidate)
    return {"positions": xp.where(keep, p_world, np.nan),
            "latents": xp.cast(xp.clip(xp.where(keep, cells, 0.0), -65504.0, 65504.0), xp.float16),
            "counts": xp.cast(candidate, xp.int32)}


def graph(stride: int):
    """The frame-points graph for latent ``stride``: inputs as :func:`frame_points`, outputs
    ``positions``, ``latents``, ``counts``."""
    xp = OnnxOps()
    args = [xp.input("depth", "float32", ["H", "W"]), xp.input("dynamic", bool, ["H", "W"]),
            xp.input("latent", "float32", ["C", "h", "w"]), xp.input("rays", "float32", [2, "h", "w"]),
            xp.input("T_world_cam", "float32", [4, 4]), xp.input("params", "float32", [len(L.UPDATE_PARAMS)]),
            xp.input("hole_depth", "float32", [1])]
    out = frame_points(xp, *args, stride)
    for name, shape in (("positions", ["M", 3]), ("latents", ["M", "C"]), ("counts", ["M"])):
        xp.output(out[name], name, shape)
    return xp.model(f"mirage_frame_points_s{stride}", "Frame points graph: pool depth, lift each latent cell into "
                    "the world, one point per cell (mirage_ros.memory_maths.frame_points).")

