"""Memory-conditioned training samples from simulated camera paths.

A *sequence* is one simulated recording (scene family, seed, path, actors, sensor noise), rendered
once and kept on the training device: RGB frames, poses, and each frame's latent cells lifted to
world points exactly as ``LatentMemory.insert`` lifts them (edge-aware pooled depth along the
cell's ray, cells touched by moving things skipped). A *sample* picks a target frame ``t``, a gap
``g`` (0 = the camera is back where it was: a revisit; > 0 = a future view ``g`` seconds ahead of
the newest frame in memory) and ``K`` context frames from the past ``<= t - g``: the most recent
ones plus older ones drawn by proximity to the target pose (what the memory would cover there).
The context latents, lifted and projected with ``memory_maths.readout.read_out_torch`` (the same
z-buffered projection as the runtime read-out), feed the renderer; the loss compares with the real
frame ``t``.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from mirage_ros import geometry as g
from mirage_ros.errors import InvalidInput
from mirage_ros.evaluation import metrics
from mirage_ros.memory.config import MemoryConfig
from mirage_ros.model.config import SimDataConfig
from mirage_ros.model.networks import NetworkConfig

PATHS_CYCLE = ("loop", "forward", "pan")
NOISE_CYCLE = ("none", "kinect")
RECENT_SPACING_S = 0.75  # spacing of the recent context frames before the gap
PROXIMITY_M = 1.0  # length scale of the pose-proximity weighting of older context frames
VAL_BATCHES = 4
VAL_RNG_SEED = 12345


@dataclass(frozen=True)
class SequenceSpec:
    """One simulated recording: ``frames`` frames of ``scene``/``seed`` at ``rate_hz``."""

    scene: str
    seed: int
    path: str
    actors: bool
    noise: str
    frames: int
    width: int
    height: int
    rate_hz: float


def sequence_specs(cfg: SimDataConfig, seeds: list[int]) -> list[SequenceSpec]:
    """Every (scene family x seed) of ``seeds``; path, actors and noise cycle over the seeds."""
    specs = []
    for k, seed in enumerate(seeds):
        for j, scene in enumerate(cfg.scenes):
            specs.append(SequenceSpec(
                scene, int(seed), cfg.paths[(k + j) % len(cfg.paths)],
                bool(cfg.actors[(k + j) % len(cfg.actors)]), NOISE_CYCLE[(k // 2 + j) % 2],
                cfg.frames_per_sequence, cfg.width, cfg.height, cfg.rate_hz))
    return specs


def lift_cells(depth: np.ndarray, K: g.Intrinsics, T_world_cam: np.ndarray, stride: int,
               dynamic: np.ndarray | None, memory: MemoryConfig) -> tuple[np.ndarray, np.ndarray]:
    """World points of a frame's latent cells, as ``LatentMemory.insert`` computes them.

    Args:
        depth: ``(H, W)`` metres; dynamic: ``(H, W) bool`` moving pixels or None.

    Returns:
        ``points (h*w, 3) float32`` world frame and ``ok (h*w,) bool`` (cell has a depth in
        ``(min_depth, max_depth)`` and no dynamic pixel).
    """
    # readings outside the memory's range are dropped before pooling, as the update graph does:
    # a far wall must not win a cell's pooled depth and then get the whole cell discarded
    with np.errstate(invalid="ignore"):
        reading = g.valid_depth(depth) & (depth > memory.min_depth) & (depth < memory.max_depth)
    depth = np.where(reading, depth, 0.0).astype(np.float32)
    if dynamic is not None:
        depth = np.where(dynamic, 0.0, depth)
    pooled = g.pool_depth(depth, stride, memory.depth_rel_gap, memory.depth_min_fraction)
    ok = (pooled > memory.min_depth) & (pooled < memory.max_depth)
    if dynamic is not None:
        ok &= g.pool_mask(dynamic, stride) <= memory.dynamic_max_fraction
    cam = g.backproject(pooled, K.scaled(stride))
    world = g.transform_points(T_world_cam, cam.reshape(-1, 3))
    return world.astype(np.float32), ok.reshape(-1)


_VOXEL_BITS = 16  # per axis in fuse_in_voxels' keys: +-32768 voxels (+-1.6 km at 5 cm)


def fuse_in_voxels(points: torch.Tensor, ok: torch.Tensor, latents: torch.Tensor, voxel_size: float,
                   max_weight: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Fuse context cells per world voxel with the memory's running average, frame by frame.

    The update graph's maths without its hash table (nothing is evicted from a few frames): the
    cells of one frame that share a voxel are summed with weight 1, and the voxel's position and
    latent become ``(w * old + sum) / (w + n)`` with the voxel's weight ``w`` capped at
    ``max_weight``. Differentiable in ``latents``.

    Args:
        points: ``(B, K, M, 3)`` world points of ``K`` context frames, in observation order.
        ok: ``(B, K, M) bool`` cells the memory takes. latents: ``(B, K, M, C)``.

    Returns:
        ``sample (V,)`` long, ascending: the batch sample of each fused point; ``positions (V, 3)``
        and ``latents (V, C)``.
    """
    b, k, m, c = latents.shape
    half = 1 << (_VOXEL_BITS - 1)
    voxel = torch.floor(torch.where(ok[..., None], points, 0.0) / voxel_size).long()
    voxel = voxel.clamp(-half, half - 1) + half
    sample = torch.arange(b, device=points.device).view(b, 1, 1)
    key = (((sample << _VOXEL_BITS | voxel[..., 0]) << _VOXEL_BITS | voxel[..., 1]) << _VOXEL_BITS
           | voxel[..., 2])
    keys, inverse = torch.unique(key[ok], return_inverse=True)  # (V,), (n_ok,)
    frame = torch.arange(k, device=points.device).view(1, k, 1).expand(b, k, m)[ok]
    cell_points, cell_latents = points[ok], latents[ok]
    n_voxels = keys.shape[0]
    weight = points.new_zeros(n_voxels)
    position = points.new_zeros(n_voxels, 3)
    latent = latents.new_zeros(n_voxels, c)
    for j in range(k):
        mine = frame == j
        index = inverse[mine]
        n = weight.new_zeros(n_voxels).index_add(0, index, weight.new_ones(index.shape[0]))
        total = (weight + n).clamp(min=1e-12)[:, None]
        position = (weight[:, None] * position + position.new_zeros(n_voxels, 3).index_add(
            0, index, cell_points[mine])) / total
        latent = (weight[:, None] * latent + latent.new_zeros(n_voxels, c).index_add(
            0, index, cell_latents[mine])) / total
        weight = torch.clamp(weight + n, max=max_weight)
    return keys >> (3 * _VOXEL_BITS), position, latent


