"""Where the camera is at an image's stamp: TF, or a pose / odometry topic plus a fixed offset.

Every source answers the same two questions and raises :class:`PoseUnavailable` otherwise:

- :meth:`world_T_frame`: ``T_world_frame (4, 4)``, the pose of the image's header frame at the
  image stamp (the node then applies the camera frame convention, one code path for all sources);
- :meth:`base_T_frame`: ``T_base_frame (4, 4)``, where the camera sits on the robot (to turn the
  robot poses of a planned ``nav_msgs/Path`` into camera poses).

Sources:

- :class:`TfPoseSource`: ``tf2_ros.Buffer`` lookups where tf2_ros is installed; otherwise
  :class:`mirage_ros.transforms.TransformBuffer` fed from ``/tf`` and ``/tf_static``
  (``tf2_msgs/TFMessage``), interpolating with Slerp. Both hold the nearest sample for a stamp at
  most ``max_extrapolation`` seconds outside the samples (tf2 alone would refuse it);
  ``test/ros/test_ros_tf_backends.py`` checks they answer alike.
- :class:`TopicPoseSource`: ``geometry_msgs/PoseStamped`` or ``nav_msgs/Odometry`` giving
  ``T_world_base``, and the parameter ``camera_offset`` giving ``T_base_frame``.

Lookups never block: a pose that may still arrive (TF stamped behind the image, an unknown frame
that may appear) raises with ``may_arrive=True`` and the node retries until its ``tf_timeout``.

Threads: a :class:`ContainedNode` receives pose messages on its side node (``<name>_pose``, spun on
a thread of its own; for tf2_ros's buffer too), so they keep flowing while the node renders;
otherwise a busy node would drain /tf one message per executor turn and its TF would fall further
and further behind the (freshest, sensor-QoS) images. Another node receives them itself, in a
callback group of their own (its caller spins it). The buffers are guarded by a lock.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable

import numpy as np
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup

from mirage_ros.errors import InvalidInput, MirageError
from mirage_ros.messages.convert import pose_to_matrix, time_to_sec, transform_stamped, transform_to_matrix
from mirage_ros.ros.node_util import ContainedNode, WarningThrottle, node_warnings
from mirage_ros.transforms import TransformBuffer, TransformLookupError

try:
    import tf2_ros
except ImportError:  # pragma: no cover - depends on the machine
    tf2_ros = None
try:
    from tf2_msgs.msg import TFMessage
except ImportError:  # pragma: no cover - depends on the machine
    TFMessage = None


def pose_receiver(node):
    """The node that subscribes to poses for ``node`` (module doc, Threads)."""
    return node.side_node("pose") if isinstance(node, ContainedNode) else node


class PoseUnavailable(MirageError):
    """No camera pose at a stamp.

    Attributes:
        cause: for a person (goes into the throttled warning).
        may_arrive: True if waiting could help (TF behind the image, frame not yet published).
    """

    def __init__(self, cause: str, may_arrive: bool):
        self.cause = cause
        self.may_arrive = may_arrive
        super().__init__(cause)


class TfPoseSource:
    """Camera poses from TF: ``world_frame <- image frame_id`` at the image stamp.

    Args:
        node: the rclpy node the TF subscriptions live on.
        world_frame: fixed frame of the memory (``map``, ``odom``).
        base_frame: robot base frame (for planned paths).
        cache_time: seconds of TF history kept.
        max_extrapolation: seconds a lookup may fall past the samples (the nearest is held), with
            tf2_ros as with the fallback buffer.
    """

    def __init__(self, node, world_frame: str, base_frame: str, cache_time: float = 10.0,
                 max_extrapolation: float = 0.05, jump_threshold: float = 1.0):
        self.world_frame = world_frame
        self.base_frame = base_frame
        self._node = node
        self._warn = node_warnings(node)
        self._max_extrapolation = max_extrapolation
        if TFMessage is None:
            raise InvalidInput("pose_source", "'tf' needs tf2_ros or tf2_msgs; neither is importable "
                               "(use pose_source:=pose or odometry with pose_topic)")
        from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

        self._history = _History(max_extrapolation, cache_time, jump_threshold)
        self._static: list = []  # /tf_static is latched: sent once, kept across a time jump
        self._lock = threading.Lock()
        if tf2_ros is not None:
            from rclpy.duration import Duration

            self.backend = "tf2_ros"
            self._tf2 = tf2_ros.Buffer(cache_time=Duration(seconds=cache_time), node=node)
        else:
            self.backend = "tf2_msgs"
        # Subscribed here for both buffers, as tf2_ros's TransformListener does, so that one
        # transform stamped hours ahead cannot shadow the next ones (tf2 would drop them as older
        # than its cache for hours): a sample far behind the newest clears the dynamic transforms.
        static_qos = QoSProfile(depth=100, durability=DurabilityPolicy.TRANSIENT_LOCAL,
                                reliability=ReliabilityPolicy.RELIABLE)
        group = MutuallyExclusiveCallbackGroup()  # see the module doc: TF must not wait for frames
        receiver = pose_receiver(node)
        self._subs = [
            receiver.create_subscription(TFMessage, "/tf", lambda m: self._on_tf(m, False), 100, callback_group=group),
            receiver.create_subscription(TFMessage, "/tf_static", lambda m: self._on_tf(m, True), static_qos,
                                         callback_group=group),
        ]

    def _on_tf(self, msg, static: bool) -> None:
        with self._lock:
            if static:
                self._static.extend(msg.transforms)
            elif msg.transforms and self._history.jumped(time_to_sec(msg.transforms[0].header.stamp)):
                self._warn.warn("tf_time_jump", "TF time jumped back (bag loop?): dynamic transforms cleared")
                self._clear()
            self._add(msg.transforms, static)

    def _add(self, transforms, static: bool) -> None:
        if self.backend == "tf2_msgs":
            add_transforms(self._history.buffer, transforms, static, self._warn)
            return
        for tf in transforms:
            parent, child = tf.header.frame_id, tf.child_frame_id
            try:  # checked as the built-in buffer checks it; the quaternion normalised, as it takes it
                if not parent or parent == child:
                    raise InvalidInput("child_frame_id", f"a frame cannot be its own parent ({child!r})")
                tf = transform_stamped(transform_to_matrix(tf.transform), parent, child, tf.header.stamp)
            except InvalidInput as exc:
                self._warn.warn(f"tf {parent} -> {child}: {exc.parameter}",
                                f"ignoring transform {parent} -> {child}: {exc}")
                continue
            (self._tf2.set_transform_static if static else self._tf2.set_transform)(tf, "mirage_ros")

    def _clear(self) -> None:
        """Forget the dynamic transforms (the built-in buffer is already a fresh one), keep the static ones."""
        if self.backend == "tf2_ros":
            self._tf2.clear()
        self._add(self._static, True)

    def world_T_frame(self, frame_id: str, stamp_ns: int) -> np.ndarray:
        """``T_world_frame (4, 4)`` at ``stamp_ns`` nanoseconds; raises :class:`PoseUnavailable`."""
        return self.lookup(self.world_frame, frame_id, stamp_ns)

    def base_T_frame(self, frame_id: str, stamp_ns: int) -> np.ndarray:
        """``T_base_frame (4, 4)`` at ``stamp_ns`` nanoseconds; raises :class:`PoseUnavailable`."""
        return self.lookup(self.base_frame, frame_id, stamp_ns)

    def lookup(self, target: str, source: str, stamp_ns: int) -> np.ndarray:
        """``T_target_source (4, 4)`` at ``stamp_ns`` nanoseconds; raises :class:`PoseUnavailable`."""
        if self.backend == "tf2_ros":
            try:
                return transform_to_matrix(self._tf2_lookup(target, source, stamp_ns).transform)
            except tf2_ros.ExtrapolationException as exc:
                raise PoseUnavailable(f"TF {target} <- {source}: {exc}", "future" in str(exc)) from exc
            except tf2_ros.TransformException as exc:
                raise PoseUnavailable(f"TF {target} <- {source}: {exc}", True) from exc
        with self._lock:
            return lookup_buffer(self._history.buffer, target, source, stamp_ns / 1e9)


    def lookup_near(self, target: str, source: str, stamp_ns: int, fallback_ns: int) -> np.ndarray:
        """:meth:`lookup` at ``stamp_ns``, or at ``fallback_ns`` when ``stamp_ns`` is 0 or TF has not
        reached it yet (a message stamped now, TF a little behind)."""
        if stamp_ns:
            try:
                return self.lookup(target, source, stamp_ns)
            except PoseUnavailable as exc:
                if not exc.may_arrive:
                    raise
        return self.lookup(target, source, fallback_ns)

    def _tf2_lookup(self, target: str, source: str, stamp_ns: int):
        """tf2's transform at ``stamp_ns``, or, as the fallback buffer does, its newest (oldest)
        sample when the stamp lies at most ``max_extrapolation`` after (before) the samples: tf2
        itself never extrapolates. tf2 names the nearest sample's time in its error (to the
        microsecond); past the limit its error is raised as it is."""
        from rclpy.time import Time

        try:
            return self._tf2.lookup_transform(target, source, Time(nanoseconds=stamp_ns))
        except tf2_ros.ExtrapolationException as exc:
            match = _TF2_NEAREST.search(str(exc))
            if match is None:
                raise
            nearest_ns = round(float(match.group(2) or match.group(3)) * 1e9)
            if abs(stamp_ns - nearest_ns) > self._max_extrapolation * 1e9 + 1000:
                raise
            # Time(): the newest sample; the oldest is named to the microsecond: at it, or just after
            held = [nearest_ns, nearest_ns + 1000] if match.group(1) == "earliest" else [None]
            for ns in held:
                try:
                    return self._tf2.lookup_transform(target, source, Time() if ns is None else Time(nanoseconds=ns))
                except tf2_ros.TransformException:
                    continue
            raise


#: tf2's extrapolation errors name the nearest sample (tf2/src/cache.cpp)
_TF2_NEAREST = re.compile(r"(latest|earliest) data is at time ([0-9.]+)|only time ([0-9.]+) is in the buffer")


class _History:
    """The fallback buffer, replaced by an empty one when time jumps back (as tf2_ros clears its
    buffer on a jump of the ROS clock): the samples of a bag's previous loop would otherwise
    shadow the new ones, which the cache drops as too old."""

    def __init__(self, max_extrapolation: float, cache_time: float, jump_threshold: float):
        self._limits = (max_extrapolation, cache_time)
        self._jump = jump_threshold
        self._newest = -float("inf")
        self.buffer = TransformBuffer(max_extrapolation=max_extrapolation, cache_duration=cache_time)

    def jumped(self, stamp: float) -> bool:
        """Record a dynamic sample's stamp; True (and a fresh buffer) if time jumped back."""
        if stamp < self._newest - self._jump:
            self.buffer = TransformBuffer(max_extrapolation=self._limits[0], cache_duration=self._limits[1])
            self._newest = stamp
            return True
        self._newest = max(self._newest, stamp)
        return False


