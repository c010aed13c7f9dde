"""The read-out: project stored points onto a camera's latent grid, keep the nearest point per cell
(a z-buffer by scatter-min), gather the winners' latents.

The runtime graph (``readout.onnx``) and the training read-out (:func:`read_out_torch`, which the
renderer is trained through) are this one function on two backends.
"""

from __future__ import annotations

import numpy as np

from mirage_ros import geometry as g
from mirage_ros.memory import layout as L
from mirage_ros.memory_maths.onnx_ops import OnnxOps
from mirage_ros.memory_maths.torch_ops import TorchOps


def projected(xp, points, projection, batch_axes: int = 0):
    """``points (..., N, 3)`` world points through ``projection (B..., 3, 4)``
    (``layout.projection_matrix``, ``batch_axes`` leading axes, broadcast against the points')
    -> ``(..., N, 3)`` ``(u' z, v' z, z)``."""
    axes = list(range(batch_axes))
    matrix = xp.transpose(xp.slice(projection, 0, 3, batch_axes + 1), axes + [batch_axes + 1, batch_axes])
    shift = xp.transpose(xp.slice(projection, 3, 4, batch_axes + 1), axes + [batch_axes + 1, batch_axes])
    return xp.matmul(points, matrix) + shift


def read_out(xp, positions, latents, counts, slot_ids, spill_ids, projection, grid, far):
    """Nearest stored point per latent cell, for ``V`` views of one grid size at once.

    Args:
        positions: ``(S, 3) float32`` world frame (NaN = empty slot: fails every test).
        latents: ``(S, C)`` any float type.
        counts: ``(S,) int32`` fused observations; a point needs ``grid``'s ``min_count``.
        slot_ids, spill_ids: ``(S,) int64`` ``layout.readout_ids``.
        projection: ``(V, 3, 4) float32`` ``layout.projection_matrix`` of each view's latent grid.
        grid: ``(4,) float32`` ``layout.readout_grid``.
        far: ``(V, h, w) float32`` far plane per cell (inf: none); sets the grids' shape.

    Returns:
        ``latent (V, C, h, w) float32`` (0 where no point), ``valid (V, h, w) bool``, ``depth (V, h, w)``
        (z of the winner in the view's camera, 0 where none) and ``offset (V, 2, h, w)``: where in
        its cell the winner lands, in cells from the cell centre.
    """
    width, height, near, min_count = xp.split(grid, len(L.READOUT_GRID), 0)
    uz, vz, z = (xp.squeeze(c, [2]) for c in xp.split(projected(xp, positions, projection, 1), 3, 2))  # (V, S)
    u, v = xp.floor(uz / z), xp.floor(vz / z)
    inside = xp.all_of(z > near, u >= 0.0, u < width, v >= 0.0, v < height,
                       xp.cast(counts, xp.float32) >= min_count)
    # each view owns h * w cells and TRASH_CELLS spare ones of one flat buffer; the views are
    # numbered from far's shape on the device (no Shape op, so no CPU node)
    per_view = xp.cast(width * height, xp.int64) + L.TRASH_CELLS
    views = xp.cast(xp.reduce("min", far, [1, 2], keepdims=False) < -1.0, xp.int64) + 1  # ones (V,)
    base = xp.col(xp.cumsum(views, 0, exclusive=True) * per_view)  # (V, 1) first cell of each view
    # points that miss the grid go to one of the view's spare cells: one shared cell would make
    # every scatter below pile its atomics onto a single address on the GPU
    trash = base + xp.cast(width * height, xp.int64) + spill_ids
    cell = xp.flat(xp.where(inside, base + xp.cast(v * width + u, xp.int64), trash))  # (V * S,)
    z_key = xp.flat(xp.where(inside, z, np.inf))
    # the z-buffer starts at the far plane, so points beyond it can never win (no extra test)
    spare = xp.cast(base, xp.float32) * 0.0 + xp.const(np.full((1, L.TRASH_CELLS), np.inf), xp.float32)
    far_cells = xp.flat(xp.concat([xp.reshape(far, [0, -1]), spare], 1))  # (V * (h * w + TRASH_CELLS),)
    zbuffer = xp.scatter(far_cells, cell, z_key, reduction="min")
    wins = z_key == xp.gather(zbuffer, cell)
    no_hit = xp.cast(far_cells < -1.0, xp.int64)  # zeros
    winner = xp.scatter(no_hit, cell, xp.where(wins, xp.flat(base * 0 + slot_ids) + 1, 0), reduction="max")
    ones = xp.cast(far < -1.0, xp.int64) + 1  # (V, h, w)
    cell_grid = (xp.unsqueeze(base, [2]) + (xp.cumsum(ones, 1) - 1) * xp.cast(width, xp.int64)
                 + (xp.cumsum(ones, 2) - 1))
    winner = xp.gather(winner, cell_grid) - 1  # (V, h, w)
    hit = winner >= 0
    winner_slot = xp.maximum(winner, 0)
    gathered = xp.where(xp.unsqueeze(hit, [3]), xp.cast(xp.gather(latents, winner_slot), xp.float32), 0.0)
    depth = xp.where(hit, xp.gather(zbuffer, cell_grid), 0.0)
    # the renderer draws a cell's content at the centre, so a view between cells is off by up to
    # half a cell (the winners projected again: h * w points per view, not every stored point)
    winners = projected(xp, xp.gather(positions, winner_slot), xp.unsqueeze(projection, [1]), 2)  # (V, h, w, 3)
    wu, wv, wz = (xp.squeeze(c, [3]) for c in xp.split(winners, 3, 3))
    offset = xp.concat([xp.unsqueeze(xp.where(hit, (e - xp.floor(e)) - 0.5, 0.0), [1]) for e in (wu / wz, wv / wz)], 1)
    return xp.transpose(gathered, [0, 3, 1, 2]), hit, depth, offset