def render_sequence(spec: SequenceSpec, stride: int) -> dict[str, np.ndarray]:
    """Render ``spec`` and lift every frame's cells (runs in a worker process)."""
    from mirage_ros.sim import SimConfig, Simulator

    sim = Simulator(SimConfig(scene=spec.scene, seed=spec.seed, width=spec.width,
                              height=spec.height, rate_hz=spec.rate_hz, path=spec.path,
                              actors=spec.actors, noise=spec.noise))
    memory = MemoryConfig(channels=1, stride=stride)
    rgb, poses, points, ok = [], [], [], []
    for frame in sim.frames(spec.frames):
        rgb.append(np.asarray(frame.rgb, np.uint8))
        poses.append(frame.T_world_cam)
        p, o = lift_cells(frame.depth, frame.K, frame.T_world_cam, stride, frame.motion_mask, memory)
        points.append(p)
        ok.append(o)
    K = sim.K
    return {"rgb": np.stack(rgb), "poses": np.stack(poses), "points": np.stack(points),
            "ok": np.stack(ok), "K": np.array([K.fx, K.fy, K.cx, K.cy, K.width, K.height])}


_RENDERED: dict[tuple[SequenceSpec, int], dict] = {}  # one process renders a sequence once


def render_sequences(specs: list[SequenceSpec], stride: int, workers: int, progress: bool):
    """Render ``specs`` in ``workers`` processes (0 = one per CPU core), in order (cached)."""
    todo = [s for s in dict.fromkeys(specs) if (s, stride) not in _RENDERED]
    for spec, data in zip(todo, _render_all(todo, stride, workers, progress)):
        _RENDERED[(spec, stride)] = data
    return [_RENDERED[(s, stride)] for s in specs]


def _render_all(specs: list[SequenceSpec], stride: int, workers: int, progress: bool):
    if not specs:
        return []
    workers = workers or os.cpu_count() or 1
    bar = tqdm(total=len(specs), desc="render sim", disable=not progress, dynamic_ncols=True)
    if workers == 1 or len(specs) == 1:
        out = []
        for spec in specs:
            out.append(render_sequence(spec, stride))
            bar.update(1)
    else:
        with ProcessPoolExecutor(min(workers, len(specs))) as pool:
            futures = [pool.submit(render_sequence, spec, stride) for spec in specs]
            out = []
            for f in futures:
                out.append(f.result())
                bar.update(1)
    bar.close()
    return out