def lookup_buffer(buffer: TransformBuffer, target: str, source: str, stamp: float) -> np.ndarray:
    """``T_target_source`` from a :class:`TransformBuffer`, as :class:`PoseUnavailable` on failure.

    ``may_arrive`` is True for unknown or disconnected frames and for stamps past the newest
    sample of either chain (TF lagging the image), False for stamps before the kept history.
    """
    try:
        return buffer.lookup(target, source, stamp)
    except TransformLookupError as exc:
        known = buffer.frames()
        if target not in known or source not in known or buffer.root(target) != buffer.root(source):
            raise PoseUnavailable(f"TF {target} <- {source}: {exc}", True) from exc
        ranges = [r for r in (buffer.time_range(target), buffer.time_range(source)) if r is not None]
        future = any(stamp > last for _, last in ranges)
        kind = "extrapolation into the future" if future else "older than the TF history"
        raise PoseUnavailable(f"TF {target} <- {source} at t={stamp:.3f}: {kind} ({exc})", future) from exc


def add_transforms(buffer: TransformBuffer, transforms, static: bool, warn: WarningThrottle) -> None:
    """Insert ``geometry_msgs/TransformStamped`` into ``buffer``; bad ones are skipped with a
    warning throttled per edge and field (one call site must not hide one fault behind another)."""
    for tf in transforms:
        try:
            buffer.add(tf.header.frame_id, tf.child_frame_id, time_to_sec(tf.header.stamp),
                       transform_to_matrix(tf.transform), static=static)
        except InvalidInput as exc:
            warn.warn(f"tf {tf.header.frame_id} -> {tf.child_frame_id}: {exc.parameter}",
                      f"ignoring transform {tf.header.frame_id} -> {tf.child_frame_id}: {exc}")


