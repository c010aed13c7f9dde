"""Recorded RGB-D sequences for offline evaluation: one interface over rosbags and TUM folders.

A :class:`Recording` is read in two passes. Opening it indexes the input (which frames exist,
which depth goes with which colour image, the camera pose and intrinsics of each, what must be
skipped and why) without keeping pixels; :meth:`Recording.frames` then streams the usable frames
in stamp order as :class:`Observation` objects, the same fields as the simulator's ``Frame``, so
every scorer works on either.

Readers: :mod:`mirage_ros.evaluation.bag_source` (rosbag2 MCAP / sqlite3, ROS 1 ``.bag``) and
:mod:`mirage_ros.evaluation.tum_source` (TUM RGB-D folders), both built on this module;
:func:`mirage_ros.evaluation.recordings.open_recording` picks the reader of a path.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mirage_ros.errors import InvalidInput
from mirage_ros.geometry import DEPTH_REGISTRATION, Intrinsics


@dataclass(frozen=True)
class Observation:
    """One registered RGB-D frame with its camera.

    Attributes:
        stamp: seconds (the colour image's stamp).
        rgb: ``(H, W, 3) uint8``.
        depth: ``(H, W) float32`` metres, 0 = no reading, registered to ``rgb``.
        K: intrinsics of ``rgb`` (and of ``depth``).
        T_world_cam: ``(4, 4) float64`` pose of the **optical** frame in the world frame.
        motion_mask: ``(H, W) bool`` ground-truth moving pixels when the input has them, else None.
    """

    stamp: float
    rgb: np.ndarray
    depth: np.ndarray
    K: Intrinsics
    T_world_cam: np.ndarray
    motion_mask: np.ndarray | None = None


@dataclass(frozen=True)
class Skipped:
    """Something in the input that was not used: ``what`` (a topic, a frame, a file) and why."""

    what: str
    reason: str


@dataclass(frozen=True)
class SourceOptions:
    """How to read a recording; every field is a ``mirage-ros eval`` option (None = auto-detect).

    Attributes:
        color_topic, depth_topic, info_topic, mask_topic, odom_topic: bag topics.
        depth_info_topic: CameraInfo of the depth images (default: the one in the depth topic's
            namespace, when it is not the colour's).
        depth_registration: ``auto``: depth images with their own CameraInfo, in another frame or
            with other intrinsics than colour, are re-projected into the colour camera
            (``geometry.register_depth``, the transform from TF); ``disabled``: depth is taken as
            registered to colour (a same-aspect smaller image is upsampled).
        world_frame: fixed frame of the poses (default: root of the camera frame's TF tree).
        camera_frame: frame of the images (default: the colour image's ``header.frame_id``).
        camera_frame_convention: ``auto`` | ``optical`` | ``body`` (see ``mirage_ros.messages.frames``).
        camera_offset: ``(x, y, z, roll, pitch, yaw)`` (m, rad) pose of the camera frame in the
            odometry child frame, for bags whose TF does not reach the camera (same format as the
            world_model node's ``camera_offset`` parameter).
        intrinsics: ``(fx, fy, cx, cy)`` overriding CameraInfo (required knowledge for TUM).
        tum_camera: TUM intrinsics preset: ``auto`` (from the folder name), ``fr1``, ``fr2``,
            ``fr3`` or ``ros`` (the ROS default 525 / 319.5 / 239.5).
        depth_scale: TUM depth PNG units per metre (5000 in the TUM benchmark).
        max_depth_dt: seconds; largest colour/depth stamp difference accepted as a pair.
        max_pose_extrapolation: seconds; how far outside the pose samples a lookup may hold.
        max_frames: stop after this many usable frames (None = all).
    """

    color_topic: str | None = None
    depth_topic: str | None = None
    info_topic: str | None = None
    mask_topic: str | None = None
    odom_topic: str | None = None
    depth_info_topic: str | None = None
    depth_registration: str = "auto"
    world_frame: str | None = None
    camera_frame: str | None = None
    camera_frame_convention: str = "auto"
    camera_offset: tuple[float, ...] | None = None
    intrinsics: tuple[float, float, float, float] | None = None
    tum_camera: str = "auto"
    depth_scale: float = 5000.0
    max_depth_dt: float = 0.02
    max_pose_extrapolation: float = 0.05
    max_frames: int | None = None

    def __post_init__(self) -> None:
        for name in ("max_depth_dt", "max_pose_extrapolation"):
            if not getattr(self, name) >= 0:
                raise InvalidInput(f"--{name.replace('_', '-')}", f"must be >= 0, got {getattr(self, name)}")
        if not self.depth_scale > 0:
            raise InvalidInput("--depth-scale", f"must be > 0, got {self.depth_scale}")
        if self.depth_registration not in DEPTH_REGISTRATION:
            raise InvalidInput("--depth-registration", f"must be one of {DEPTH_REGISTRATION}, got {self.depth_registration!r}")
        if self.max_frames is not None and self.max_frames < 2:
            raise InvalidInput("--max-frames", f"must be >= 2, got {self.max_frames}")
        if self.camera_offset is not None and len(self.camera_offset) != 6:
            raise InvalidInput("--camera-offset", f"needs 6 numbers x y z roll pitch yaw, got {len(self.camera_offset)}")
        if self.intrinsics is not None and len(self.intrinsics) != 4:
            raise InvalidInput("--intrinsics", f"needs 4 numbers fx fy cx cy, got {len(self.intrinsics)}")


@dataclass
class Recording(ABC):
    """An indexed RGB-D sequence.

    Attributes:
        path: the input.
        kind: ``"rosbag2"``, ``"rosbag1"`` or ``"tum"``.
        stamps: ``(N,) float64`` seconds of the usable frames, increasing.
        poses: ``(N, 4, 4) float64`` ``T_world_cam`` (optical) of those frames.
        K: intrinsics shared by the frames.
        details: what was detected or chosen (topics, frames, conventions), for the report.
        skipped: what was left out, with reasons.
    """

    path: Path
    kind: str
    stamps: np.ndarray
    poses: np.ndarray
    K: Intrinsics
    details: dict = field(default_factory=dict)
    skipped: list[Skipped] = field(default_factory=list)

    @abstractmethod
    def frames(self) -> Iterator[Observation]:
        """The usable frames in stamp order, one :class:`Observation` per entry of ``stamps``."""


def associate(query: np.ndarray, reference: np.ndarray, max_dt: float) -> np.ndarray:
    """Index of the nearest ``reference`` stamp for each ``query`` stamp, -1 beyond ``max_dt``.

    Args:
        query: ``(N,)`` seconds.
        reference: ``(M,)`` seconds, any order; NaN entries are never chosen.
        max_dt: largest accepted ``|query - reference|`` in seconds.

    Returns:
        ``(N,) int64`` indices into ``reference``.
    """
    query = np.asarray(query, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    usable = np.flatnonzero(np.isfinite(reference))
    if usable.size == 0:
        return np.full(query.shape, -1, dtype=np.int64)
    order = usable[np.argsort(reference[usable], kind="stable")]
    ordered = reference[order]
    right = np.clip(np.searchsorted(ordered, query), 0, len(ordered) - 1)
    left = np.clip(right - 1, 0, len(ordered) - 1)
    nearer = np.where(np.abs(ordered[left] - query) <= np.abs(ordered[right] - query), left, right)
    found = np.abs(ordered[nearer] - query) <= max_dt
    return np.where(found, order[nearer], -1)


def intrinsics_from_option(values: tuple[float, float, float, float], width: int, height: int) -> Intrinsics:
    """``--intrinsics fx fy cx cy`` for images of ``width x height``."""
    try:
        return Intrinsics(*(float(v) for v in values), width, height)
    except InvalidInput as exc:
        raise InvalidInput("--intrinsics", exc.reason) from exc
