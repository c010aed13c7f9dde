"""Frames waiting to enter the memory: first for their camera pose, then for their moving mask.

A synchronised RGB-D frame gets its camera pose as soon as it is known (TF may lag the image: the
pose is retried until ``tf_timeout``). Frames leave in arrival order so the memory sees
increasing stamps. Only the frame at the head of the queue is *announced* (the node renders the
memory at its pose for the consistency monitor): rendering costs as much as a prediction, so it
is spent only on a frame that will be integrated. The announced frame is *committed*: it is
*ready* when the monitor's mask for its stamp arrives, or ``mask_hold`` seconds after it was
announced (integrated without a mask: the monitor is slow, down or not running). When frames
come faster than the node integrates them, the oldest frame that is not committed is dropped,
so what waits is always the freshest input.

Pure bookkeeping (no ROS); times are monotonic seconds passed in by the caller.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from mirage_ros.geometry import Intrinsics
from mirage_ros.ros.pose_source import PoseUnavailable


@dataclass(eq=False)  # a frame is itself: two of the same stamp are two frames (== of arrays raises)
class PendingFrame:
    """One synchronised input frame.

    Attributes:
        stamp_ns: image stamp, integer nanoseconds (exact).
        stamp: the same in seconds (for arithmetic).
        frame_id: the image header's frame.
        rgb: ``(H, W, 3) uint8``.
        depth: ``(H, W) float32`` metres, 0 = no reading.
        K: intrinsics of the colour image (and of the depth, once registered).
        arrived: monotonic seconds when the frame was synchronised.
        T_world_cam: ``(4, 4)`` optical camera pose once known.
        posed_at: monotonic seconds when the frame was announced (its live view rendered).
        depth_camera: ``(K_depth, frame_id)`` while ``depth`` is still the image of a depth camera
            of its own (``depth_registration``), ``(Hd, Wd)``; None once it is in ``K``.
    """

    stamp_ns: int
    stamp: float
    frame_id: str
    rgb: np.ndarray
    depth: np.ndarray
    K: Intrinsics
    arrived: float
    T_world_cam: np.ndarray | None = None
    posed_at: float | None = None
    depth_camera: tuple[Intrinsics, str] | None = None


class FrameGate:
    """FIFO of :class:`PendingFrame` released when posed and masked (or the hold ran out).

    Args:
        mask_hold: seconds the announced frame waits for its mask (0 = never wait).
        tf_timeout: seconds a frame waits for its pose before it is dropped.
        max_pending: frames queued at most (>= 1, plus the committed one); beyond, the oldest
            uncommitted frame is dropped (input faster than the node).
    """

    def __init__(self, mask_hold: float, tf_timeout: float, max_pending: int = 8):
        self.mask_hold = mask_hold
        self.tf_timeout = tf_timeout
        self._frames: deque[PendingFrame] = deque()
        self._max_pending = max(1, max_pending)
        self._masks: OrderedDict[int, np.ndarray] = OrderedDict()

    def __len__(self) -> int:
        return len(self._frames)

    def push(self, frame: PendingFrame) -> list[tuple[PendingFrame, str]]:
        """Queue ``frame``; returns the frames dropped to make room, with the cause."""
        self._frames.append(frame)
        dropped = []
        committed = 1 if self._frames[0].posed_at is not None else 0
        while len(self._frames) - committed > self._max_pending:
            oldest = self._frames[committed]
            del self._frames[committed]
            dropped.append((oldest, f"queue full ({self._max_pending} frames waiting)"))
        return dropped

    def add_mask(self, stamp_ns: int, mask: np.ndarray) -> None:
        """Remember the moving mask ``(H, W) bool`` the monitor sent for ``stamp_ns``."""
        self._masks[stamp_ns] = mask
        while len(self._masks) > 4 * self._max_pending:
            self._masks.popitem(last=False)

    def clear(self) -> None:
        """Forget every pending frame and mask (memory reset, time jump)."""
        self._frames.clear()
        self._masks.clear()

    def poll(
        self, now: float, pose_of: Callable[[PendingFrame], np.ndarray]
    ) -> tuple[list[PendingFrame], list[tuple[PendingFrame, np.ndarray | None]], list[tuple[PendingFrame, str]]]:
        """Advance every frame.

        Args:
            now: monotonic seconds.
            pose_of: ``T_world_cam`` of a frame, raising :class:`PoseUnavailable`.

        Returns:
            ``(announced, ready, dropped)``: frames announced now (render them for the monitor,
            then set ``posed_at``), frames to integrate with their mask (``None`` = no mask in
            time), and dropped frames with the cause.
        """
        posed, dropped = [], []
        for frame in list(self._frames):
            if frame.T_world_cam is not None:
                continue
            try:
                frame.T_world_cam = pose_of(frame)
            except PoseUnavailable as exc:
                if not exc.may_arrive or now - frame.arrived >= self.tf_timeout:
                    self._frames.remove(frame)
                    waited = f" after {now - frame.arrived:.2f} s" if exc.may_arrive else ""
                    dropped.append((frame, f"no camera pose{waited}: {exc.cause}"))
                continue
        ready = []
        while self._frames and self._frames[0].T_world_cam is not None:
            head = self._frames[0]
            if head.posed_at is None:
                head.posed_at = now
                posed.append(head)
            mask = self._masks.pop(head.stamp_ns, None)
            if mask is None and now - head.posed_at < self.mask_hold:
                break
            ready.append((self._frames.popleft(), mask))
        return posed, ready, dropped
