"""TF lookups answer alike with real tf2_ros and with the built-in buffer (``TfPoseSource``):
interpolation, holding the nearest sample within ``max_extrapolation``, waiting for future TF,
refusing stamps before the history, unknown frames, one transform stamped hours ahead. A real node
in this process receives the transforms over DDS. Without tf2_ros (CI, PyPI wheels) only the
built-in buffer runs; the venv that ``../shared/tools/ros-verify.sh`` builds has real tf2_ros
(docs/install.md)."""

from __future__ import annotations

import importlib.util
import time
from contextlib import contextmanager

import numpy as np
import pytest

BACKENDS = ["tf2_msgs", pytest.param("tf2_ros", marks=pytest.mark.skipif(
    importlib.util.find_spec("tf2_ros") is None,
    reason="real tf2_ros is not installed here: run this test in the ros-verify venv (docs/install.md)"))]
#: stamp (s) -> what ``map <- camera`` answers: the camera's x, or ("unavailable", may_arrive)
EXPECTED = {
    10.05: 10.15,  # interpolated between 10.0 and 10.1, plus the camera's 0.1 m on the base
    10.2: 10.3,  # the newest sample
    10.23: 10.3,  # 30 ms after it: held (max_extrapolation 0.05 s)
    10.3: ("unavailable", True),  # 100 ms after it: TF may still come
    9.97: 10.1,  # 30 ms before the oldest sample: held
    9.9: ("unavailable", False),  # before the history: it will never come
}


@contextmanager
def tf_source(backend: str, monkeypatch):
    """``(source, publish(x, t), wait_for(t))``: a TfPoseSource of ``backend`` on a node of its own
    context, fed ``map -> base_link`` at x metres from a publisher in this process, and the
    camera 0.1 m ahead of the base on /tf_static."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from tf2_msgs.msg import TFMessage

    from mirage_ros.messages import convert
    from mirage_ros.ros import pose_source
    from mirage_ros.ros.pose_source import PoseUnavailable, TfPoseSource
    from mirage_ros.transforms import offset_matrix

    if backend == "tf2_msgs":
        monkeypatch.setattr(pose_source, "tf2_ros", None)  # the built-in buffer, as where tf2_ros is missing
    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        node = rclpy.create_node(f"tf_backend_{backend}", context=context)
        source = TfPoseSource(node, "map", "base_link", cache_time=10.0, max_extrapolation=0.05)
        assert source.backend == backend
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        static = node.create_publisher(TFMessage, "/tf_static", QoSProfile(
            depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL, reliability=ReliabilityPolicy.RELIABLE))
        dynamic = node.create_publisher(TFMessage, "/tf", 100)
        static.publish(TFMessage(transforms=[convert.transform_stamped(
            offset_matrix([0.1, 0.0, 0.0, 0.0, 0.0, 0.0]), "base_link", "camera", convert.sec_to_time(0.0))]))

        def publish(x: float, t: float) -> None:
            dynamic.publish(TFMessage(transforms=[convert.transform_stamped(
                offset_matrix([x, 0.0, 0.0, 0.0, 0.0, 0.0]), "map", "base_link", convert.sec_to_time(t))]))

        def wait_for(t: float) -> None:  # until the sample published for t (x = t) has been taken
            deadline = time.monotonic() + 20
            while True:
                executor.spin_once(timeout_sec=0.05)
                try:
                    if abs(source.lookup("map", "camera", round(t * 1e9))[0, 3] - (t + 0.1)) < 1e-6:
                        return
                except PoseUnavailable:
                    pass
                assert time.monotonic() < deadline, f"no transform at {t} within 20 s"

        yield source, publish, wait_for
    finally:
        rclpy.shutdown(context=context)


def _answer(source, t: float):
    from mirage_ros.ros.pose_source import PoseUnavailable

    try:
        return round(float(source.lookup("map", "camera", round(t * 1e9))[0, 3]), 6)
    except PoseUnavailable as exc:
        return ("unavailable", exc.may_arrive)


@pytest.mark.usefixtures("interfaces")
@pytest.mark.parametrize("backend", BACKENDS)
def test_tf_lookups_answer_alike_on_both_backends(backend, monkeypatch):
    from mirage_ros.ros.pose_source import PoseUnavailable

    with tf_source(backend, monkeypatch) as (source, publish, wait_for):
        for t in (10.0, 10.1, 10.2):
            publish(t, t)
        wait_for(10.2)
        wait_for(10.0)
        answers = {t: _answer(source, t) for t in EXPECTED}
        with pytest.raises(PoseUnavailable) as unknown:
            source.lookup("map", "gripper", 10_100_000_000)
        np.testing.assert_allclose(source.base_T_frame("camera", 10_100_000_000)[0, 3], 0.1)
    assert answers == EXPECTED
    assert unknown.value.may_arrive


@pytest.mark.usefixtures("interfaces")
@pytest.mark.parametrize("backend", BACKENDS)
def test_one_transform_stamped_hours_ahead_does_not_shadow_the_next_ones(backend, monkeypatch):
    """tf2 keeps ``cache_time`` behind its newest sample: one sample 3 h ahead would make every
    normal one 'too old' for 3 h. A sample far behind the newest clears the dynamic transforms."""
    with tf_source(backend, monkeypatch) as (source, publish, wait_for):
        for t in (10.0, 10.1):
            publish(t, t)
        wait_for(10.1)
        publish(99.0, 10.2 + 3 * 3600)
        for t in (10.3, 10.4, 10.5):
            publish(t, t)
        wait_for(10.5)
        answers = [_answer(source, t) for t in (10.35, 10.45)]
    assert answers == [10.45, 10.55]  # interpolated on the camera's time line, the static camera kept