def read_out_torch(points_world, latents, T_world_cam, K_latent: g.Intrinsics, h: int, w: int,
                   near: float = 0.05, far=None, counts=None, min_count: int = 0):
    """:func:`read_out` in torch, differentiable in ``latents``: render latent points at a camera.

    Args:
        points_world: ``(N, 3)`` points in the world frame (NaN rows are ignored).
        latents: ``(N, C)`` their latent vectors (any float dtype; gradients flow into the
            winning point of each cell).
        T_world_cam: ``(4, 4)`` target camera (optical frame) pose in the world frame.
        K_latent: intrinsics of the target **latent** grid (``K.scaled(stride)``).
        h, w: latent grid size.
        near: near plane, metres. far: optional ``(h, w)`` far plane per cell.
        counts: optional ``(N,)`` fused observations per point; only points with ``min_count`` or
            more are drawn (the runtime memory's ``readout_min_count``).

    Returns:
        ``latent (C, h, w)``, ``valid (h, w) bool``, ``depth (h, w)``, ``offset (2, h, w)``.
    """
    import torch

    device = latents.device
    xp = TorchOps(device)
    T_cam_world = g.invert_pose(np.asarray(torch.as_tensor(T_world_cam).detach().cpu(), np.float64))
    points = torch.as_tensor(points_world, dtype=torch.float32, device=device)
    ids = {k: torch.from_numpy(v).to(device) for k, v in L.readout_ids(points.shape[0]).items()}
    far = (torch.full((h, w), float("inf"), device=device) if far is None
           else torch.as_tensor(far, dtype=torch.float32, device=device))
    counts = (torch.zeros(points.shape[0], dtype=torch.int32, device=device) if counts is None
              else torch.as_tensor(counts, dtype=torch.int32, device=device))
    out = read_out(xp, points, latents, counts, ids["slot_ids"], ids["spill_ids"],
                   xp.const(L.projection_matrix(K_latent, T_cam_world)[None], xp.float32),
                   xp.const(L.readout_grid(w, h, near, min_count), xp.float32), far[None])
    return tuple(x[0] for x in out)


def graph(views: bool = False):
    """The read-out graph (:func:`read_out`), named inputs and outputs as its arguments: of one
    view (``projection (3, 4)``, ``far (h, w)``, outputs without the view axis) or, with
    ``views``, of ``V`` views at once (the arguments' shapes)."""
    xp = OnnxOps()
    view = ["V"] if views else []
    args = [xp.input("positions", "float32", ["S", 3]), xp.input("latents", "float16", ["S", "C"]),
            xp.input("counts", "int32", ["S"]), xp.input("slot_ids", "int64", ["S"]),
            xp.input("spill_ids", "int64", ["S"]), xp.input("projection", "float32", view + [3, 4]),
            xp.input("grid", "float32", [len(L.READOUT_GRID)]), xp.input("far", "float32", view + ["h", "w"])]
    if not views:
        args[5], args[7] = xp.unsqueeze(args[5], [0]), xp.unsqueeze(args[7], [0])
    for value, name, shape in zip(read_out(xp, *args), ("latent", "valid", "depth", "offset"),
                                  (["C", "h", "w"], ["h", "w"], ["h", "w"], [2, "h", "w"])):
        xp.output(value if views else xp.squeeze(value, [0]), name, view + shape)
    return xp.model("mirage_memory_readout", "Read-out graph: project stored points fused at least min_count "
                    "times to the latent grid, z-buffer (min), gather winners (mirage_ros.memory_maths.readout).")
