"""The simulated RGB-D camera: a robot driving a procedural scene among walking people.

Frames (REP-103/105): ``map`` is the world frame (z up). ``odom`` is where the robot started
(``T_map_odom`` = base pose at t = 0, static). ``base_link`` is the robot on the floor (x forward),
``camera_link`` sits ``CAMERA_FORWARD`` m ahead of it at ``camera_height``, level, and
``camera_optical_frame`` is the optical frame (x right, y down, z forward) every ``T_world_cam``
refers to. Time ``t`` is seconds since the start of the simulation (frame ``i`` at ``i / rate_hz``).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from mirage_ros.errors import InvalidInput
from mirage_ros.geometry import T_LINK_OPTICAL, Intrinsics, compose, invert_pose
from mirage_ros.sim.config import SimConfig
from mirage_ros.sim.families import make_scene
from mirage_ros.sim.motion import RobotPath, Walkers
from mirage_ros.sim.render import ColumnRenderer
from mirage_ros.sim.scene import Scene
from mirage_ros.sim.sensor import KinectModel

CAMERA_FORWARD = 0.1  # metres: camera_link ahead of base_link
MAP, ODOM, BASE, CAMERA_LINK, OPTICAL = "map", "odom", "base_link", "camera_link", "camera_optical_frame"


@dataclass(frozen=True)
class Frame:
    """One simulated RGB-D frame with ground truth.

    stamp: seconds since the simulation start. rgb ``(H, W, 3) uint8``. depth ``(H, W) float32``
    metres along the optical z axis, 0 = no return (REP-118). K: intrinsics (depth is registered
    to colour). T_world_cam ``(4, 4) float64``: optical frame -> map. motion_mask ``(H, W) bool``:
    pixels of people walking at this instant. instance_ids ``(H, W) int32``: 0 = static
    background, k = person k (also while standing still).
    """

    stamp: float
    rgb: np.ndarray
    depth: np.ndarray
    K: Intrinsics
    T_world_cam: np.ndarray
    motion_mask: np.ndarray
    instance_ids: np.ndarray


@functools.lru_cache(maxsize=8)
def cached_scene(family: str, seed: int) -> Scene:
    """Scenes are immutable once built; share them between simulators."""
    return make_scene(family, seed)


def _planar(x: float, y: float, yaw: float, z: float = 0.0) -> np.ndarray:
    c, s = math.cos(yaw), math.sin(yaw)
    return np.array([[c, -s, 0, x], [s, c, 0, y], [0, 0, 1, z], [0, 0, 0, 1.0]])


class Simulator:
    """Procedural scene + robot path + actors + renderer for one :class:`SimConfig`.

    Everything is a pure function of ``(config, t)``: frames can be rendered in any order, and two
    simulators with the same config produce byte-identical frames.
    """

    def __init__(self, config: SimConfig | None = None):
        self.config = cfg = config or SimConfig()
        self.scene = cached_scene(cfg.scene, cfg.seed)
        fx = (cfg.width / 2) / math.tan(math.radians(cfg.hfov_deg) / 2)
        self.K = Intrinsics(fx, fx, (cfg.width - 1) / 2, (cfg.height - 1) / 2, cfg.width, cfg.height)
        self.renderer = ColumnRenderer(self.scene, self.K, cfg.max_range)
        route = self.scene.routes["loop" if cfg.path == "pan" else cfg.path]  # pan: the loop, with stops
        self.path = RobotPath(route, cfg.path, cfg.speed)
        self.walkers = Walkers(self.scene, cfg.actor_count, cfg.seed, self.scene.materials,
                               robot=self.camera_xy)
        self.sensor = KinectModel() if cfg.noise == "kinect" else None
        self.T_base_camlink = _planar(CAMERA_FORWARD, 0.0, 0.0, cfg.camera_height)
        self.T_base_cam = self.T_base_camlink @ T_LINK_OPTICAL
        self.T_map_odom = _planar(*self.path.base_pose(0.0))

    def camera_xy(self, t: float) -> np.ndarray:
        """``(2,)`` map position of camera_link at time ``t`` (what people keep clear of)."""
        x, y, yaw = self.path.base_pose(t)
        return np.array([x + CAMERA_FORWARD * math.cos(yaw), y + CAMERA_FORWARD * math.sin(yaw)])

    @property
    def period(self) -> float:
        """Seconds until the camera path repeats (``inf`` for ``static``)."""
        return self.path.period

    def T_map_base(self, t: float) -> np.ndarray:
        """``(4, 4)`` pose of base_link in map at time ``t`` (on the floor, z = 0)."""
        return _planar(*self.path.base_pose(_check_time(t)))

    def T_odom_base(self, t: float) -> np.ndarray:
        return compose(invert_pose(self.T_map_odom), self.T_map_base(t))

    def pose_at(self, t: float) -> np.ndarray:
        """Ground-truth camera pose ``T_world_cam (4, 4)`` (optical frame -> map) at time ``t``."""
        return self.T_map_base(t) @ self.T_base_cam

    def static_transforms(self) -> list[tuple[str, str, np.ndarray]]:
        """``(parent, child, T_parent_child)`` that never change: map->odom and the camera mount."""
        return [
            (MAP, ODOM, self.T_map_odom),
            (BASE, CAMERA_LINK, self.T_base_camlink),
            (CAMERA_LINK, OPTICAL, T_LINK_OPTICAL.copy()),
        ]

    def dynamic_transforms(self, t: float) -> list[tuple[str, str, np.ndarray]]:
        """``(parent, child, T_parent_child)`` at time ``t``: odom->base_link."""
        return [(ODOM, BASE, self.T_odom_base(t))]

    def twist_at(self, t: float, dt: float = 1e-3) -> tuple[np.ndarray, np.ndarray]:
        """base_link linear ``(3,)`` m/s and angular ``(3,)`` rad/s velocity in base_link at ``t``."""
        t0 = max(_check_time(t) - dt, 0.0)
        a, b = self.T_map_base(t0), self.T_map_base(t0 + dt)
        delta = invert_pose(a) @ b
        return delta[:3, 3] / dt, np.array([0.0, 0.0, math.atan2(delta[1, 0], delta[0, 0]) / dt])

    def render(self, T_world_cam: np.ndarray, t: float) -> Frame:
        """Render the scene at time ``t`` (actors where they are at ``t``) from any level pose.

        ``T_world_cam (4, 4)``: optical frame -> map; it must be level (optical y = world -z,
        any position and heading), else InvalidInput. The sensor model (if configured) is
        applied without motion blur: an arbitrary pose has no motion.
        """
        return self._render(T_world_cam, _check_time(t), (0.0, 0.0))

    def frame_at(self, index: int) -> Frame:
        """Frame ``index`` of the recording (at ``index / rate_hz`` s on the camera path)."""
        t = index / self.config.rate_hz
        T = self.pose_at(t)
        blur = self._blur_px(t, T) if self.sensor else (0.0, 0.0)
        return self._render(T, t, blur)

    def forget_before(self, t: float) -> None:
        """Let go of the people's motion state before ``t`` s (a camera that only moves on): memory
        stays flat over a long run; :meth:`render` and :meth:`frame_at` before ``t`` then raise."""
        self.walkers.forget_before(t)

    def frames(self, n: int | None = None, start: int = 0) -> Iterator[Frame]:
        """Yield ``n`` consecutive frames (forever when ``n`` is None) from frame ``start``."""
        if n is not None and (not isinstance(n, int) or n < 0):
            raise InvalidInput("n", f"must be an integer >= 0 or None, got {n!r}")
        i = start
        while n is None or i < start + n:
            yield self.frame_at(i)
            i += 1

    def _render(self, T_world_cam: np.ndarray, t: float, blur: tuple[float, float]) -> Frame:
        bodies, moving = self.walkers.prisms(t)
        out = self.renderer.render(T_world_cam, bodies, albedo=self.sensor is not None)
        rgb, depth = out.rgb, out.depth
        if self.sensor is not None:
            rgb, depth = self.sensor.apply(rgb, depth, out.albedo_luma, self.config.seed, t, blur)
        return Frame(
            stamp=float(t),
            rgb=rgb,
            depth=depth,
            K=self.K,
            T_world_cam=np.asarray(T_world_cam, np.float64).copy(),
            motion_mask=moving[out.instance_ids],
            instance_ids=out.instance_ids,
        )

    def _blur_px(self, t: float, T: np.ndarray) -> tuple[float, float]:
        """Image motion of the centre pixel (at 3 m) during the colour exposure."""
        exposure = self.sensor.exposure_s
        T_prev = self.pose_at(max(t - exposure, 0.0))
        p = T @ np.array([0.0, 0.0, 3.0, 1.0])
        q = invert_pose(T_prev) @ p
        if q[2] <= 0.1:
            return (0.0, 0.0)
        K = self.K
        return (float(K.fx * q[0] / q[2]), float(K.fy * q[1] / q[2]))


def _check_time(t: float) -> float:
    if not isinstance(t, (int, float, np.floating, np.integer)) or not math.isfinite(t) or t < 0:
        raise InvalidInput("t", f"must be a finite time >= 0 s, got {t!r}")
    return float(t)
