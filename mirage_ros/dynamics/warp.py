"""Ego-motion warp: re-project one RGB-D frame into another camera (forward splat, z-buffer).

Used by the frame-to-frame motion cue of the detector and by the frame-differencing baseline.
Pure numpy; frames follow docs/architecture.md (``T_world_cam`` maps optical-frame points to world).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mirage_ros.geometry import Intrinsics, backproject, invert_pose, project, valid_depth


@dataclass(frozen=True)
class WarpedFrame:
    """A source frame seen from a destination camera.

    Attributes:
        depth: ``(H, W) float32`` z-depth in the destination optical frame; 0 where nothing landed.
        values: ``(H, W, C)`` source values (e.g. RGB) carried along, same dtype as given; zeros
            where nothing landed. ``None`` when no values were given.
        valid: ``(H, W) bool``, True where a source point landed (nearest one wins).
    """

    depth: np.ndarray
    values: np.ndarray | None
    valid: np.ndarray


def warp_frame(
    depth_src: np.ndarray,
    K_src: Intrinsics,
    T_world_src: np.ndarray,
    K_dst: Intrinsics,
    T_world_dst: np.ndarray,
    values_src: np.ndarray | None = None,
) -> WarpedFrame:
    """Forward-warp a depth image (and optional per-pixel values) into another camera.

    Every source pixel with a depth reading is lifted to 3D, moved into the destination optical
    frame and splatted onto its nearest destination pixel; where several land on one pixel the
    nearest wins (z-buffer). One pixel per point, so zooming in leaves holes (``valid`` False):
    callers compare only where ``valid``.

    Args:
        depth_src: ``(H_s, W_s)`` metres, shape ``K_src.shape``; 0/NaN = no reading.
        K_src, T_world_src: source intrinsics and ``(4, 4)`` pose.
        K_dst, T_world_dst: destination intrinsics and ``(4, 4)`` pose.
        values_src: optional ``(H_s, W_s, C)`` array carried with each point.

    Returns:
        :class:`WarpedFrame` of shape ``K_dst.shape``.
    """
    ok = valid_depth(depth_src)
    points_src = backproject(np.where(ok, depth_src, 0.0), K_src)[ok]
    T_dst_src = invert_pose(T_world_dst) @ np.asarray(T_world_src, dtype=np.float64)
    points_dst = points_src @ T_dst_src[:3, :3].T + T_dst_src[:3, 3]
    uv, z = project(points_dst, K_dst)
    with np.errstate(invalid="ignore"):
        u = np.rint(uv[:, 0])
        v = np.rint(uv[:, 1])
        inside = (z > 0) & (u >= 0) & (u < K_dst.width) & (v >= 0) & (v < K_dst.height)
    flat = (v[inside] * K_dst.width + u[inside]).astype(np.int64)
    z_in = z[inside]
    order = np.argsort(z_in, kind="stable")
    winners_flat, first = np.unique(flat[order], return_index=True)
    winners = order[first]

    depth = np.zeros(K_dst.height * K_dst.width, np.float32)
    depth[winners_flat] = z_in[winners]
    valid = np.zeros(K_dst.height * K_dst.width, bool)
    valid[winners_flat] = True
    values = None
    if values_src is not None:
        src = np.asarray(values_src)
        src = src.reshape(src.shape[0], src.shape[1], -1)[ok][inside]
        values = np.zeros((K_dst.height * K_dst.width, src.shape[1]), src.dtype)
        values[winners_flat] = src[winners]
        values = values.reshape(K_dst.height, K_dst.width, -1)
    return WarpedFrame(depth.reshape(K_dst.shape), values, valid.reshape(K_dst.shape))
