"""Memory configuration and the read-out result."""

from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass

import numpy as np

from mirage_ros.errors import InvalidInput
from mirage_ros.memory import layout as L


def _largest_prime_at_most(n: int) -> int:
    """Largest prime <= n (n >= 2). A prime bucket count keeps the additive voxel hash's bucket
    (mod n) independent of the way hash (mod 8); a power of two correlates them."""
    for candidate in range(n, 1, -1):
        if candidate < 4 or all(candidate % d for d in range(2, math.isqrt(candidate) + 1)):
            return candidate
    raise InvalidInput("capacity_points", f"too small: {n * L.WAYS}")


@dataclass(frozen=True)
class MemoryConfig:
    """Latent memory parameters.

    Args:
        channels: latent channels ``C`` of the encoder.
        stride: latent stride ``s`` (pixels per cell side); one of 2, 4, 8, 16.
        capacity_points: hard cap on stored points. The table holds ``slots`` <= this many:
            ``8 * p`` with ``p`` the largest prime <= ``capacity_points / 8`` (8-way buckets).
        voxel_size: the finest fusion voxel edge, metres. Cells whose points fall in one voxel are
            fused (weighted running average), so memory grows with the surface seen, not with path
            length.
        voxel_per_footprint: a cell's voxel follows the camera: its edge is the largest
            ``voxel_size * 2**k`` (``k`` < ``layout.LEVELS``) within this fraction of the cell's
            footprint ``stride * depth / f``, so the memory keeps the cells the camera resolves,
            near and far, at any image size, and the same surface seen again from about as far
            fuses into the same voxels. Below 1 / sqrt(3) no two cells of one frame can share a
            voxel; at 1 (default) one frame read out at its own pose still fills 97-100 % of its
            cells with depth (planes at 0.4-6 m, 320x240 and 640x480; TUM fr1_rpy frames), with
            half the points of 0.5 (1.03 M against 2.34 M over a 1000-frame corridor loop) and
            better held-out ``eval-sim`` scores (docs/evaluation.md); above 1 cells merge (0.87 at
            1.41, 0.71 at 2 on TUM frames).
            0 = one fixed voxel of ``voxel_size`` (cells nearer than ``voxel_size * f / stride``
            then merge: 5 cm swallows about 20 stride-4 cells of a 640x480 camera at 1.5 m).
        min_depth, max_depth: depth readings outside ``(min_depth, max_depth)`` metres are ignored
            (Kinect-class sensors are unreliable past ~5-8 m).
        depth_rel_gap, depth_min_fraction: edge-aware pooling, see ``geometry.pool_depth``.
        dynamic_max_fraction: a cell is dynamic, and skipped, when more than this fraction of its
            pixels are flagged in ``dynamic_mask``. 0 (default) = any flagged pixel: moving objects
            never leak into memory through a cell they partly cover.
        max_weight: confidence cap. Past it the running average becomes an exponential moving
            average with rate ``1 / max_weight``, so the memory can follow a changed scene.
        near: read-out near plane, metres (points closer to the target camera are ignored).
        readout_min_count: the read-out draws only points fused from at least this many
            observations (``counts``; 1 = all). A point seen once is most often a person walking
            through (their points move on every frame) or sensor noise; static surfaces are seen
            again at once. 2 improved revisit PSNR of every memory in ``eval-dynamics`` (tuning
            seeds 1000, 5-8, 1001, Kinect-like noise: +0.35 to +1.4 dB with the detector in the
            loop, +0.24 to +0.42 dB for the people-free run) and halved the gap between them on
            seed 8; with exact depth (``eval-sim``, validation seed 1000, corridor and office) it
            changed future views and revisits by -0.02 to +0.16 dB.
        carve: free-space carving (``memory_maths/carve.py``): before each update, stored points that
            the live depth sees through lose ``carve_decrement`` of weight and are removed at 0,
            so people the detector missed, opened doors and moved objects do not stay forever.
        carve_margin, carve_rel_margin: a point at depth ``z`` is seen through where the live
            depth around its pixel exceeds ``z + carve_margin + carve_rel_margin * z`` metres
            (Kinect-class noise, pose and voxel rounding grow with range).
        carve_min_valid_fraction: a latent cell takes part only when at least this share of its
            pixels has a reading (depth holes are unknown, not free space); in (0, 1].
        carve_decrement: weight a point loses per frame it is seen through. Weights count the
            frames a point was observed in (capped at ``max_weight``), so 1 weighs a frame that
            sees through a point like one that sees it: something that stood for ``n`` frames
            goes after about ``n`` frames of free space. Each point is tested every
            ``layout.SLICES``-th frame and then loses ``SLICES * carve_decrement`` at once, so one
            bad frame removes only points seen in at most that many frames.
    """

    channels: int
    stride: int = 8
    capacity_points: int = 200_000
    voxel_size: float = 0.002
    voxel_per_footprint: float = 1.0
    min_depth: float = 0.1
    max_depth: float = 10.0
    depth_rel_gap: float = 0.05
    depth_min_fraction: float = 0.25
    dynamic_max_fraction: float = 0.0
    max_weight: float = 20.0
    near: float = 0.05
    readout_min_count: int = 2
    carve: bool = True
    carve_margin: float = 0.1
    carve_rel_margin: float = 0.05
    carve_min_valid_fraction: float = 0.5
    carve_decrement: float = 1.0

    def __post_init__(self) -> None:
        for name in ("channels", "stride", "capacity_points", "readout_min_count"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise InvalidInput(name, f"must be a positive integer, got {value!r}")
        if self.stride not in L.STRIDES:
            raise InvalidInput("stride", f"must be one of {L.STRIDES}, got {self.stride}")
        if not 2 * L.WAYS <= self.capacity_points < L.WAYS << 24:
            raise InvalidInput("capacity_points", f"must be in [{2 * L.WAYS}, {L.WAYS << 24}), "
                                                  f"got {self.capacity_points}")
        for name in ("voxel_size", "voxel_per_footprint", "min_depth", "max_depth", "depth_rel_gap", "max_weight", "near",
                     "carve_margin", "carve_rel_margin", "carve_min_valid_fraction", "carve_decrement"):
            value = getattr(self, name)
            if not isinstance(value, (int, float, np.number)) or not math.isfinite(value) or value < 0:
                raise InvalidInput(name, f"must be a finite number >= 0, got {value!r}")
        for name in ("voxel_size", "max_depth", "depth_rel_gap"):
            if getattr(self, name) <= 0:
                raise InvalidInput(name, f"must be > 0, got {getattr(self, name)}")
        if self.max_depth <= self.min_depth:
            raise InvalidInput("max_depth", f"must exceed min_depth {self.min_depth}, got {self.max_depth}")
        if self.max_weight < 1:
            raise InvalidInput("max_weight", f"must be >= 1, got {self.max_weight}")
        if not 0 < self.depth_min_fraction <= 1:
            raise InvalidInput("depth_min_fraction", f"must be in (0, 1], got {self.depth_min_fraction}")
        if not 0 <= self.dynamic_max_fraction < 1:
            raise InvalidInput("dynamic_max_fraction", f"must be in [0, 1), got {self.dynamic_max_fraction}")
        if not isinstance(self.carve, (bool, np.bool_)):
            raise InvalidInput("carve", f"must be True or False, got {self.carve!r}")
        if not 0 < self.carve_min_valid_fraction <= 1:
            raise InvalidInput("carve_min_valid_fraction",
                               f"must be in (0, 1], got {self.carve_min_valid_fraction}")
        if self.carve_decrement <= 0:
            raise InvalidInput("carve_decrement", f"must be > 0, got {self.carve_decrement}")

    @functools.cached_property
    def slots(self) -> int:
        """Points the table can hold (the hard cap actually used, <= ``capacity_points``)."""
        return L.WAYS * _largest_prime_at_most(self.capacity_points // L.WAYS)

    def update_params(self, stamp: float, K_latent, hole_depth: float = 0.0) -> np.ndarray:
        """The update graph's ``params`` input, ``(len(layout.UPDATE_PARAMS),) float32``, for a
        frame at ``stamp`` (seconds since the memory's epoch) on the latent grid ``K_latent``;
        ``hole_depth``: where the frame's points put cells without a reading (0: left out)."""
        values = {"stamp": stamp, "voxel_size": self.voxel_size, "voxel_per_footprint": self.voxel_per_footprint,
                  "cell_angle": 1.0 / math.sqrt(K_latent.fx * K_latent.fy), "min_depth": self.min_depth,
                  "max_depth": self.max_depth, "rel_gap": self.depth_rel_gap, "min_fraction": self.depth_min_fraction,
                  "dynamic_max_fraction": self.dynamic_max_fraction, "max_weight": self.max_weight,
                  "n_buckets": self.slots // L.WAYS, "hole_depth": hole_depth}
        return np.array([values[name] for name in L.UPDATE_PARAMS], np.float32)

    @property
    def bytes_per_point(self) -> int:
        """Bytes one stored point takes: position 12, latent 2C, weight, last-seen, count 4 each, key 8."""
        return 12 + 2 * self.channels + 4 + 4 + 4 + 8

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Readout:
    """Memory rendered at a target camera, at latent resolution.

    Attributes:
        latent: ``(C, h, w) float32`` warped latent, 0 where not ``valid``.
        valid: ``(h, w) bool``, True where a stored point won the z-test in that cell.
        depth: ``(h, w) float32`` z-depth in the target camera frame of the winning point, metres
            (0 where not ``valid``).
        offset: ``(2, h, w) float32`` where the winning point projects inside its cell, ``(du, dv)``
            in cells from the cell centre, in ``[-0.5, 0.5)`` (0 where not ``valid``); None from
            read-outs that place content exactly on cells (re-encoded pictures).
    """

    FIELDS = ("latent", "valid", "depth", "offset")

    latent: np.ndarray
    valid: np.ndarray
    depth: np.ndarray
    offset: np.ndarray | None = None
