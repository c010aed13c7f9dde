"""Memory-conditioned training samples from RGB-D sequences with poses (simulated or recorded).

A *sequence* is one recording kept on the training device: RGB frames, poses, and each frame's
latent cells lifted to world points exactly as ``LatentMemory.insert`` lifts them (edge-aware
pooled depth along the cell's ray, cells touched by moving things skipped). A *sample* picks a
target frame ``t``, a gap ``g`` (0 = the camera is back where it was: a revisit; > 0 = a future
view ``g`` seconds ahead of the newest frame in memory) and ``K`` context frames from the past
``<= t - g``: the most recent ones plus older ones drawn by proximity to the target pose (what the
memory would cover there). The context latents are fused per voxel with the runtime's voxel policy
(``memory_maths.update.voxel_levels``: voxels follow the cell's footprint) and read out at the
target pose with ``memory_maths.readout.read_out_torch`` (the runtime read-out's z-buffered
projection); the loss compares with the real frame ``t``.

``model.sim_data`` and ``model.real_data`` build the sequences; this module samples, fuses, reads
out and validates, whatever their source.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from mirage_ros import geometry as g
from mirage_ros.evaluation import metrics
from mirage_ros.memory.config import MemoryConfig
from mirage_ros.memory_maths.torch_ops import TorchOps
from mirage_ros.memory_maths.update import voxel_levels
from mirage_ros.model import augment
from mirage_ros.model.config import MemoryTaskConfig

RECENT_SPACING_S = 0.75  # spacing of the recent context frames before the gap
PROXIMITY_M = 1.0  # length scale of the pose-proximity weighting of older context frames
VAL_BATCHES = 4
VAL_RNG_SEED = 12345


LIFTED = ("points", "ok", "in_frame", "cell_depth", "far_depth")  # lift_cells' arrays, in order


def lift_cells(depth: np.ndarray, K: g.Intrinsics, T_world_cam: np.ndarray, stride: int,
               dynamic: np.ndarray | None, memory: MemoryConfig
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.float32]:
    """World points of a frame's latent cells, as ``LatentMemory.insert`` computes them.

    Args:
        depth: ``(H, W)`` metres; dynamic: ``(H, W) bool`` moving pixels or None.

    Returns:
        (:data:`LIFTED`) ``points (h*w, 3) float32`` world frame: a cell with a reading at its
        pooled depth, a static cell without one at the frame's far depth (where the runtime's
        newest-frame overlay puts it); ``ok (h*w,) bool`` (cell has a depth in
        ``(min_depth, max_depth)`` and no dynamic pixel: what the memory fuses); ``in_frame (h*w,)
        bool`` (the frame's own points: ``ok`` and the static cells placed at the far depth);
        ``cell_depth (h*w,) float32`` metres along the optical axis where ``ok`` (the footprint, and
        so the voxel level, follows it), else 0; and the far depth ``pipeline.hole_depth`` (0: the
        frame has no reading, and its cells without one stay out).
    """
    from mirage_ros.pipeline import hole_depth  # the runtime's far depth, not a copy of it

    far = np.float32(hole_depth(depth, memory))
    # readings outside the memory's range are dropped before pooling, as the update graph does:
    # a far wall must not win a cell's pooled depth and then get the whole cell discarded
    reading = g.valid_depth(depth, memory.min_depth, memory.max_depth)
    depth = np.where(reading, depth, 0.0).astype(np.float32)
    if dynamic is not None:
        depth = np.where(dynamic, 0.0, depth)
    pooled = g.pool_depth(depth, stride, memory.depth_rel_gap, memory.depth_min_fraction)
    ok = (pooled > memory.min_depth) & (pooled < memory.max_depth)
    static = np.ones_like(ok) if dynamic is None else g.pool_mask(dynamic, stride) <= memory.dynamic_max_fraction
    in_frame = static & (ok | (far > 0.0))
    ok &= static
    cam = g.backproject(np.where(ok, pooled, far).astype(np.float32), K.scaled(stride))
    world = g.transform_points(T_world_cam, cam.reshape(-1, 3))
    return (world.astype(np.float32), ok.reshape(-1), in_frame.reshape(-1),
            np.where(ok, pooled, 0.0).astype(np.float32).reshape(-1), far)


def lift_frames(frames, stride: int, memory: MemoryConfig) -> dict[str, np.ndarray]:
    """The host arrays of ``Sequence.from_arrays`` but ``rate_hz``, from frames with ``rgb (H, W, 3)
    uint8``, ``depth``, ``K``, ``T_world_cam`` and ``motion_mask`` (None: nothing moves), as
    ``evaluation.sources.Observation`` and the simulator's frames have them:
    ``rgb (F, H, W, 3)``, ``poses (F, 4, 4)`` and :func:`lift_cells`'s arrays stacked (``{}`` for
    no frame)."""
    columns: dict[str, list] = {name: [] for name in ("rgb", "poses") + LIFTED}
    for frame in frames:
        columns["rgb"].append(np.asarray(frame.rgb, np.uint8))
        columns["poses"].append(frame.T_world_cam)
        lifted = lift_cells(frame.depth, frame.K, frame.T_world_cam, stride, frame.motion_mask, memory)
        for name, array in zip(LIFTED, lifted):
            columns[name].append(array)
    return {name: np.stack(arrays) for name, arrays in columns.items()} if columns["rgb"] else {}


# key bits of fuse_in_voxels: per axis (+-131072 voxels: +-262 m at 2 mm), the voxel level, and
# the batch sample above them (up to 2**6 samples)
_AXIS_BITS = 18
_LEVEL_BITS = 3
_SAMPLE_SHIFT = 3 * _AXIS_BITS + _LEVEL_BITS


def fuse_in_voxels(points: torch.Tensor, ok: torch.Tensor, latents: torch.Tensor, cell_depth: torch.Tensor,
                   memory: MemoryConfig, cell_angle: float
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Fuse context cells per world voxel with the memory's running average, frame by frame.

    The update graph's maths without its hash table (nothing is evicted from a few frames): each
    cell's voxel is the runtime's (``voxel_levels``: the edge follows ``cell_depth * cell_angle``,
    or ``memory.voxel_size`` when ``voxel_per_footprint`` is 0), the cells of one frame that share
    a voxel are summed with weight 1, and the voxel's position and latent become
    ``(w * old + sum) / (w + n)`` with the voxel's weight ``w`` capped at ``max_weight``.
    Differentiable in ``latents``.

    Args:
        points: ``(B, K, M, 3)`` world points of ``K`` context frames, in observation order.
        ok: ``(B, K, M) bool`` cells the memory takes. latents: ``(B, K, M, C)``.
        cell_depth: ``(B, K, M)`` metres along each cell's optical axis.
        cell_angle: footprint per metre of depth of a latent cell (``1 / f`` of the latent grid).

    Returns:
        ``sample (V,)`` long, ascending: the batch sample of each fused point; ``positions (V, 3)``,
        ``latents (V, C)`` and ``counts (V,)`` int32, the cells fused into each (the runtime's
        ``counts``, which its read-out's ``readout_min_count`` tests).
    """
    b, k, m, c = latents.shape
    params = {"cell_angle": cell_angle, "voxel_per_footprint": memory.voxel_per_footprint,
              "voxel_size": memory.voxel_size}
    level, edge = voxel_levels(TorchOps(points.device), cell_depth.float(), params)
    half = 1 << (_AXIS_BITS - 1)
    voxel = torch.floor(torch.where(ok[..., None], points, 0.0) / edge[..., None]).long()
    voxel = voxel.clamp(-half, half - 1) + half
    sample = torch.arange(b, device=points.device).view(b, 1, 1)
    key = (sample << _SAMPLE_SHIFT | level.long() << (3 * _AXIS_BITS) | voxel[..., 0] << (2 * _AXIS_BITS)
           | voxel[..., 1] << _AXIS_BITS | voxel[..., 2])
    keys, inverse = torch.unique(key[ok], return_inverse=True)  # (V,), (n_ok,)
    frame = torch.arange(k, device=points.device).view(1, k, 1).expand(b, k, m)[ok]
    cell_points, cell_latents = points[ok], latents[ok]
    n_voxels = keys.shape[0]
    weight = points.new_zeros(n_voxels)
    count = weight.clone()
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
        weight = torch.clamp(weight + n, max=memory.max_weight)
        count = count + n
    return keys >> _SAMPLE_SHIFT, position, latent, count.int()


