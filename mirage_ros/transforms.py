"""A pure, ROS-free transform buffer: a tree of frames with timed edges, looked up at any stamp.

It does what ``tf2_ros.Buffer`` does for offline replay (``mirage-ros eval`` reading ``/tf`` from a
bag) and for nodes on machines without tf2_ros: edges ``parent -> child`` carry ``T_parent_child``
samples; :meth:`TransformBuffer.lookup` chains them through the common ancestor, interpolating
each dynamic edge at the requested stamp (translation linearly, rotation by scipy ``Slerp``).

Unlike tf2, a lookup slightly outside an edge's recorded interval is allowed up to
``max_extrapolation`` seconds, holding the nearest sample (no velocity extrapolation): bags and
drivers often stamp TF a few milliseconds behind the image. Beyond that the lookup fails.

Conventions (docs/architecture.md): ``T_a_b @ p_b = p_a``, ``(4, 4) float64``; stamps in seconds.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field

import numpy as np
from scipy.spatial.transform import Rotation, Slerp

from mirage_ros.errors import InvalidInput, MirageError
from mirage_ros.geometry import check_pose, invert_pose


class TransformLookupError(MirageError, LookupError):
    """No transform between two frames at a stamp: unknown frame, not connected, or out of time."""


@dataclass
class _Edge:
    """Samples of ``T_parent_child`` over time, kept sorted by stamp."""

    parent: str
    static: bool
    stamps: list[float] = field(default_factory=list)
    translations: list[np.ndarray] = field(default_factory=list)
    rotations: list[np.ndarray] = field(default_factory=list)  # scipy quaternions (x, y, z, w)

    def insert(self, stamp: float, T: np.ndarray) -> None:
        quat = Rotation.from_matrix(T[:3, :3]).as_quat()
        if self.static:  # a static edge holds one transform; a newer message replaces it
            self.stamps, self.translations, self.rotations = [stamp], [T[:3, 3].copy()], [quat]
            return
        i = bisect.bisect_left(self.stamps, stamp)
        if i < len(self.stamps) and self.stamps[i] == stamp:
            self.translations[i], self.rotations[i] = T[:3, 3].copy(), quat
            return
        self.stamps.insert(i, stamp)
        self.translations.insert(i, T[:3, 3].copy())
        self.rotations.insert(i, quat)

    def drop_before(self, stamp: float) -> None:
        i = bisect.bisect_left(self.stamps, stamp)
        if i > 0 and not self.static:
            del self.stamps[:i], self.translations[:i], self.rotations[:i]

    def at(self, t: float, max_extrapolation: float, child: str) -> np.ndarray:
        """``T_parent_child (4, 4)`` at ``t``: interpolated, or the nearest sample within the limit."""
        if self.static:
            return self._matrix(self.translations[0], Rotation.from_quat(self.rotations[0]))
        first, last = self.stamps[0], self.stamps[-1]
        if t < first - max_extrapolation or t > last + max_extrapolation:
            side = f"{first - t:.3f} s before the first" if t < first else f"{t - last:.3f} s after the last"
            raise TransformLookupError(
                f"{self.parent} -> {child} at t={t:.6f}: {side} sample "
                f"(samples cover [{first:.6f}, {last:.6f}], max_extrapolation={max_extrapolation} s)"
            )
        if t <= first:
            return self._matrix(self.translations[0], Rotation.from_quat(self.rotations[0]))
        if t >= last:
            return self._matrix(self.translations[-1], Rotation.from_quat(self.rotations[-1]))
        i = bisect.bisect_right(self.stamps, t)
        t0, t1 = self.stamps[i - 1], self.stamps[i]
        alpha = (t - t0) / (t1 - t0)
        translation = (1.0 - alpha) * self.translations[i - 1] + alpha * self.translations[i]
        slerp = Slerp([t0, t1], Rotation.from_quat([self.rotations[i - 1], self.rotations[i]]))
        return self._matrix(translation, slerp([t])[0])

    @staticmethod
    def _matrix(translation: np.ndarray, rotation: Rotation) -> np.ndarray:
        T = np.eye(4)
        T[:3, :3] = rotation.as_matrix()
        T[:3, 3] = translation
        return T


class TransformBuffer:
    """Frames linked by timed ``parent -> child`` transforms; lookups at any stamp.

    Args:
        max_extrapolation: seconds a lookup may fall outside a dynamic edge's samples (the nearest
            sample is held), >= 0.
        cache_duration: if set (> 0 seconds), dynamic samples older than the newest sample of the
            same edge minus this are dropped on insert, bounding memory for live use; ``None``
            keeps everything (offline replay).

    Raises:
        InvalidInput: a negative or non-finite limit.
    """

    def __init__(self, max_extrapolation: float = 0.05, cache_duration: float | None = None):
        if not (math.isfinite(max_extrapolation) and max_extrapolation >= 0):
            raise InvalidInput("max_extrapolation", f"must be a finite number >= 0, got {max_extrapolation}")
        if cache_duration is not None and not (math.isfinite(cache_duration) and cache_duration > 0):
            raise InvalidInput("cache_duration", f"must be None or a number > 0, got {cache_duration}")
        self.max_extrapolation = float(max_extrapolation)
        self.cache_duration = cache_duration
        self._edges: dict[str, _Edge] = {}  # child frame -> edge to its parent

    def add(self, parent: str, child: str, stamp: float, T_parent_child: np.ndarray, static: bool = False) -> None:
        """Record ``T_parent_child (4, 4)`` at ``stamp`` seconds (ignored for static edges).

        A frame has one parent; a static edge stays static (tf2 semantics).

        Raises:
            InvalidInput: empty or equal frame names, a child re-parented, a static/dynamic
                switch, a non-finite stamp or a transform that is not rigid.
        """
        if not parent or not child:
            raise InvalidInput("frame_id", f"frame names must be non-empty, got {parent!r} -> {child!r}")
        if parent == child:
            raise InvalidInput("child_frame_id", f"a frame cannot be its own parent ({child!r})")
        if not math.isfinite(stamp):
            raise InvalidInput("stamp", f"must be finite, got {stamp}")
        T = check_pose(T_parent_child, "T_parent_child")
        edge = self._edges.get(child)
        if edge is None:
            if self._is_ancestor(child, parent):
                raise InvalidInput("child_frame_id", f"{parent!r} -> {child!r} would close a loop")
            edge = self._edges[child] = _Edge(parent, static)
        elif edge.parent != parent:
            raise InvalidInput("child_frame_id", f"{child!r} already has parent {edge.parent!r}, not {parent!r}")
        elif edge.static != static:
            kind = "static" if edge.static else "dynamic"
            raise InvalidInput("static", f"edge {parent!r} -> {child!r} is already {kind}")
        edge.insert(float(stamp), T)
        if self.cache_duration is not None:
            edge.drop_before(edge.stamps[-1] - self.cache_duration)

    def frames(self) -> set[str]:
        """Every frame name seen, as parent or child."""
        return set(self._edges) | {edge.parent for edge in self._edges.values()}

    def parent(self, frame: str) -> str | None:
        """The parent of ``frame``, or ``None`` for a root or an unknown frame."""
        edge = self._edges.get(frame)
        return edge.parent if edge else None

    def root(self, frame: str) -> str:
        """The root of the tree holding ``frame`` (``frame`` itself if it has no parent)."""
        return self._chain(frame)[-1]

    def time_range(self, frame: str) -> tuple[float, float] | None:
        """``(first, last)`` stamp common to every dynamic edge from ``frame`` up to its root.

        ``None`` if the chain is all static (valid at any time) ; an empty interval has
        ``first > last``.
        """
        ranges = [
            (self._edges[f].stamps[0], self._edges[f].stamps[-1])
            for f in self._chain(frame)[:-1]
            if not self._edges[f].static
        ]
        if not ranges:
            return None
        return max(r[0] for r in ranges), min(r[1] for r in ranges)

    def lookup(self, target_frame: str, source_frame: str, t: float) -> np.ndarray:
        """``T_target_source (4, 4) float64`` at ``t`` seconds: maps source-frame points into target.

        Raises:
            TransformLookupError: a frame is unknown, the two are in different trees, or an edge of
                the chain has no sample within ``max_extrapolation`` of ``t``.
        """
        known = self.frames()
        for name in (target_frame, source_frame):
            if name not in known:
                raise TransformLookupError(f"unknown frame {name!r} (known: {sorted(known)})")
        target_chain, source_chain = self._chain(target_frame), self._chain(source_frame)
        if target_chain[-1] != source_chain[-1]:
            raise TransformLookupError(
                f"{target_frame!r} and {source_frame!r} are not connected "
                f"(roots {target_chain[-1]!r} and {source_chain[-1]!r})"
            )
        common = next(f for f in target_chain if f in set(source_chain))
        T_common_target = self._to_ancestor(target_chain, common, t)
        T_common_source = self._to_ancestor(source_chain, common, t)
        return invert_pose(T_common_target) @ T_common_source

    def can_transform(self, target_frame: str, source_frame: str, t: float) -> bool:
        """True when :meth:`lookup` would succeed."""
        try:
            self.lookup(target_frame, source_frame, t)
        except TransformLookupError:
            return False
        return True

    def _chain(self, frame: str) -> list[str]:
        """``[frame, parent, grandparent, ..., root]``."""
        chain = [frame]
        while chain[-1] in self._edges:
            chain.append(self._edges[chain[-1]].parent)
        return chain

    def _is_ancestor(self, frame: str, of: str) -> bool:
        return frame in self._chain(of)

    def _to_ancestor(self, chain: list[str], ancestor: str, t: float) -> np.ndarray:
        """``T_ancestor_frame`` for ``chain[0]``, composing edges up to ``ancestor``."""
        T = np.eye(4)
        for frame in chain[: chain.index(ancestor)]:
            T = self._edges[frame].at(t, self.max_extrapolation, frame) @ T
        return T


def offset_matrix(values: list[float]) -> np.ndarray:
    """``T_base_frame (4, 4)`` from the ``camera_offset`` parameter ``[x, y, z, roll, pitch, yaw]``.

    Metres and radians, REP-103 (``rzyx`` = yaw, then pitch, then roll).

    Raises:
        InvalidInput: ``"camera_offset"`` not six finite numbers.
    """
    from transforms3d.euler import euler2mat

    values = np.asarray(values, dtype=np.float64)
    if values.shape != (6,) or not np.all(np.isfinite(values)):
        raise InvalidInput("camera_offset", f"must be [x, y, z, roll, pitch, yaw], got {values.tolist()}")
    T = np.eye(4)
    T[:3, :3] = euler2mat(values[3], values[4], values[5], "sxyz")
    T[:3, 3] = values[:3]
    return T
