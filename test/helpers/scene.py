"""Analytic test scene for the memory tests: a camera inside an axis-aligned box room.

Depth is exact (ray/box intersection), so tests know where every cell must land.
"""

import numpy as np

from mirage_ros import geometry as g

ROOM = np.array([3.0, 2.0, 1.5])  # half extents, metres; the room is centred at the origin


def look_at(eye, target, up=(0.0, 0.0, 1.0)) -> np.ndarray:
    """``T_world_cam`` (optical frame: x right, y down, z forward) at ``eye`` looking at ``target``."""
    eye, target = np.asarray(eye, float), np.asarray(target, float)
    z = target - eye
    z /= np.linalg.norm(z)
    x = np.cross(z, up)
    x /= np.linalg.norm(x)
    T = np.eye(4)
    T[:3, :3] = np.stack([x, np.cross(z, x), z], axis=1)
    T[:3, 3] = eye
    return T


def box_room_depth(K: g.Intrinsics, T_world_cam: np.ndarray, half=ROOM) -> np.ndarray:
    """``(H, W) float32`` z-depth of the room's walls seen from ``T_world_cam`` (inside the room)."""
    u, v = g.pixel_grid(K)
    rays_cam = np.stack([(u - K.cx) / K.fx, (v - K.cy) / K.fy, np.ones_like(u)], -1)  # z = 1
    rays = rays_cam @ T_world_cam[:3, :3].T
    origin = T_world_cam[:3, 3]
    with np.errstate(divide="ignore"):
        t = np.where(rays > 0, (half - origin) / rays, (-half - origin) / rays)
    return np.min(np.where(np.isfinite(t) & (t > 0), t, np.inf), axis=-1).astype(np.float32)