class TopicPoseSource:
    """Camera poses from a ``PoseStamped`` / ``Odometry`` topic (``T_world_base``) and an offset.

    Args:
        node: the rclpy node.
        topic: pose or odometry topic.
        kind: ``"pose"`` (geometry_msgs/PoseStamped) or ``"odometry"`` (nav_msgs/Odometry).
        world_frame: expected header frame of the poses (a mismatch is warned about once).
        T_base_frame: ``(4, 4)`` pose of the image's frame in the robot base (``camera_offset``).
        cache_time, max_extrapolation: as for the TF fallback buffer.
    """

    def __init__(self, node, topic: str, kind: str, world_frame: str, T_base_frame: np.ndarray,
                 cache_time: float = 10.0, max_extrapolation: float = 0.05, jump_threshold: float = 1.0):
        if kind == "pose":
            from geometry_msgs.msg import PoseStamped as msg_type

            def to_matrix(m):
                return pose_to_matrix(m.pose)
        elif kind == "odometry":
            from nav_msgs.msg import Odometry as msg_type

            def to_matrix(m):
                return pose_to_matrix(m.pose.pose)
        else:
            raise InvalidInput("pose_source", f"must be 'tf', 'pose' or 'odometry', got {kind!r}")
        self.backend = kind
        self.world_frame = world_frame
        self._node = node
        self._warn = node_warnings(node)
        self._offset = np.asarray(T_base_frame, dtype=np.float64)
        self._history = _History(max_extrapolation, cache_time, jump_threshold)
        self._to_matrix: Callable = to_matrix
        self._warned_frame = False
        self._lock = threading.Lock()
        self._sub = pose_receiver(node).create_subscription(msg_type, topic, self._on_pose, 50,
                                                            callback_group=MutuallyExclusiveCallbackGroup())

    def _on_pose(self, msg) -> None:
        if msg.header.frame_id and msg.header.frame_id != self.world_frame and not self._warned_frame:
            self._node.get_logger().warning(
                f"poses are in {msg.header.frame_id!r}, world_frame is {self.world_frame!r}: "
                "using them as world poses")
            self._warned_frame = True
        stamp = time_to_sec(msg.header.stamp)
        try:
            with self._lock:
                if self._history.jumped(stamp):
                    self._warn.warn("pose_time_jump", "pose time jumped back (bag loop?): pose history cleared")
                self._history.buffer.add("world", "base", stamp, self._to_matrix(msg))
        except InvalidInput as exc:
            self._warn.warn(f"pose: {exc.parameter}", f"ignoring pose: {exc}")

    def world_T_frame(self, frame_id: str, stamp_ns: int) -> np.ndarray:
        """``T_world_base(stamp) @ camera_offset``; raises :class:`PoseUnavailable`."""
        with self._lock:
            return lookup_buffer(self._history.buffer, "world", "base", stamp_ns / 1e9) @ self._offset

    def base_T_frame(self, frame_id: str, stamp_ns: int) -> np.ndarray:
        """The ``camera_offset`` parameter."""
        return self._offset.copy()
