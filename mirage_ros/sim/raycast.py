"""Reference ray caster: every pixel against every prism in full 3D (slow, obviously correct).

It shares nothing with the column renderer but the scene description, so it checks it (tests)
and is the baseline the renderer benchmark compares against. Depth only.
"""

from __future__ import annotations

import numpy as np

from mirage_ros.geometry import Intrinsics
from mirage_ros.sim.scene import NEAR, Prisms, Scene


def raycast_depth(
    scene: Scene, K: Intrinsics, T_world_cam: np.ndarray, dynamic: Prisms | None = None, max_range: float = 10.0
) -> np.ndarray:
    """Optical-z depth ``(H, W) float32`` (0 beyond ``max_range``) of ``scene`` from ``T_world_cam``."""
    u, v = np.meshgrid(np.arange(K.width), np.arange(K.height))
    rays = np.stack([(u - K.cx) / K.fx, (v - K.cy) / K.fy, np.ones(u.shape)], axis=-1).reshape(-1, 3)
    d = rays @ T_world_cam[:3, :3].T  # world directions; the optical z of p(t) = o + t d is t
    o = T_world_cam[:3, 3]
    with np.errstate(divide="ignore", invalid="ignore"):
        best = np.full(len(d), np.inf)
        for plane in (0.0, scene.ceiling):
            t = (plane - o[2]) / d[:, 2]
            best = np.where((t > NEAR) & (t < best), t, best)
        prisms = scene.walls.concat(scene.objects)
        if dynamic is not None:
            prisms = prisms.concat(dynamic)
        for k in range(len(prisms)):
            ox, oy = o[0] - prisms.cx[k], o[1] - prisms.cy[k]
            zlo = (prisms.z0[k] - o[2]) / d[:, 2]
            zhi = (prisms.z1[k] - o[2]) / d[:, 2]
            t0, t1 = np.minimum(zlo, zhi), np.maximum(zlo, zhi)
            if prisms.cyl[k]:
                a = d[:, 0] ** 2 + d[:, 1] ** 2
                b = d[:, 0] * ox + d[:, 1] * oy
                disc = b * b - a * (ox * ox + oy * oy - prisms.hx[k] ** 2)
                root = np.sqrt(np.maximum(disc, 0))
                lo = np.where(disc > 0, (-b - root) / a, np.inf)
                hi = np.where(disc > 0, (-b + root) / a, -np.inf)
                t0, t1 = np.maximum(t0, lo), np.minimum(t1, hi)
            else:
                c, s = np.cos(prisms.yaw[k]), np.sin(prisms.yaw[k])
                for lo_, dl, h in (
                    (ox * c + oy * s, d[:, 0] * c + d[:, 1] * s, prisms.hx[k]),
                    (-ox * s + oy * c, -d[:, 0] * s + d[:, 1] * c, prisms.hy[k]),
                ):
                    ta, tb = (-h - lo_) / dl, (h - lo_) / dl
                    t0, t1 = np.maximum(t0, np.minimum(ta, tb)), np.minimum(t1, np.maximum(ta, tb))
            hit = (t0 <= t1) & (t0 > NEAR) & (t0 < best)
            best = np.where(hit, t0, best)
    depth = np.where(best <= max_range, best, 0.0)
    return depth.reshape(K.height, K.width).astype(np.float32)
