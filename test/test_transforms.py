"""TransformBuffer: chain composition, interpolation, extrapolation limit and bad input."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from mirage_ros.errors import InvalidInput
from mirage_ros.geometry import T_LINK_OPTICAL, compose, invert_pose
from mirage_ros.transforms import TransformBuffer, TransformLookupError


def pose(translation, rotvec=(0.0, 0.0, 0.0)):
    T = np.eye(4)
    T[:3, :3] = Rotation.from_rotvec(rotvec).as_matrix()
    T[:3, 3] = translation
    return T


def rep105_buffer():
    """map -> odom -> base_link (dynamic) -> camera_link -> camera_optical_frame (static)."""
    tf = TransformBuffer(max_extrapolation=0.05)
    tf.add("map", "odom", 0.0, pose([1.0, 0.0, 0.0], [0, 0, 0.1]), static=True)
    for t in np.arange(0.0, 2.01, 0.1):
        tf.add("odom", "base_link", t, pose([t, 0.5 * t, 0.0], [0, 0, 0.3 * t]))
    tf.add("base_link", "camera_link", 0.0, pose([0.2, 0.0, 1.0]), static=True)
    tf.add("camera_link", "camera_optical_frame", 0.0, T_LINK_OPTICAL, static=True)
    return tf


def test_chain_composes_every_edge_at_a_sample_stamp():
    tf = rep105_buffer()
    expected = compose(
        pose([1.0, 0.0, 0.0], [0, 0, 0.1]), pose([1.0, 0.5, 0.0], [0, 0, 0.3]), pose([0.2, 0.0, 1.0]), T_LINK_OPTICAL
    )
    np.testing.assert_allclose(tf.lookup("map", "camera_optical_frame", 1.0), expected, atol=1e-12)
    np.testing.assert_allclose(tf.lookup("camera_optical_frame", "map", 1.0), invert_pose(expected), atol=1e-12)
    assert tf.root("camera_optical_frame") == "map"
    assert tf.parent("odom") == "map" and tf.parent("map") is None


def test_lookup_between_siblings_goes_through_the_common_ancestor():
    tf = TransformBuffer()
    tf.add("base", "left", 0.0, pose([0.0, 1.0, 0.0]), static=True)
    tf.add("base", "right", 0.0, pose([0.0, -1.0, 0.0]), static=True)
    np.testing.assert_allclose(tf.lookup("left", "right", 5.0)[:3, 3], [0.0, -2.0, 0.0])


def test_interpolates_translation_linearly_and_rotation_by_slerp():
    tf = TransformBuffer()
    tf.add("world", "cam", 0.0, pose([0.0, 0.0, 0.0], [0, 0, 0.0]))
    tf.add("world", "cam", 1.0, pose([2.0, 0.0, 0.0], [0, 0, 1.0]))
    T = tf.lookup("world", "cam", 0.25)
    np.testing.assert_allclose(T[:3, 3], [0.5, 0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(Rotation.from_matrix(T[:3, :3]).as_rotvec(), [0, 0, 0.25], atol=1e-12)


def test_out_of_order_samples_are_sorted_and_duplicates_replaced():
    tf = TransformBuffer()
    tf.add("world", "cam", 1.0, pose([1.0, 0.0, 0.0]))
    tf.add("world", "cam", 0.0, pose([0.0, 0.0, 0.0]))
    tf.add("world", "cam", 1.0, pose([3.0, 0.0, 0.0]))
    np.testing.assert_allclose(tf.lookup("world", "cam", 0.5)[:3, 3], [1.5, 0.0, 0.0])


def test_extrapolation_is_held_within_the_limit_and_refused_beyond():
    tf = rep105_buffer()
    np.testing.assert_allclose(
        tf.lookup("odom", "base_link", 2.04), tf.lookup("odom", "base_link", 2.0), atol=1e-12
    )
    with pytest.raises(TransformLookupError, match="after the last sample"):
        tf.lookup("map", "camera_optical_frame", 2.2)
    with pytest.raises(TransformLookupError, match="before the first sample"):
        tf.lookup("map", "camera_optical_frame", -0.5)
    assert not tf.can_transform("map", "camera_optical_frame", 2.2)
    assert tf.time_range("camera_optical_frame") == pytest.approx((0.0, 2.0))
    assert tf.time_range("camera_link") == pytest.approx((0.0, 2.0))
    assert TransformBuffer().time_range("anything") is None


def test_unknown_and_disconnected_frames_fail_with_their_names():
    tf = rep105_buffer()
    with pytest.raises(TransformLookupError, match="unknown frame 'nowhere'"):
        tf.lookup("map", "nowhere", 1.0)
    tf.add("other_root", "island", 0.0, np.eye(4), static=True)
    with pytest.raises(TransformLookupError, match="not connected"):
        tf.lookup("map", "island", 1.0)


def test_cache_duration_drops_old_samples():
    tf = TransformBuffer(cache_duration=0.5)
    for t in np.arange(0.0, 2.01, 0.1):
        tf.add("world", "cam", t, pose([t, 0.0, 0.0]))
    assert tf.time_range("cam")[0] == pytest.approx(1.5)
    with pytest.raises(TransformLookupError):
        tf.lookup("world", "cam", 1.0)


@pytest.mark.parametrize(
    ("call", "parameter"),
    [
        (lambda tf: tf.add("a", "a", 0.0, np.eye(4)), "child_frame_id"),
        (lambda tf: tf.add("", "b", 0.0, np.eye(4)), "frame_id"),
        (lambda tf: tf.add("a", "b", float("nan"), np.eye(4)), "stamp"),
        (lambda tf: tf.add("a", "b", 0.0, np.diag([2.0, 1.0, 1.0, 1.0])), "T_parent_child"),
        (lambda tf: tf.add("x", "child", 0.0, np.eye(4)), "child_frame_id"),  # re-parent
        (lambda tf: tf.add("child", "root", 0.0, np.eye(4)), "child_frame_id"),  # loop
        (lambda tf: tf.add("root", "child", 1.0, np.eye(4), static=True), "static"),
        (lambda tf: TransformBuffer(max_extrapolation=-1.0), "max_extrapolation"),
        (lambda tf: TransformBuffer(cache_duration=0.0), "cache_duration"),
    ],
)
def test_bad_input_names_the_parameter(call, parameter):
    tf = TransformBuffer()
    tf.add("root", "child", 0.0, np.eye(4))
    with pytest.raises(InvalidInput) as info:
        call(tf)
    assert info.value.parameter == parameter


rotvecs = st.lists(st.floats(-1.5, 1.5), min_size=3, max_size=3)
translations = st.lists(st.floats(-10, 10), min_size=3, max_size=3)


@settings(max_examples=40, deadline=None)
@given(translations, rotvecs, translations, rotvecs, st.floats(0.0, 1.0))
def test_lookup_is_inverse_consistent_and_within_the_endpoints(t0, r0, t1, r1, alpha):
    tf = TransformBuffer()
    tf.add("world", "cam", 10.0, pose(t0, r0))
    tf.add("world", "cam", 11.0, pose(t1, r1))
    T = tf.lookup("world", "cam", 10.0 + alpha)
    np.testing.assert_allclose(T @ tf.lookup("cam", "world", 10.0 + alpha), np.eye(4), atol=1e-9)
    translation = T[:3, 3]
    assert np.all(translation <= np.maximum(t0, t1) + 1e-9) and np.all(translation >= np.minimum(t0, t1) - 1e-9)
    # Slerp: the rotation from either endpoint is a fraction alpha / (1 - alpha) of the whole.
    R0, R1, R = (Rotation.from_matrix(M) for M in (pose(t0, r0)[:3, :3], pose(t1, r1)[:3, :3], T[:3, :3]))
    total = (R0.inv() * R1).magnitude()
    assert (R0.inv() * R).magnitude() == pytest.approx(alpha * total, abs=1e-6)
