"""Pose lookups that decide whether to wait for TF or skip the frame (fallback TF buffer)."""

import numpy as np
import pytest

from mirage_ros.errors import InvalidInput
from mirage_ros.ros.pose_source import PoseUnavailable, lookup_buffer
from mirage_ros.transforms import TransformBuffer, offset_matrix


def _buffer():
    buffer = TransformBuffer(max_extrapolation=0.05)
    for t in (1.0, 1.1, 1.2):
        T = np.eye(4)
        T[0, 3] = t
        buffer.add("map", "base_link", t, T)
    buffer.add("base_link", "camera", 0.0, offset_matrix([0.1, 0, 1.0, 0, 0, 0]), static=True)
    return buffer


def test_interpolated_lookup_through_static_offset():
    T = lookup_buffer(_buffer(), "map", "camera", 1.05)
    np.testing.assert_allclose(T[:3, 3], [1.15, 0.0, 1.0])


def test_future_waits_past_and_unknown_frames_do_not():
    buffer = _buffer()
    with pytest.raises(PoseUnavailable, match="future") as future:
        lookup_buffer(buffer, "map", "camera", 2.0)
    assert future.value.may_arrive
    with pytest.raises(PoseUnavailable, match="older") as past:
        lookup_buffer(buffer, "map", "camera", 0.5)
    assert not past.value.may_arrive
    with pytest.raises(PoseUnavailable, match="unknown frame") as unknown:
        lookup_buffer(buffer, "map", "gripper_camera", 1.1)
    assert unknown.value.may_arrive  # may be published later; the node's tf_timeout bounds the wait


def test_offset_parameter():
    T = offset_matrix([1, 2, 3, 0, 0, np.pi / 2])
    np.testing.assert_allclose(T[:3, 0], [0, 1, 0], atol=1e-12)
    np.testing.assert_allclose(T[:3, 3], [1, 2, 3])
    with pytest.raises(InvalidInput, match="camera_offset"):
        offset_matrix([0, 0, 0])


def test_each_bad_transform_is_warned_about_by_edge_and_field():
    """Throttled per edge and field, not per call site: a frequent fault never hides a rare one."""
    from mirage_ros.messages import convert
    from mirage_ros.ros.node_util import WarningThrottle
    from mirage_ros.ros.pose_source import add_transforms

    class Log:
        def __init__(self):
            self.lines = []

        def warning(self, text):
            self.lines.append(text)

    log = Log()
    warn = WarningThrottle(log)
    nan = convert.transform_stamped(np.eye(4), "map", "base_link", convert.sec_to_time(1.0))
    nan.transform.translation.x = float("nan")
    loop = convert.transform_stamped(np.eye(4), "odom", "odom", convert.sec_to_time(1.0))
    buffer = TransformBuffer()
    for _ in range(5):  # the same two faults over and over within the throttle period
        add_transforms(buffer, [nan, loop], False, warn)
    assert len(log.lines) == 2, log.lines
    assert "ignoring transform map -> base_link: transform: must be 3 finite numbers" in log.lines[0]
    assert "ignoring transform odom -> odom" in log.lines[1]