@dataclass
class Sequence:
    """One recording on the training device.

    ``rgb (F, H, W, 3) uint8``, ``points (F, M, 3) float32`` world, ``ok (F, M) bool``,
    ``in_frame (F, M) bool``, ``cell_depth (F, M) float32`` (``lift_cells``) on the device;
    ``poses (F, 4, 4) float64`` ``T_world_cam`` and ``far_depth (F,) float32`` (each frame's
    ``pipeline.hole_depth``) on the host; ``rate_hz`` frames per second.
    """

    rgb: torch.Tensor
    poses: np.ndarray
    points: torch.Tensor
    ok: torch.Tensor
    in_frame: torch.Tensor
    cell_depth: torch.Tensor
    far_depth: np.ndarray
    rate_hz: float

    @classmethod
    def from_arrays(cls, data: dict, device: torch.device) -> Sequence:
        """From host arrays ``rgb, poses, points, ok, in_frame, cell_depth, far_depth, rate_hz``
        (``lift_cells`` per frame)."""
        return cls(torch.from_numpy(data["rgb"]).to(device), np.asarray(data["poses"], np.float64),
                   torch.from_numpy(data["points"]).to(device), torch.from_numpy(data["ok"]).to(device),
                   torch.from_numpy(data["in_frame"]).to(device), torch.from_numpy(data["cell_depth"]).to(device),
                   np.asarray(data["far_depth"], np.float32), float(data["rate_hz"]))

    @property
    def n_frames(self) -> int:
        return self.rgb.shape[0]


