"""Simulator configuration, validated on construction (bad values raise InvalidInput naming them)."""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

from mirage_ros.errors import InvalidInput
from mirage_ros.sim.families import FAMILIES
from mirage_ros.sim.motion import PATHS

DEFAULT_ACTORS = 5  # people in the scene when ``actors=True``
NOISE_MODELS = ("none", "kinect")


@dataclass(frozen=True)
class SimConfig:
    """What to simulate and how the camera sees it.

    Args:
        scene: scene family, one of ``corridor``, ``office``, ``warehouse``.
        seed: scene layout / texture / actor seed (int >= 0; every seed is a new scene).
        width, height: image size in pixels (16..4096).
        rate_hz: frame rate of :meth:`Simulator.frames` (> 0).
        path: camera path: ``loop`` (closed loop with a detour into a room; revisits its start),
            ``forward`` (straight down the main corridor/aisle and back), ``pan`` (the loop,
            stopping at every waypoint to look 60 degrees left and right), ``static`` (a fixed
            camera looking down a corridor).
        actors: people walking about: ``True`` = 5, ``False``/0 = a fully static scene, or a count.
        speed: robot driving speed in m/s (> 0, <= 5); turns in place run at 0.6 rad/s.
        camera_height: optical centre above the floor in metres (0.2..2.0). The camera is level:
            no roll and no pitch (optical z horizontal).
        hfov_deg: horizontal field of view (default 62 deg: Kinect-class, fx = 525 at 640 px).
        max_range: depth beyond this is reported as 0 (no return), metres.
        noise: sensor model: ``none`` (exact ground truth) or ``kinect`` (depth noise growing with
            range, holes at edges and on dark surfaces, depth/colour misregistration, auto-exposure
            drift, motion blur, pixel noise; seeded, so still deterministic).
    """

    scene: str = "corridor"
    seed: int = 0
    width: int = 320
    height: int = 240
    rate_hz: float = 10.0
    path: str = "loop"
    actors: bool | int = True
    speed: float = 0.8
    camera_height: float = 1.15
    hfov_deg: float = 62.0
    max_range: float = 10.0
    noise: str = "none"

    def __post_init__(self) -> None:
        if self.scene not in FAMILIES:
            raise InvalidInput("scene", f"unknown scene {self.scene!r}; choose one of {sorted(FAMILIES)}")
        if not _is_int(self.seed) or self.seed < 0:
            raise InvalidInput("seed", f"must be an integer >= 0, got {self.seed!r}")
        for name in ("width", "height"):
            value = getattr(self, name)
            if not _is_int(value) or not 16 <= value <= 4096:
                raise InvalidInput(name, f"must be an integer pixel count in 16..4096, got {value!r}")
        _positive("rate_hz", self.rate_hz, upper=1000.0)
        _positive("speed", self.speed, upper=5.0)
        _positive("max_range", self.max_range, upper=100.0)
        if self.path not in PATHS:
            raise InvalidInput("path", f"unknown path {self.path!r}; choose one of {list(PATHS)}")
        if not (isinstance(self.actors, bool) or (_is_int(self.actors) and 0 <= self.actors <= 64)):
            raise InvalidInput("actors", f"must be True/False or a count 0..64, got {self.actors!r}")
        if not _finite(self.camera_height) or not 0.2 <= self.camera_height <= 2.0:
            raise InvalidInput("camera_height", f"must be in 0.2..2.0 m, got {self.camera_height!r}")
        if not _finite(self.hfov_deg) or not 20.0 <= self.hfov_deg <= 150.0:
            raise InvalidInput("hfov_deg", f"must be in 20..150 degrees, got {self.hfov_deg!r}")
        if self.noise not in NOISE_MODELS:
            raise InvalidInput("noise", f"unknown noise model {self.noise!r}; choose one of {list(NOISE_MODELS)}")

    @property
    def actor_count(self) -> int:
        if isinstance(self.actors, bool):
            return DEFAULT_ACTORS if self.actors else 0
        return int(self.actors)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) or type(value).__name__.startswith("int")


def _finite(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _positive(name: str, value, upper: float) -> None:
    if not _finite(value) or not 0.0 < value <= upper:
        raise InvalidInput(name, f"must be a number in (0, {upper:g}], got {value!r}")
