"""Plausibility of camera input: values a message may hold but no real camera, robot or clock gives.

A malformed message is refused by the decoders (:mod:`convert`, :mod:`compressed`); these checks
refuse well-formed ones whose numbers are absurd (a focal length of 1e-30 px, depth of 1e30 m, a
pose 1e30 m away, a stamp hours ahead), before they reach the memory. Each raises
:class:`InvalidInput` naming the field, so the node skips the message with a warning.

:class:`Timeline` decides what a frame's stamp means for the memory: a single outlier stamp must
never reset it; only time that really went back (a bag restarted) does.

Pure functions and bookkeeping, no ROS.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum

import numpy as np

from mirage_ros.errors import InvalidInput
from mirage_ros.geometry import Intrinsics

#: a pinhole camera's field of view lies strictly between these (degrees)
FIELD_OF_VIEW_DEG = (1.0, 179.0)


@dataclass(frozen=True)
class Bounds:
    """What a frame may hold (the node parameters of the same names).

    Attributes:
        depth_range: ``(min, max)`` metres; a frame with no reading inside is refused.
        field_of_view_deg: ``(min, max)`` of the horizontal and vertical field of view.
        max_coordinate: metres from the world origin on any axis a camera pose may be.
    """

    depth_range: tuple[float, float] = (0.1, 10.0)
    field_of_view_deg: tuple[float, float] = FIELD_OF_VIEW_DEG
    max_coordinate: float = 1e5

    def intrinsics(self, K: Intrinsics, name: str = "camera_info.k") -> Intrinsics:
        """``K`` if its fields of view lie in :attr:`field_of_view_deg` and its principal point
        within the image widened by half its size on each side.

        Raises:
            InvalidInput: ``name`` with the value that is implausible.
        """
        low, high = self.field_of_view_deg
        for axis, focal, size, centre in (("horizontal", K.fx, K.width, K.cx), ("vertical", K.fy, K.height, K.cy)):
            fov = math.degrees(2.0 * math.atan2(size / 2.0, focal))
            if not low <= fov <= high:
                raise InvalidInput(name, f"{axis} field of view {fov:.3g} deg (focal length {focal:.3g} px, "
                                   f"{size} px) is outside [{low:g}, {high:g}] deg")
            if not -0.5 * size <= centre <= 1.5 * size:
                raise InvalidInput(name, f"principal point {centre:.3g} px lies far outside the {size} px image")
        return K

    def depth(self, depth: np.ndarray) -> np.ndarray:
        """``depth`` ``(H, W) float32`` metres if some reading lies inside :attr:`depth_range`.

        Raises:
            InvalidInput: ``"depth"`` naming the readings' span when none does.
        """
        low, high = self.depth_range
        with np.errstate(invalid="ignore"):
            readings = depth[np.isfinite(depth) & (depth > 0)]
        if readings.size == 0:
            raise InvalidInput("depth", "no valid reading (all 0 / NaN / inf)")
        if not np.any((readings > low) & (readings < high)):
            raise InvalidInput("depth", f"no reading inside depth_range ({low:g}, {high:g}) m: readings span "
                               f"{float(readings.min()):.3g} to {float(readings.max()):.3g} m")
        return depth

    def pose(self, T: np.ndarray, name: str) -> np.ndarray:
        """``T (4, 4)`` if finite with its translation within :attr:`max_coordinate`.

        Raises:
            InvalidInput: ``name`` with the translation.
        """
        if not np.isfinite(T).all():
            raise InvalidInput(name, "not finite")
        if np.abs(T[:3, 3]).max() > self.max_coordinate:
            raise InvalidInput(name, f"translation {T[:3, 3].tolist()} m is beyond max_coordinate="
                               f"{self.max_coordinate:g} m")
        return T


def stamp_ahead(stamp: float, now: float, max_lead: float) -> None:
    """Refuse a stamp more than ``max_lead`` seconds after the node's clock ``now`` (seconds;
    ``now == 0``: a simulated clock not started yet, nothing to compare with).

    Raises:
        InvalidInput: ``"header.stamp"``.
    """
    if now > 0.0 and stamp - now > max_lead:
        raise InvalidInput("header.stamp", f"{stamp - now:.1f} s ahead of the node's clock (max_stamp_lead="
                           f"{max_lead:g} s)")


class Verdict(Enum):
    """What :meth:`Timeline.check` makes of a stamp."""

    ACCEPT = "accept"  #: in order: use the frame
    OUT_OF_ORDER = "out_of_order"  #: not after the last frame, within the jump threshold: skip it
    JUMP_PENDING = "jump_pending"  #: far behind the last frame, not yet confirmed: skip it
    RESET = "reset"  #: time went back, confirmed: reset the memory, then use the frame


@dataclass
class Timeline:
    """The frames' time line, robust to one outlier stamp.

    A stamp more than ``jump_threshold`` seconds behind the last accepted one starts a candidate
    new time line; it becomes the time line (a :attr:`Verdict.RESET`) once ``confirm_frames``
    frames in a row lie on it, each after the one before and within ``jump_threshold`` of it, as
    a restarted bag's frames do. A frame back on the old time line drops the candidate. A stamp far
    *ahead* is accepted but moves the time line only when the next frame follows it: after one
    outlier stamp hours ahead, the next normal frame is still in order. After the time line moved
    ahead, a frame that continues the time line from before that move is in order again (the frames
    ahead were outliers): only a jump back before it, as a bag loop makes, can reset the memory.

    Args:
        jump_threshold: seconds (> 0).
        confirm_frames: frames (>= 1) that confirm a jump back; 1 resets on the first.
    """

    jump_threshold: float
    confirm_frames: int = 3
    last: float | None = None
    _ahead: float | None = None
    _resume: float | None = None  # the time line's last stamp before its latest move ahead
    _candidate: list[float] = field(default_factory=list)

    @property
    def pending(self) -> int:
        """Frames still needed to confirm the candidate jump back (0: none pending)."""
        return self.confirm_frames - len(self._candidate) if self._candidate else 0

    def check(self, stamp: float) -> Verdict:
        """The verdict on the next frame's ``stamp`` (seconds); the time line moves with it."""
        last, threshold = self.last, self.jump_threshold
        if last is None:
            self.last = stamp
            return Verdict.ACCEPT
        if stamp < last - threshold:
            if self._resume is not None and stamp > self._resume:
                self.last, self._ahead, self._resume, self._candidate = stamp, None, None, []
                return Verdict.ACCEPT
            tail = self._candidate[-1] if self._candidate else None
            if tail is None or not tail < stamp <= tail + threshold:
                self._candidate = []
            self._candidate.append(stamp)
            if len(self._candidate) < self.confirm_frames:
                return Verdict.JUMP_PENDING
            self.reset(stamp)
            return Verdict.RESET
        if stamp <= last:
            return Verdict.OUT_OF_ORDER
        self._candidate = []
        if stamp > last + threshold and not (self._ahead is not None and self._ahead < stamp <= self._ahead + threshold):
            self._ahead = stamp  # far ahead: the time line follows only if the next frame does
            return Verdict.ACCEPT
        if stamp > last + threshold:
            self._resume = last  # the next frame followed the one far ahead: the time line moves there
        self.last, self._ahead = stamp, None
        return Verdict.ACCEPT

    def reset(self, stamp: float | None = None) -> None:
        """Start over at ``stamp`` (None: no frame yet)."""
        self.last, self._ahead, self._resume, self._candidate = stamp, None, None, []