def _to_unit_chw(images: torch.Tensor) -> torch.Tensor:
    """``(..., H, W, 3) uint8`` -> ``(..., 3, H, W) float32`` in ``[0, 1]``."""
    return images.movedim(-1, -3).float() / 255.0


class MemoryTargets:
    """Training and validation batches of memory-conditioned targets (see module docstring).

    Args:
        cfg: sampling, fusion and augmentation settings.
        train, val: sequences (same image size and camera ``K`` within this source); val may be empty.
        K: the camera of every sequence, full resolution. stride: the latent stride.
        name: prefix of the validation scores (``sim_val``, ``real_val``).
    """

    def __init__(self, cfg: MemoryTaskConfig, train: list[Sequence], val: list[Sequence], K: g.Intrinsics,
                 stride: int, name: str, device: torch.device):
        self.cfg, self.train, self.val, self.name, self.device = cfg, train, val, name, device
        self.stride = stride
        self.K_latent = K.scaled(stride)
        self.cell_angle = 1.0 / float(np.sqrt(self.K_latent.fx * self.K_latent.fy))
        self.memory = MemoryConfig(channels=1, stride=stride, voxel_size=cfg.voxel_size,
                                   voxel_per_footprint=cfg.voxel_per_footprint, max_weight=cfg.max_weight)

    # --------------------------------------------------------------- sampling
    def _pick(self, seqs: list[Sequence], rng: np.random.Generator) -> tuple[int, int, int, np.ndarray]:
        """``(sequence, target frame, gap in frames, context frames (K,))`` for one sample."""
        cfg = self.cfg
        n_ctx = cfg.context_frames
        i = int(rng.integers(len(seqs)))
        seq = seqs[i]
        gap = int(round(cfg.gaps_s[rng.integers(len(cfg.gaps_s))] * seq.rate_hz))
        n = seq.n_frames
        t = int(rng.integers(gap + 1, n)) if gap + 1 < n else n - 1
        newest = max(t - gap, 0)
        spacing = max(1, int(round(RECENT_SPACING_S * seq.rate_hz)))
        recent = newest - spacing * np.arange(n_ctx // 2)
        recent = recent[recent >= 0]
        if gap == 0:
            recent = recent[1:]  # the target frame itself comes back only as an older visit
        pool = np.arange(0, max(newest - spacing * (n_ctx // 2), 0) + 1)
        if gap == 0:
            pool = pool[pool < t - 10 * spacing] if (pool < t - 10 * spacing).any() else pool
        dist = np.linalg.norm(seq.poses[pool, :3, 3] - seq.poses[t, :3, 3], axis=1)
        facing = np.einsum("kj,j->k", seq.poses[pool, :3, 2], seq.poses[t, :3, 2])
        weight = np.exp(-dist / PROXIMITY_M) * np.clip(facing, 0.05, None) + 1e-6
        n_old = min(n_ctx - len(recent), len(pool))
        old = rng.choice(pool, size=n_old, replace=False, p=weight / weight.sum())
        ctx = np.concatenate([recent, old]).astype(np.int64)
        if gap == 0 and rng.random() < 0.5:
            ctx[-1] = t  # half of the revisits see the very same pose again
        while len(ctx) < n_ctx:  # short sequences: repeat the newest frame
            ctx = np.append(ctx, ctx[0])
        return i, t, gap, np.sort(ctx)  # observation order: the fusion is a running average

    def _batch(self, seqs: list[Sequence], picks: list[tuple[int, int, int, np.ndarray]],
               rng: np.random.Generator | None) -> dict:
        """The batch of ``picks``; sensor augmentation drawn from ``rng`` (None: clean frames)."""
        frames = [(seqs[i], torch.from_numpy(ctx).to(self.device)) for i, _, _, ctx in picks]  # one copy each

        def gather(field, fn=lambda x: x):
            return torch.stack([fn(getattr(seq, field)[index]) for seq, index in frames])

        batch = {
            "context_rgb": gather("rgb", _to_unit_chw),  # (B, K, 3, H, W)
            "context_points": gather("points"),  # (B, K, M, 3)
            "context_ok": gather("ok"),  # (B, K, M)
            "context_in_frame": gather("in_frame"),  # (B, K, M)
            "context_depth": gather("cell_depth"),  # (B, K, M)
            "context_origin": torch.from_numpy(np.stack([seqs[i].poses[ctx, :3, 3] for i, _, _, ctx in picks])
                                               ).float().to(self.device),  # (B, K, 3)
            "context_far_depth": torch.from_numpy(np.stack([seqs[i].far_depth[ctx] for i, _, _, ctx in picks])
                                                  ).to(self.device),  # (B, K)
            "target_rgb": torch.stack([_to_unit_chw(seqs[i].rgb[t]) for i, t, _, _ in picks]),  # (B, 3, H, W)
            "target_pose": torch.from_numpy(np.stack([seqs[i].poses[t] for i, t, _, _ in picks])),
            "gap": torch.tensor([gap / seqs[i].rate_hz for i, _, gap, _ in picks]),  # seconds
        }
        if rng is not None and self.cfg.augment.enabled:
            augment.sensor_batch(batch, self.cfg.augment, self.K_latent.height, self.K_latent.width, rng)
        return batch

    def train_batch(self, rng: np.random.Generator) -> dict:
        picks = [self._pick(self.train, rng) for _ in range(self.cfg.batch_size)]
        return self._batch(self.train, picks, rng)

    # --------------------------------------------------------------- read-out
    def read_memory(self, batch: dict, latents: torch.Tensor):
        """``(B, K, C, h, w)`` context latents -> target's ``latent (B, C, h, w)``,
        ``valid (B, 1, h, w)``, ``depth (B, 1, h, w)``, ``offset (B, 2, h, w)``: fused per voxel
        (``fuse_in_voxels``, the runtime memory's averaging) and read out with ``read_out_torch``
        (points fused from ``readout_min_count`` cells or more);
        with ``newest_overlay``, the newest context frame's own points (one per cell, those
        without a reading at its far depth) overlaid as ``pipeline.WorldModel`` overlays them
        (``memory_maths.views.overlay``)."""
        from mirage_ros.memory_maths.readout import read_out_torch
        from mirage_ros.memory_maths.views import overlay

        b, k, c, h, w = latents.shape
        cells = latents.permute(0, 1, 3, 4, 2).reshape(b, k, h * w, c)
        sample, points, fused, counts = fuse_in_voxels(
            batch["context_points"], batch["context_ok"], cells, batch["context_depth"], self.memory, self.cell_angle)
        ends = torch.searchsorted(sample, torch.arange(1, b + 1, device=sample.device)).tolist()
        xp = TorchOps(latents.device)
        views = []
        for j, (start, end) in enumerate(zip([0] + ends[:-1], ends)):
            pose = batch["target_pose"][j]
            view = [x[None] for x in read_out_torch(points[start:end], fused[start:end], pose, self.K_latent, h, w,
                                                    counts=counts[start:end], min_count=self.cfg.readout_min_count)]
            if self.cfg.newest_overlay:  # context frames are in observation order: the last is the newest
                mine = batch["context_in_frame"][j, -1]
                newest = read_out_torch(batch["context_points"][j, -1][mine], cells[j, -1][mine], pose,
                                        self.K_latent, h, w)
                view = overlay(xp, view, [x[None] for x in newest])
            views.append(view)
        latent, valid, depth, offset = (torch.cat(parts) for parts in zip(*views))
        return latent, valid.to(latent.dtype)[:, None], depth.to(latent.dtype)[:, None], offset

    # --------------------------------------------------------------- validation
    @torch.no_grad()
    def validate(self, render) -> dict:
        """PSNR / SSIM on the held-out sequences: memory-conditioned predictions by gap
        (``{name}_psnr_gap{g}s``) and, from the target frame alone, the same pose after one frame
        (``{name}_same_pose_psnr`` whole frame, ``..._covered`` on the cells it covers).

        ``render(batch) -> (pred (B, 3, H, W), valid (B, 1, h, w))``: ``WorldModelNets.render_memory``
        of this task."""
        if not self.val:
            return {}
        rng = np.random.default_rng(VAL_RNG_SEED)
        scores: dict[str, list[float]] = {}
        for _ in range(VAL_BATCHES):
            picks = [self._pick(self.val, rng) for _ in range(self.cfg.batch_size)]
            self._score(render(self._batch(self.val, picks, None)), picks, scores, by_gap=True)
            alone = [(i, t, 0, np.array([t])) for i, t, _, _ in picks]
            self._score(render(self._batch(self.val, alone, None)), alone, scores, by_gap=False)
        return {k: float(np.mean(v)) for k, v in sorted(scores.items())}

    def _score(self, rendered, picks, scores: dict, by_gap: bool) -> None:
        pred, valid = rendered
        s = self.stride
        pred = (pred.clamp(0, 1) * 255 + 0.5).byte().permute(0, 2, 3, 1).cpu().numpy()
        target = np.stack([self.val[i].rgb[t].cpu().numpy() for i, t, _, _ in picks])
        covered = valid[:, 0].repeat_interleave(s, 1).repeat_interleave(s, 2).bool().cpu().numpy()
        for j, (i, _, gap, _) in enumerate(picks):
            psnr = metrics.psnr(pred[j], target[j])
            if by_gap:
                nearest = min(self.cfg.gaps_s, key=lambda sec: abs(sec * self.val[i].rate_hz - gap))
                tag = f"gap{nearest:g}s"
                values = {"psnr": psnr, f"psnr_{tag}": psnr, "ssim": metrics.ssim(pred[j], target[j]),
                          "psnr_covered": metrics.psnr(pred[j], target[j], covered[j])}
            else:
                values = {"same_pose_psnr": psnr,
                          "same_pose_psnr_covered": metrics.psnr(pred[j], target[j], covered[j]),
                          "same_pose_coverage": float(covered[j].mean())}
            for key, value in values.items():
                if np.isfinite(value):
                    scores.setdefault(f"{self.name}_{key}", []).append(value)