def _to_unit_chw(images: torch.Tensor) -> torch.Tensor:
    """``(..., H, W, 3) uint8`` -> ``(..., 3, H, W) float32`` in ``[0, 1]``."""
    return images.movedim(-1, -3).float() / 255.0


class SequenceSet:
    """Rendered sequences stacked on ``device`` (all share frame count and image size)."""

    def __init__(self, rendered: list[dict], device: torch.device):
        self.rgb = torch.from_numpy(np.stack([r["rgb"] for r in rendered])).to(device)  # (N,F,H,W,3)
        self.poses = np.stack([r["poses"] for r in rendered])  # (N, F, 4, 4) float64, host
        self.points = torch.from_numpy(np.stack([r["points"] for r in rendered])).to(device)
        self.ok = torch.from_numpy(np.stack([r["ok"] for r in rendered])).to(device)
        fx, fy, cx, cy, w, h = rendered[0]["K"]
        self.K = g.Intrinsics(fx, fy, cx, cy, int(w), int(h))
        self.device = device

    @property
    def n_sequences(self) -> int:
        return self.rgb.shape[0]

    @property
    def n_frames(self) -> int:
        return self.rgb.shape[1]


class SimSource:
    """Training and validation batches of memory-conditioned targets (see module docstring)."""

    def __init__(self, cfg: SimDataConfig, net: NetworkConfig, seed: int, rank: int, world: int,
                 device: torch.device, progress: bool = True):
        self.cfg, self.net, self.device = cfg, net, device
        all_specs = sequence_specs(cfg, cfg.train_seeds)
        if len(all_specs) < world:
            raise InvalidInput("sim.train_seeds", f"{len(all_specs)} training sequences (scenes x "
                               f"seeds) for {world} ranks: every rank needs at least one")
        train_specs = all_specs[rank::world]  # per-rank shard
        val_specs = sequence_specs(cfg, cfg.val_seeds) if rank == 0 else []
        rendered = render_sequences(train_specs + val_specs, net.stride, cfg.workers, progress)
        self.train = SequenceSet(rendered[: len(train_specs)], device)
        self.val = SequenceSet(rendered[len(train_specs):], device) if val_specs else None
        self.K_latent = self.train.K.scaled(net.stride)
        self.gap_frames = [int(round(s * cfg.rate_hz)) for s in cfg.gaps_s]

    # --------------------------------------------------------------- sampling
    def _pick(self, seqs: SequenceSet, rng: np.random.Generator) -> tuple[int, int, int, np.ndarray]:
        """``(sequence, target frame, gap, context frames (K,))`` for one sample."""
        cfg = self.cfg
        n_ctx = cfg.context_frames
        gap = self.gap_frames[rng.integers(len(self.gap_frames))]
        i = int(rng.integers(seqs.n_sequences))
        t = int(rng.integers(gap + 1, seqs.n_frames)) if gap + 1 < seqs.n_frames else seqs.n_frames - 1
        newest = t - gap
        spacing = max(1, int(round(RECENT_SPACING_S * cfg.rate_hz)))
        recent = newest - spacing * np.arange(n_ctx // 2)
        recent = recent[recent >= 0]
        if gap == 0:
            recent = recent[1:]  # the target frame itself comes back only as an older visit
        pool = np.arange(0, max(newest - spacing * (n_ctx // 2), 0) + 1)
        if gap == 0:
            pool = pool[pool < t - 10 * spacing] if (pool < t - 10 * spacing).any() else pool
        dist = np.linalg.norm(seqs.poses[i, pool, :3, 3] - seqs.poses[i, t, :3, 3], axis=1)
        facing = np.einsum("kj,j->k", seqs.poses[i, pool, :3, 2], seqs.poses[i, t, :3, 2])
        weight = np.exp(-dist / PROXIMITY_M) * np.clip(facing, 0.05, None) + 1e-6
        n_old = min(n_ctx - len(recent), len(pool))
        old = rng.choice(pool, size=n_old, replace=False, p=weight / weight.sum())
        ctx = np.concatenate([recent, old]).astype(np.int64)
        if gap == 0 and rng.random() < 0.5:
            ctx[-1] = t  # half of the revisits see the very same pose again
        while len(ctx) < n_ctx:  # short sequences: repeat the newest frame
            ctx = np.append(ctx, ctx[0])
        return i, t, gap, np.sort(ctx)  # observation order: the fusion is a running average

    def _batch(self, seqs: SequenceSet, rng: np.random.Generator, n: int) -> dict:
        picks = [self._pick(seqs, rng) for _ in range(n)]
        seq = torch.tensor([p[0] for p in picks], device=self.device)
        tgt = torch.tensor([p[1] for p in picks], device=self.device)
        ctx = torch.from_numpy(np.stack([p[3] for p in picks])).to(self.device)  # (B, K)
        return {
            "context_rgb": _to_unit_chw(seqs.rgb[seq[:, None], ctx]),  # (B, K, 3, H, W)
            "context_points": seqs.points[seq[:, None], ctx],  # (B, K, h*w, 3)
            "context_ok": seqs.ok[seq[:, None], ctx],  # (B, K, h*w)
            "target_rgb": _to_unit_chw(seqs.rgb[seq, tgt]),  # (B, 3, H, W)
            "target_pose": torch.from_numpy(np.stack([seqs.poses[p[0], p[1]] for p in picks])),
            "gap": torch.tensor([p[2] for p in picks]),
        }

    def train_batch(self, rng: np.random.Generator) -> dict:
        return self._batch(self.train, rng, self.cfg.batch_size)

    # --------------------------------------------------------------- read-out
    def memory_readout(self, batch: dict, latents: torch.Tensor):
        """``(B, K, C, h, w)`` context latents -> target's ``latent (B, C, h, w)``,
        ``valid (B, 1, h, w)``, ``depth (B, 1, h, w)``, ``offset (B, 2, h, w)``: fused per voxel
        (``fuse_in_voxels``, the runtime memory's averaging) and read out with ``read_out_torch``."""
        from mirage_ros.memory_maths.readout import read_out_torch

        b, k, c, h, w = latents.shape
        sample, points, fused = fuse_in_voxels(
            batch["context_points"], batch["context_ok"], latents.permute(0, 1, 3, 4, 2).reshape(b, k, h * w, c),
            self.cfg.voxel_size, self.cfg.max_weight)
        ends = torch.searchsorted(sample, torch.arange(1, b + 1, device=sample.device)).tolist()
        out_lat, out_valid, out_depth, out_offset = [], [], [], []
        for j, (start, end) in enumerate(zip([0] + ends[:-1], ends)):
            lat, valid, depth, offset = read_out_torch(points[start:end], fused[start:end],
                                                       batch["target_pose"][j], self.K_latent, h, w)
            out_lat.append(lat)
            out_valid.append(valid.to(lat.dtype))
            out_depth.append(depth.to(lat.dtype))
            out_offset.append(offset)
        return (torch.stack(out_lat), torch.stack(out_valid)[:, None],
                torch.stack(out_depth)[:, None], torch.stack(out_offset))

    # --------------------------------------------------------------- validation
    @torch.no_grad()
    def validate(self, nets) -> dict:
        """PSNR / SSIM of memory-conditioned predictions on the held-out seeds, by gap."""
        if self.val is None:
            return {}
        rng = np.random.default_rng(VAL_RNG_SEED)
        scores: dict[str, list[float]] = {}
        s = self.net.stride
        for _ in range(VAL_BATCHES):
            batch = self._batch(self.val, rng, self.cfg.batch_size)
            pred, valid = nets.render_memory(batch)
            pred = (pred.clamp(0, 1) * 255 + 0.5).byte().permute(0, 2, 3, 1).cpu().numpy()
            target = (batch["target_rgb"] * 255 + 0.5).byte().permute(0, 2, 3, 1).cpu().numpy()
            covered = valid[:, 0].repeat_interleave(s, 1).repeat_interleave(s, 2).bool().cpu().numpy()
            for j in range(len(pred)):
                tag = f"gap{self.cfg.gaps_s[self.gap_frames.index(int(batch['gap'][j]))]:g}s"
                for key, value in (("sim_val_psnr", metrics.psnr(pred[j], target[j])),
                                   (f"sim_val_psnr_{tag}", metrics.psnr(pred[j], target[j])),
                                   ("sim_val_ssim", metrics.ssim(pred[j], target[j])),
                                   ("sim_val_psnr_covered", metrics.psnr(pred[j], target[j], covered[j]))):
                    if np.isfinite(value):
                        scores.setdefault(key, []).append(value)
        return {k: float(np.mean(v)) for k, v in sorted(scores.items())}
