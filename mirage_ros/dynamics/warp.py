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
