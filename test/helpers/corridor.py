"""An analytic corridor for the moving-object tests: ray-cast planes and boxes, exact depth."""

from __future__ import annotations

import numpy as np

from mirage_ros.geometry import Intrinsics

K = Intrinsics(120.0, 120.0, 79.5, 59.5, 160, 120)
RATE = 10.0

# Corridor planes, world = optical-like frame (x right, y down, z forward): (axis, value).
PLANES = [(1, 1.2), (1, -1.3), (0, -1.5), (0, 1.5), (2, 12.0)]


def pose(x=0.0, z=0.0, yaw_deg=0.0):
    c, s = np.cos(np.radians(yaw_deg)), np.sin(np.radians(yaw_deg))
    T = np.eye(4)
    T[:3, :3] = [[c, 0, s], [0, 1, 0], [-s, 0, c]]
    T[:3, 3] = [x, 0.0, z]
    return T


def render(T, boxes=(), K=K):
    """Ray-cast the corridor and axis-aligned ``boxes`` ``((lo xyz), (hi xyz))``.

    Returns rgb (H,W,3) uint8, depth (H,W) float32 (z along the optical axis), ids (H,W) int
    (0 = corridor, i+1 = box i).
    """
    v, u = np.mgrid[0 : K.height, 0 : K.width].astype(np.float64)
    d_cam = np.stack([(u - K.cx) / K.fx, (v - K.cy) / K.fy, np.ones_like(u)], -1)
    d = d_cam @ T[:3, :3].T
    o = T[:3, 3]
    t_best = np.full(u.shape, np.inf)
    colour = np.zeros(u.shape + (3,))
    ids = np.zeros(u.shape, int)
    with np.errstate(divide="ignore", invalid="ignore"):
        for k, (axis, value) in enumerate(PLANES):
            t = (value - o[axis]) / d[..., axis]
            hit = (t > 0) & (t < t_best)
            p = o + t[..., None] * d
            a, b = [p[..., i] for i in range(3) if i != axis]
            tex = 0.5 + 0.2 * np.sin(2.5 * a) * np.sin(2.5 * b) + 0.1 * ((np.floor(a) + np.floor(b)) % 2)
            tint = np.array([0.9, 0.8, 0.7]) if k % 2 else np.array([0.6, 0.7, 0.9])
            t_best = np.where(hit, t, t_best)
            colour = np.where(hit[..., None], tex[..., None] * tint, colour)
        for i, (lo, hi) in enumerate(boxes):
            t1 = (np.asarray(lo) - o) / d
            t2 = (np.asarray(hi) - o) / d
            t_near = np.nanmax(np.minimum(t1, t2), axis=-1)
            t_far = np.nanmin(np.maximum(t1, t2), axis=-1)
            hit = (t_near > 0) & (t_near <= t_far) & (t_near < t_best)
            p = o + t_near[..., None] * d
            tex = 0.35 + 0.1 * np.sin(8 * p[..., 1])
            t_best = np.where(hit, t_near, t_best)
            colour = np.where(hit[..., None], tex[..., None] * np.array([1.0, 0.3, 0.25]), colour)
            ids = np.where(hit, i + 1, ids)
    depth = np.where(np.isfinite(t_best), t_best, 0.0).astype(np.float32)
    return (np.clip(colour, 0, 1) * 255).astype(np.uint8), depth, ids


def person(x, z=5.0, width=0.5):
    return ((x - width / 2, -0.5, z - 0.2), (x + width / 2, 1.2, z + 0.2))
