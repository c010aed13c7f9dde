"""The memory's maths in torch: the reference the ONNX graphs are tested against, and a
differentiable read-out for training.

Mirrors ``onnx_graphs.py`` step by step (same inputs, same state layout, ``layout.py``), so ORT on
CPU matches it to float rounding. Torch is imported here only; the runtime never imports this.

For training: :func:`read_out_torch` renders points with latents at a camera and is
differentiable w.r.t. ``latents`` (gradients flow into the winning point of each cell).
"""

from __future__ import annotations

import numpy as np
import torch

from mirage_ros import geometry as g
from mirage_ros.memory import layout as L


def _pool_cells(depth, dynamic, stride: int, p: dict):
    """Edge-aware depth, has-reading and dynamic fraction per latent cell, (M,) each."""
    s2 = stride * stride
    H, W = depth.shape

    def blocks(image):
        return image.reshape(H // stride, stride, W // stride, stride).permute(0, 2, 1, 3).reshape(-1, s2)

    depth_b, dynamic_b = blocks(depth), blocks(dynamic.float())
    dynamic_fraction = dynamic_b.mean(dim=1)
    reading = (depth_b > p["min_depth"]) & (depth_b < p["max_depth"]) & (dynamic_b < 0.5)
    ordered = torch.sort(torch.where(reading, depth_b, torch.tensor(L.FAR_SENTINEL)), dim=1).values
    jump = (ordered[:, 1:] - ordered[:, :-1]) > ordered[:, :-1] * p["rel_gap"]
    is_reading = (ordered < 0.5 * L.FAR_SENTINEL).long()
    cluster = torch.cat([torch.zeros_like(is_reading[:, :1]), torch.cumsum(jump.long(), dim=1)], dim=1)
    sizes = torch.zeros_like(is_reading).scatter_add(1, cluster, is_reading)
    n_valid = is_reading.sum(dim=1, keepdim=True)
    need = torch.clamp(n_valid.float() * p["min_fraction"], min=1.0)
    chosen = torch.argmax((sizes.float() >= need).float(), dim=1, keepdim=True)
    first = torch.gather(torch.cumsum(sizes, dim=1) - sizes, 1, chosen)
    size = torch.clamp(torch.gather(sizes, 1, chosen), min=1)
    lo, hi = first + (size - 1) // 2, first + size // 2
    median = (torch.gather(ordered, 1, lo) + torch.gather(ordered, 1, hi)) * 0.5
    return median.reshape(-1), (n_valid > 0).reshape(-1), dynamic_fraction


def _hash(voxel, primes, modulus):
    return (voxel[:, 0] * primes[0] + voxel[:, 1] * primes[1] + voxel[:, 2] * primes[2]) % modulus


def update_torch(state: dict, depth, dynamic, latent, rays, T_world_cam, params, stride: int) -> dict:
    """One memory update, the update graph's maths. All arguments are tensors shaped as the
    update graph's inputs (``onnx_graphs.build_update``); returns the new state dict."""
    p = dict(zip(L.UPDATE_PARAMS, params))
    depth_c, has_depth, dynamic_fraction = _pool_cells(depth, dynamic, stride, p)
    C = latent.shape[0]
    cells = latent.reshape(C, -1).T
    finite_latent = ~torch.isnan((cells * 0.0).sum(dim=1))
    rays = rays.reshape(2, -1)
    T = T_world_cam[:3]  # R p_cam + t, column by column in the graph's order (bit-exact on CPU)
    p_world = (((rays[0] * depth_c)[:, None] * T[:, 0] + (rays[1] * depth_c)[:, None] * T[:, 1])
               + (depth_c[:, None] * T[:, 2] + T[:, 3]))
    candidate = has_depth & finite_latent & (dynamic_fraction <= p["dynamic_max_fraction"])
    voxel_f = torch.floor(p_world / p["voxel_size"])
    in_range = ((voxel_f >= -L.KEY_OFFSET) & (voxel_f < L.KEY_OFFSET)).all(dim=1)
    valid = candidate & in_range
    p_world = p_world * valid[:, None].float()
    cells = torch.where(valid[:, None], cells, torch.tensor(0.0))
    voxel = torch.where(valid[:, None], voxel_f, torch.tensor(0.0)).long() + L.KEY_OFFSET
    key = voxel[:, 0] * (1 << (2 * L.KEY_BITS)) + voxel[:, 1] * (1 << L.KEY_BITS) + voxel[:, 2]

    keys = state["keys"]
    trash = keys.shape[0] - 1
    n_cells = key.shape[0]
    cell_id = torch.arange(n_cells)
    ways = torch.arange(L.WAYS)[None, :]
    candidates = _hash(voxel, L.BUCKET_PRIMES, trash // L.WAYS)[:, None] * L.WAYS + ways
    start_way = _hash(voxel, L.WAY_PRIMES, L.WAYS)[:, None]
    preference = ((ways - start_way + L.WAYS) % L.WAYS).float()
    big = 3.0e30
    empty_score = (2.0 / 3.0 * big) * (1.0 - preference / (2.0 * L.WAYS))
    lru_score = -state["last_seen"][candidates]

    keys_now, claimed, active = keys.clone(), torch.zeros_like(keys), valid.clone()
    slot = torch.full_like(cell_id, trash)
    for _ in range(L.ROUNDS):
        cand_keys = keys_now[candidates]
        score = torch.where(cand_keys == key[:, None], torch.tensor(big),
                            torch.where(claimed[candidates] > 0, torch.tensor(-big),
                                        torch.where(cand_keys < 0, empty_score, lru_score)))
        way = torch.argmax(score, dim=1, keepdim=True)
        chosen_score = torch.gather(score, 1, way).reshape(-1)
        chosen_slot = torch.gather(candidates, 1, way).reshape(-1)
        ok = active & (chosen_score > -0.5 * big)
        priority = torch.where(ok, (chosen_score > 2.5e30).long() * n_cells + cell_id + 1, 0)
        target = torch.where(ok, chosen_slot, trash)
        best = torch.zeros_like(keys).scatter_reduce(0, target, priority, "amax")
        winner = torch.clamp(best[target] - 1, min=0) % n_cells
        accepted = ok & (key[winner] == key)
        write_to = torch.where(accepted, chosen_slot, trash)
        keys_now = keys_now.scatter(0, write_to, torch.where(accepted, key, -1))
        claimed = claimed.scatter(0, write_to, accepted.long())
        slot = torch.where(accepted, chosen_slot, slot)
        active = active & ~accepted

    fused = valid & ~active
    old_key = keys[slot]
    revisit = fused & (old_key == key)
    created = fused & (old_key < 0)
    evicted = fused & ~revisit & ~created
    rep = torch.zeros_like(keys).scatter_reduce(0, slot, cell_id + 1, "amax")[slot] - 1
    is_rep = rep == cell_id
    weight = fused.float()

    def group_sum(x):
        index = rep if x.dim() == 1 else rep[:, None].expand_as(x)
        return torch.zeros_like(x).scatter_add(0, index, x)[rep]

    sum_w = group_sum(weight)
    old_w = torch.where(revisit, state["weights"][slot], torch.tensor(0.0))
    total_w = torch.clamp(old_w + sum_w, min=1e-12)[:, None]

    def running_mean(old, new):
        kept = torch.where(revisit[:, None], old_w[:, None] * old, torch.tensor(0.0))
        return (kept + group_sum(new * weight[:, None])) / total_w

    new_pos = running_mean(state["positions"][slot], p_world)
    new_pos = torch.where(fused[:, None], new_pos, torch.tensor(float("nan")))
    new_lat = torch.clamp(running_mean(state["latents"][slot].float(), cells), -65504.0, 65504.0).half()
    new_n = torch.where(revisit, state["counts"][slot], torch.tensor(0, dtype=torch.int32)) + sum_w.int()
    counted = lambda mask: int(mask.sum())  # noqa: E731
    new_points = counted(is_rep & created)
    delta = torch.tensor([1, counted(valid), counted(fused), counted(revisit), new_points,
                          counted(is_rep & evicted), counted(valid & active), new_points])
    slot3 = slot[:, None].expand(-1, 3)
    slot_c = slot[:, None].expand(-1, C)
    return {
        "positions": state["positions"].scatter(0, slot3, new_pos),
        "latents": state["latents"].scatter(0, slot_c, new_lat),
        "weights": state["weights"].scatter(0, slot, torch.clamp(total_w.reshape(-1), max=float(p["max_weight"]))),
        "last_seen": state["last_seen"].scatter(0, slot, torch.zeros_like(weight) + p["stamp"]),
        "counts": state["counts"].scatter(0, slot, new_n),
        "keys": keys_now,
        "stats": state["stats"] + delta,
    }


def read_out_state(positions, latents, slot_ids, projection, grid, far, counts=None):
    """The read-out graph's maths; arguments shaped as its inputs (``build_readout``), all on
    one device (``counts`` None: every point counts as fused ``grid[3]`` times). Returns
    ``(latent (C, h, w) float32, valid (h, w) bool, depth (h, w) float32, offset (2, h, w) float32)``."""
    h, w = far.shape
    near = grid[2]
    uvz = (positions @ projection[:, :3].T + projection[:, 3].reshape(1, 3)).T
    uz, vz, z = uvz[0], uvz[1], uvz[2]
    u_exact, v_exact = uz / z, vz / z
    u, v = torch.floor(u_exact), torch.floor(v_exact)
    inside = (z > near) & (u >= 0) & (u < grid[0]) & (v >= 0) & (v < grid[1])
    if counts is not None:
        inside &= counts.float() >= grid[3]
    n_cells = h * w
    cell = torch.where(inside, (v * grid[0] + u).long(), n_cells + slot_ids % L.TRASH_CELLS)
    z_key = torch.where(inside, z, float("inf"))
    far_flat = torch.cat([far.reshape(-1), far.new_full((L.TRASH_CELLS,), float("inf"))])
    zbuffer = far_flat.scatter_reduce(0, cell, z_key, "amin")
    wins = z_key == zbuffer[cell]
    winner = torch.zeros(n_cells + L.TRASH_CELLS, dtype=torch.long, device=far.device).scatter_reduce(
        0, cell, torch.where(wins, slot_ids + 1, 0), "amax")[:n_cells] - 1
    hit = winner >= 0
    winner_slot = torch.clamp(winner, min=0)
    gathered = torch.where(hit[:, None], latents[winner_slot].float(), 0.0)
    depth = torch.where(hit, zbuffer[:n_cells], 0.0)
    winners_exact = torch.stack([u_exact[winner_slot], v_exact[winner_slot]])  # winners only: (2, h * w)
    offset = torch.where(hit, winners_exact - torch.floor(winners_exact) - 0.5, 0.0)
    return gathered.T.reshape(-1, h, w), hit.reshape(h, w), depth.reshape(h, w), offset.reshape(2, h, w)


def read_out_torch(points_world, latents, T_world_cam, K_latent: g.Intrinsics, h: int, w: int,
                   near: float = 0.05, far=None):
    """Render latent points at a camera (nearest point per cell wins), differentiably in ``latents``.

    Args:
        points_world: ``(N, 3)`` points in the world frame (NaN rows are ignored).
        latents: ``(N, C)`` their latent vectors (any float dtype; gradients flow back).
        T_world_cam: ``(4, 4)`` target camera (optical frame) pose in the world frame.
        K_latent: intrinsics of the target **latent** grid (``K.scaled(stride)``).
        h, w: latent grid size.
        near: near plane, metres. far: optional ``(h, w)`` far plane per cell.

    Returns:
        ``latent (C, h, w)``, ``valid (h, w) bool``, ``depth (h, w)`` (z in the target camera),
        ``offset (2, h, w)`` (``Readout.offset``).
    """
    T_cam_world = g.invert_pose(np.asarray(torch.as_tensor(T_world_cam).detach().cpu(), np.float64))
    device = latents.device
    projection = torch.from_numpy(L.projection_matrix(K_latent, T_cam_world)).to(device)
    points = torch.as_tensor(points_world, dtype=torch.float32, device=device)
    far = (torch.full((h, w), float("inf"), device=device) if far is None
           else torch.as_tensor(far, dtype=torch.float32, device=device))
    grid = torch.from_numpy(L.readout_grid(w, h, near)).to(device)
    slot_ids = torch.arange(points.shape[0], device=device)
    return read_out_state(points, latents, slot_ids, projection, grid, far)


def place_subcell_torch(rgb, offset):
    """The sub-cell placement graph's maths (``subcell.build_subcell_shift``), differentiable in
    ``rgb``: ``(B, 3, H, W)`` rendered image and ``(B, 2, h, w)`` read-out offsets (cells) ->
    ``(B, 3, H, W)`` with each cell's content moved to where its point projects."""
    from torch.nn import functional as F

    b, _, height, width = rgb.shape
    h, w = offset.shape[-2:]
    x = (torch.arange(width, device=rgb.device, dtype=rgb.dtype) + 0.5) * (2.0 / width) - 1.0
    y = (torch.arange(height, device=rgb.device, dtype=rgb.dtype) + 0.5) * (2.0 / height) - 1.0
    pixels = torch.stack(torch.meshgrid(x, y, indexing="xy"), dim=-1).expand(b, height, width, 2)
    field = F.grid_sample(offset.to(rgb.dtype), pixels, mode="bilinear", padding_mode="border", align_corners=False)
    cell = torch.tensor([2.0 / w, 2.0 / h], device=rgb.device, dtype=rgb.dtype)
    source = pixels - field.permute(0, 2, 3, 1) * cell
    return F.grid_sample(rgb, source, mode="bilinear", padding_mode="border", align_corners=False)


def carve_torch(state: dict, depth, dynamic, projection, params, slot_ids, stride: int) -> dict:
    """Free-space carving, the carve graph's maths (``carve.build_carve``). Arguments are tensors
    shaped as that graph's inputs; ``state`` holds ``positions, weights, keys, stats,
    carve_stats`` (more is ignored). Returns those five, carved."""
    from mirage_ros.memory.layout import CARVE_PARAMS, NEIGHBOURHOOD

    p = dict(zip(CARVE_PARAMS, params))
    H, W = depth.shape

    def blocks(image):  # (H, W) -> (s*s, h, w)
        return image.reshape(H // stride, stride, W // stride, stride).permute(1, 3, 0, 2).reshape(
            stride * stride, H // stride, W // stride)

    depth_b = blocks(depth)
    reading = (depth_b > p["min_depth"]) & (depth_b < p["max_depth"])
    nearest = torch.where(reading, depth_b, torch.tensor(L.FAR_SENTINEL)).amin(dim=0)
    enough = reading.float().mean(dim=0) >= p["min_valid_fraction"] * (1.0 - 1e-6)
    still = blocks(dynamic.float()).amax(dim=0) < 0.5
    value = torch.where(still, torch.where(enough, nearest, torch.tensor(L.FAR_SENTINEL)), torch.tensor(0.0))
    pooled = -torch.nn.functional.max_pool2d(-value[None, None], NEIGHBOURHOOD, stride=1,
                                             padding=NEIGHBOURHOOD // 2)[0, 0]
    live = torch.cat([torch.where(enough & still, pooled, torch.tensor(0.0)).reshape(-1), torch.zeros(1)])

    index = slot_ids
    positions, keys, weights = (state[n][index] for n in ("positions", "keys", "weights"))
    uvz = positions @ projection[:, :3].T + projection[:, 3].reshape(1, 3)
    uz, vz, z = uvz[:, 0], uvz[:, 1], uvz[:, 2]
    u, v = torch.floor(uz / z), torch.floor(vz / z)
    inside = (keys >= 0) & (z > p["near"]) & (u >= 0) & (u < p["width"]) & (v >= 0) & (v < p["height"])
    cell = torch.where(inside, torch.where(inside, v, 0.0) * p["width"] + torch.where(inside, u, 0.0),
                       p["width"] * p["height"])
    through = inside & (live[cell.long()] > z + (p["margin"] + p["rel_margin"] * z))
    weight = torch.where(through, weights - p["decrement"], weights)
    removed = through & (weight <= 0)
    stats = state["stats"].clone()
    stats[L.STAT_NAMES.index("points_live")] -= int(removed.sum())

    def put(name, values):
        return state[name].index_put((index,), values)

    return {
        "positions": put("positions", torch.where(removed[:, None], torch.tensor(float("nan")), positions)),
        "weights": put("weights", torch.clamp(weight, min=0.0)),
        "keys": put("keys", torch.where(removed, torch.tensor(-1), keys)),
        "stats": stats,
        "carve_stats": state["carve_stats"] + torch.tensor([1, int(through.sum()), int(removed.sum())]),
    }
