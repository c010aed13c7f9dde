"""Out-of-view recall targets: views the recent frames did not see and an older frame did.

A memory earns its place on such views (the camera turned away, went round a corner, came back):
a warp of the newest frames cannot show them. A future target ``j`` predicted at anchor time
``t`` is a recall target when

- the frames of the ``window`` seconds up to ``t`` together saw less than ``recent_max`` of its
  view, and
- some frame older than that alone saw more than ``old_min`` of it.

"Sees" is decided by depth reprojection on a coarse sample of the target's pixels (one every
``SAMPLE_PX`` pixels each way, with depth): the sample point, lifted by the target's depth and pose,
projects into the other frame's image, in front of its camera, where that frame's depth agrees
within ``AGREE_M + AGREE_REL * z`` (nearer there: occluded; farther: the surface was not there).
Frames are kept at most every ``KEEP_EVERY_S`` seconds with their depth at a quarter of the
resolution, so a long recording costs megabytes and a check microseconds per kept frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mirage_ros.geometry import Intrinsics, invert_pose, project, transform_points

SAMPLE_PX = 16  # target sample spacing, pixels
DEPTH_SCALE = 4  # kept depth maps: one pixel in DEPTH_SCALE x DEPTH_SCALE
KEEP_EVERY_S = 0.1  # kept frames at most this often
AGREE_M, AGREE_REL = 0.05, 0.05  # depth agreement: |d - z| <= AGREE_M + AGREE_REL * z
MIN_SAMPLES = 20  # targets with fewer sample points with depth are never recall targets


@dataclass
class _Kept:
    stamp: float
    T_cam_world: np.ndarray  # (4, 4)
    K: Intrinsics
    depth: np.ndarray  # (H / DEPTH_SCALE, W / DEPTH_SCALE) float32, 0 = no reading


@dataclass
class ViewCoverage:
    """Frames seen so far, as coarse depth; answers how much of a new view they saw.

    Args:
        window: seconds of recent frames (``ScoreConfig.recall_window``).
        recent_max: largest share of the view the recent frames may see.
        old_min: share of the view one older frame must have seen.
    """

    window: float = 3.0
    recent_max: float = 0.1
    old_min: float = 0.5
    kept: list[_Kept] = field(default_factory=list)

    def add(self, stamp: float, depth: np.ndarray, K: Intrinsics, T_world_cam: np.ndarray) -> None:
        """Keep a frame (``depth (H, W)`` metres, 0 / NaN = none) unless one was kept within
        ``KEEP_EVERY_S``."""
        if self.kept and stamp - self.kept[-1].stamp < KEEP_EVERY_S - 1e-6:
            return
        coarse = np.nan_to_num(np.asarray(depth, np.float32)[::DEPTH_SCALE, ::DEPTH_SCALE], nan=0.0)
        self.kept.append(_Kept(float(stamp), invert_pose(T_world_cam), K, coarse))

    def shares(self, anchor: float, depth: np.ndarray, K: Intrinsics, T_world_cam: np.ndarray
               ) -> tuple[float, float] | None:
        """``(recent, best_old)``: the share of the view at ``T_world_cam`` (its ``depth``) that the
        kept frames of the ``window`` seconds up to ``anchor`` saw together, and the largest share
        one older frame saw (frames after ``anchor`` do not count); None when the view has too few
        sample points with depth."""
        points = _sample_points(depth, K, T_world_cam)
        if len(points) < MIN_SAMPLES:
            return None
        recent, old = self._split(anchor)
        return _union_share(points, recent), max((float(_seen_by(points, k).mean()) for k in old), default=0.0)

    def is_recall(self, anchor: float, depth: np.ndarray, K: Intrinsics, T_world_cam: np.ndarray) -> bool:
        """Whether the view, predicted at ``anchor``, is a recall target (module doc). Decided as
        :meth:`shares` would, but the few recent frames first and the older ones only until one
        saw enough: most targets were just seen, and a long recording keeps thousands of frames."""
        points = _sample_points(depth, K, T_world_cam)
        if len(points) < MIN_SAMPLES:
            return False
        recent, old = self._split(anchor)
        return (_union_share(points, recent) < self.recent_max
                and any(_seen_by(points, k).mean() > self.old_min for k in old))

    def seen_share(self, anchor: float, depth: np.ndarray, K: Intrinsics, T_world_cam: np.ndarray) -> float | None:
        """The share of the view's sample points with depth that any kept frame up to ``anchor``
        saw: what a memory of everything seen could at most cover there (None: too few points)."""
        points = _sample_points(depth, K, T_world_cam)
        if len(points) < MIN_SAMPLES:
            return None
        recent, old = self._split(anchor)
        return _union_share(points, old + recent)

    def _split(self, anchor: float) -> tuple[list[_Kept], list[_Kept]]:
        """Kept frames up to ``anchor``: those of the last ``window`` seconds, and the older ones."""
        upto = [k for k in self.kept if k.stamp <= anchor]
        recent = [k for k in upto if anchor - k.stamp <= self.window]
        return recent, upto[: len(upto) - len(recent)]


def _union_share(points: np.ndarray, frames: list[_Kept]) -> float:
    """Share of ``points`` that at least one of ``frames`` saw."""
    seen = np.zeros(len(points), bool)
    for kept in frames:
        seen |= _seen_by(points, kept)
    return float(seen.mean())


def _sample_points(depth: np.ndarray, K: Intrinsics, T_world_cam: np.ndarray) -> np.ndarray:
    """``(N, 3)`` world points of the target's sample pixels with depth."""
    half = SAMPLE_PX // 2
    v, u = np.mgrid[half:K.height:SAMPLE_PX, half:K.width:SAMPLE_PX]
    z = np.asarray(depth, np.float32)[v, u]
    ok = np.isfinite(z) & (z > 0)
    u, v, z = u[ok], v[ok], z[ok]
    cam = np.stack([(u - K.cx) / K.fx * z, (v - K.cy) / K.fy * z, z], axis=1)
    return cam @ T_world_cam[:3, :3].T + T_world_cam[:3, 3]


def _seen_by(points: np.ndarray, kept: _Kept) -> np.ndarray:
    """``(N,) bool``: which world points ``kept`` saw (in its image, depth agreeing)."""
    uv, z = project(transform_points(kept.T_cam_world, points), kept.K)
    with np.errstate(invalid="ignore"):  # behind the camera: NaN, never inside
        u, v = np.floor((uv + 0.5) / DEPTH_SCALE).T
    h, w = kept.depth.shape
    inside = (u >= 0) & (u < w) & (v >= 0) & (v < h)
    d = np.zeros(len(points), np.float32)
    d[inside] = kept.depth[v[inside].astype(int), u[inside].astype(int)]
    return inside & (d > 0) & (np.abs(d - z) <= AGREE_M + AGREE_REL * z)
