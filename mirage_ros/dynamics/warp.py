"""Ego-motion compensation: where does each pixel of the current frame land in an earlier one?

Backward warp: every current pixel with a depth reading is lifted to 3D, moved into the earlier
camera and projected there; the earlier frame is then *sampled* at that pixel. One gather per
pixel (no z-buffer, no holes), cheap enough for every frame. Used by the detector's frame-to-frame
motion cue and by the frame-differencing baseline. Frames follow docs/architecture.md
(``T_world_cam`` maps optical-frame points to the world).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from mirage_ros.dynamics.cues import depth_sigma
from mirage_ros.geometry import Intrinsics, backproject, invert_pose, valid_depth


@dataclass(frozen=True)
class Reprojection:
    """Current pixels seen from an earlier (source) camera, all ``(H, W)`` like the current image.

    Attributes:
        rows, cols: ``int64`` nearest source pixel of each current pixel (clipped into the image).
        z: ``float32`` depth of each current pixel's 3D point in the source optical frame, metres.
        valid: ``bool``, the current pixel has depth and projects in front of and inside the source.
    """

    rows: np.ndarray
    cols: np.ndarray
    z: np.ndarray
    valid: np.ndarray

    def sample(self, source: np.ndarray) -> np.ndarray:
        """``source`` ``(H_s, W_s, ...)`` gathered at each current pixel: ``(H, W, ...)``."""
        return np.asarray(source)[self.rows, self.cols]


def reproject(
    depth: np.ndarray,
    K: Intrinsics,
    T_world_cam: np.ndarray,
    K_source: Intrinsics,
    T_world_source: np.ndarray,
) -> Reprojection:
    """Project every pixel of the current depth image into a source camera.

    Args:
        depth: ``(H, W)`` current depth, metres, ``K.shape``; 0/NaN = no reading.
        K, T_world_cam: current intrinsics and ``(4, 4)`` pose.
        K_source, T_world_source: the source camera's intrinsics and ``(4, 4)`` pose.

    Returns:
        :class:`Reprojection`.
    """
    ok = valid_depth(depth)
    points = backproject(np.where(ok, depth, 0.0), K)
    T_src_cam = invert_pose(T_world_source) @ np.asarray(T_world_cam, dtype=np.float64)
    p = points @ T_src_cam[:3, :3].T + T_src_cam[:3, 3]
    z = p[..., 2]
    in_front = ok & (z > 1e-6)
    safe_z = np.where(in_front, z, 1.0)
    u = np.rint(K_source.fx * p[..., 0] / safe_z + K_source.cx)
    v = np.rint(K_source.fy * p[..., 1] / safe_z + K_source.cy)
    inside = in_front & (u >= 0) & (u < K_source.width) & (v >= 0) & (v < K_source.height)
    rows = np.clip(v, 0, K_source.height - 1).astype(np.int64)
    cols = np.clip(u, 0, K_source.width - 1).astype(np.int64)
    return Reprojection(rows, cols, np.where(inside, z, 0.0).astype(np.float32), inside)


def depth_bounds(depth: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """``(nearest, farthest)`` depth reading in the ``window`` around each pixel, ``(H, W)``
    (``inf`` / 0 where the window has no reading): what :func:`depth_change` compares with."""
    ok = valid_depth(depth)
    nearest = ndimage.minimum_filter(np.where(ok, depth, np.inf), size=window, mode="nearest")
    farthest = ndimage.maximum_filter(np.where(ok, depth, 0.0), size=window, mode="nearest")
    return nearest, farthest


def depth_change(
    depth: np.ndarray,
    K: Intrinsics,
    T_world_cam: np.ndarray,
    previous_depth: np.ndarray,
    K_previous: Intrinsics,
    T_world_previous: np.ndarray,
    window: int,
    sigma: tuple[float, float, float],
    n_sigma: float,
    max_step: float,
    previous_bounds: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Where did the scene change along the same 3D ray since an earlier frame (ego-motion removed)?

    Each current point is seen from the earlier camera: if it is nearer than everything the
    earlier frame saw around that pixel (something moved in), or farther than all of it by at
    most ``max_step`` (a surface moving away), the pixel changed. A larger increase is a
    disocclusion (the background revealed behind something that left) and does not count: it
    says nothing about the surface seen now. The window absorbs edges and misregistration.

    Args:
        depth: ``(H, W)`` current depth, metres; ``K``, ``T_world_cam`` its camera.
        previous_depth: ``(H_p, W_p)`` earlier depth; ``K_previous``, ``T_world_previous`` its camera.
        window: odd window side, earlier-frame pixels.
        sigma: ``(base, quadratic, relative)`` depth noise (``cues.depth_sigma``).
        n_sigma: change threshold in sigmas.
        max_step: largest distance (metres) a surface can recede between the two frames.
        previous_bounds: ``depth_bounds(previous_depth, window)`` when the caller keeps it
            (an earlier frame is compared with several later ones); computed here if None.

    Returns:
        ``(changed, covered)``, ``(H, W) bool``: changed pixels, and pixels the earlier frame
        gives a comparison for.
    """
    seen = reproject(depth, K, T_world_cam, K_previous, T_world_previous)
    if previous_bounds is None:
        previous_bounds = depth_bounds(previous_depth, window)
    nearest, farthest = previous_bounds
    lo, hi = seen.sample(nearest), seen.sample(farthest)
    covered = seen.valid & np.isfinite(lo)
    with np.errstate(invalid="ignore"):
        tolerance = n_sigma * depth_sigma(seen.z, *sigma)
        receded = (seen.z > hi + tolerance) & (seen.z < hi + tolerance + max_step)
        changed = covered & ((seen.z < lo - tolerance) | receded)
    return changed, covered
