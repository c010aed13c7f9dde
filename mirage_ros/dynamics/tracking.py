"""Region tracks over time: 3D association, motion evidence with hysteresis, moving vs new static.

A disagreement region is either *moving* (its 3D position changes, or it keeps covering pixels
that held something farther in the previous frame) or *new static structure* (it stays put: after
``persistence_s`` without motion evidence it is let into memory). Until decided its state is
*unknown* and it is kept out of memory.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from mirage_ros.dynamics.cues import ramp

#: Region states; the values are ``mirage_ros_msgs/MovingRegion`` ``STATE_*``.
STATE_UNKNOWN = 0  # disagrees, motion not decided yet: kept out of memory, not in the moving mask
STATE_MOVING = 1  # dynamic: in the moving mask, kept out of memory
STATE_NEW_STATIC = 2  # new static structure (stayed put for the persistence window): into memory

STATE_NAMES = {STATE_UNKNOWN: "unknown", STATE_MOVING: "moving", STATE_NEW_STATIC: "new_static"}


@dataclass(frozen=True)
class TrackingConfig:
    """Parameters of :class:`Tracker` (times in seconds, distances in metres).

    Attributes:
        gate_m: association gate around the predicted centroid, plus ``max_speed * dt``.
        max_speed: fastest object speed considered (m/s), widens the gate with the frame gap.
        speed_levels: ``(lo, hi)`` centroid speed (m/s) mapped to motion evidence 0..1; ``lo``
            is above the apparent drift of a static object whose visible part changes.
        speed_window_s: centroid displacement is measured over this much history.
        motion_alpha: weight of the newest evidence in the motion average (EMA).
        enter_moving, leave_moving: hysteresis thresholds on that average.
        persistence_s: a region without motion evidence for this long is new static structure.
        stopped_persistence_s: the same for a region that has moved before (a person who stops
            to chat walks on: keep them out of memory longer).
        max_missed_s: a track not observed for this long is dropped.
        max_depthless_frames: a track may be followed this many frames in a row by image overlap
            alone, when its region has no depth reading (a person closer than the sensor's
            minimum range, dark clothes).
    """

    gate_m: float = 0.35
    max_speed: float = 2.5
    speed_levels: tuple[float, float] = (0.3, 0.8)
    speed_window_s: float = 0.4
    motion_alpha: float = 0.6
    enter_moving: float = 0.5
    leave_moving: float = 0.25
    persistence_s: float = 4.0
    stopped_persistence_s: float = 6.0
    max_missed_s: float = 0.5
    max_depthless_frames: int = 10


@dataclass
class Track:
    """One region followed over frames; positions are world-frame centroids."""

    id: int
    created: float
    history: deque = field(default_factory=lambda: deque(maxlen=32))  # (stamp, (3,) centroid)
    motion: float = 0.0
    moving: bool = False
    ever_moved: bool = False
    last_motion: float = 0.0
    last_seen: float = 0.0
    depthless: int = 0  # consecutive frames followed by image overlap only

    def state(self, config: TrackingConfig) -> int:
        """``STATE_MOVING``; else ``STATE_NEW_STATIC`` once still long enough; else unknown."""
        if self.moving:
            return STATE_MOVING
        window = config.stopped_persistence_s if self.ever_moved else config.persistence_s
        if self.last_seen - self.last_motion >= window:
            return STATE_NEW_STATIC
        return STATE_UNKNOWN

    def velocity(self, window_s: float) -> tuple[np.ndarray, bool]:
        """Least-squares world velocity ``(3,)`` m/s over the last ``window_s``, and its validity."""
        recent = [(t, c) for t, c in self.history if self.last_seen - t <= window_s]
        if len(recent) < 3 or recent[-1][0] - recent[0][0] < 0.15:
            return np.zeros(3), False
        t = np.array([r[0] for r in recent])
        c = np.stack([r[1] for r in recent])
        t = t - t.mean()
        return (t @ (c - c.mean(axis=0))) / (t @ t), True

    def speed(self, window_s: float) -> float | None:
        """Centroid displacement speed over ``window_s`` (needs >= 0.2 s of history), else ``None``."""
        now, latest = self.history[-1]
        older = [(t, c) for t, c in self.history if now - t <= window_s]
        t0, c0 = older[0]
        if now - t0 < 0.2:
            return None
        return float(np.linalg.norm(latest - c0) / (now - t0))


class Tracker:
    """Associates per-frame region centroids to tracks and decides moving / candidate / static."""

    def __init__(self, config: TrackingConfig):
        self.config = config
        self.tracks: list[Track] = []
        self._next_id = 1

    def reset(self) -> None:
        """Forget every track (pose jump, time going backwards, memory cleared)."""
        self.tracks = []

    def update(
        self,
        centroids: list[np.ndarray],
        frame_motion: list[float | None],
        stamp: float,
        whole: list[bool] | None = None,
    ) -> list[Track]:
        """Feed one frame's region centroids.

        Args:
            centroids: world ``(3,)`` centroid of each region of this frame.
            frame_motion: per region, frame-to-frame motion evidence in ``[0, 1]`` (share of its
                pixels whose depth along the same 3D ray changed since the previous frame, after
                ego-motion compensation), or ``None`` when the previous frame does not cover it.
            stamp: time of the frame, seconds.
            whole: per region, whether it is seen whole (not cut by the image border, not most of
                the view). The centroid speed of a cut or huge region measures the camera sweeping
                over it, not its motion, so only whole regions get speed evidence. Default: all.

        Returns:
            the track of each region, in input order (new tracks for unmatched regions).
        """
        cfg = self.config
        self.tracks = [t for t in self.tracks if stamp - t.last_seen <= cfg.max_missed_s]
        assigned = self._associate(centroids, stamp)
        out = []
        whole = [True] * len(centroids) if whole is None else whole
        for i, (centroid, motion) in enumerate(zip(centroids, frame_motion)):
            track = assigned.get(i)
            if track is None:
                track = Track(self._next_id, stamp, last_motion=stamp, last_seen=stamp)
                self._next_id += 1
                self.tracks.append(track)
            track.history.append((stamp, np.asarray(centroid, np.float64)))
            track.last_seen = stamp
            track.depthless = 0
            speed = track.speed(cfg.speed_window_s) if whole[i] else None
            speed_evidence = None if speed is None else float(ramp(speed, *cfg.speed_levels))
            evidence = [e for e in (motion, speed_evidence) if e is not None]
            if evidence:
                strongest = max(evidence)
                track.motion = (1 - cfg.motion_alpha) * track.motion + cfg.motion_alpha * strongest
                if strongest >= 0.5:
                    track.last_motion = stamp
            if track.motion >= cfg.enter_moving:
                track.moving = track.ever_moved = True
            elif track.motion < cfg.leave_moving:
                track.moving = False
            out.append(track)
        return out

    def follow_without_depth(self, track_id: int, stamp: float) -> Track | None:
        """Keep track ``track_id`` alive for a region without depth that overlaps its last region.

        Its state and motion are carried over unchanged (no new evidence); ``None`` when the track
        is gone or has gone ``max_depthless_frames`` frames without depth.
        """
        for track in self.tracks:
            if track.id == track_id and track.depthless < self.config.max_depthless_frames:
                if track.last_seen != stamp:
                    track.depthless += 1
                track.last_seen = stamp
                return track
        return None

    def _associate(self, centroids: list[np.ndarray], stamp: float) -> dict[int, Track]:
        if not centroids or not self.tracks:
            return {}
        cfg = self.config
        cost = np.empty((len(centroids), len(self.tracks)))
        gate = np.empty(len(self.tracks))
        for j, track in enumerate(self.tracks):
            last_t, last_c = track.history[-1]
            velocity, ok = track.velocity(cfg.speed_window_s)
            dt = stamp - last_t
            predicted = last_c + (velocity * dt if ok else 0.0)
            gate[j] = cfg.gate_m + cfg.max_speed * dt
            cost[:, j] = np.linalg.norm(np.stack(centroids) - predicted, axis=1)
        big = 1e6
        rows, cols = linear_sum_assignment(np.where(cost <= gate, cost, big))
        return {r: self.tracks[c] for r, c in zip(rows, cols) if cost[r, c] <= gate[c]}
