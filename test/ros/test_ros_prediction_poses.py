"""Motion extrapolation and path sampling (pure maths)."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from mirage_ros.errors import InvalidInput
from mirage_ros.geometry import T_LINK_OPTICAL
from mirage_ros.ros.prediction_poses import check_path, extrapolate, path_poses, sample_path


def circle_pose(t, radius=2.0, speed=0.5, z=1.2):
    """Camera (optical) on a robot driving a circle counter-clockwise, looking forward."""
    yaw = speed / radius * t
    T_world_base = np.eye(4)
    T_world_base[:3, :3] = Rotation.from_rotvec([0, 0, yaw]).as_matrix()
    T_world_base[:3, 3] = [radius * np.sin(yaw), radius * (1 - np.cos(yaw)), z]
    return T_world_base @ T_LINK_OPTICAL


@pytest.mark.parametrize("radius", [2.0, 1e6])  # a turn and (nearly) a straight line
def test_constant_velocity_and_yaw_rate_follow_the_arc(radius):
    stamps = np.arange(0.0, 1.01, 0.1)
    poses = np.stack([circle_pose(t, radius) for t in stamps])
    for horizon in (0.5, 1.0, 2.0):
        predicted = extrapolate(stamps, poses, horizon, window=0.5)
        np.testing.assert_allclose(predicted, circle_pose(1.0 + horizon, radius), atol=1e-6)


def test_single_pose_and_standing_still_keep_the_pose():
    T = circle_pose(0.3)
    np.testing.assert_allclose(extrapolate([1.0], [T], 2.0), T)
    np.testing.assert_allclose(extrapolate([1.0, 1.1], [T, T], 2.0), T, atol=1e-12)
    with pytest.raises(InvalidInput, match="horizon"):
        extrapolate([1.0], [T], -1.0)
    with pytest.raises(InvalidInput, match="poses"):
        extrapolate([], np.zeros((0, 4, 4)), 1.0)


def test_sample_path_spacing_and_cap():
    positions = np.stack([np.linspace(0, 3, 61), np.zeros(61), np.zeros(61)], axis=1)  # 5 cm steps
    np.testing.assert_array_equal(sample_path(positions, 1.0, 10), [0, 20, 40, 60])
    np.testing.assert_array_equal(sample_path(positions, 1.0, 2), [0, 20])
    np.testing.assert_array_equal(sample_path(positions[:3], 0.0, 10), [0, 1, 2])
    assert len(sample_path(np.zeros((0, 3)), 1.0, 5)) == 0
    with pytest.raises(InvalidInput, match="path_spacing"):
        sample_path(positions, -1.0, 3)


def test_path_orientations_fill_from_direction():
    positions = np.array([[0, 0, 0], [0, 1, 0], [0, 2, 0]], float)
    quats = np.zeros((3, 4))
    quats[2] = [np.cos(0.5), 0, 0, np.sin(0.5)]  # goal yaw 1 rad, set explicitly
    poses = path_poses(positions, quats)
    np.testing.assert_allclose(poses[0, :3, 0], [0, 1, 0], atol=1e-12)  # facing +y, the path direction
    np.testing.assert_allclose(Rotation.from_matrix(poses[2, :3, :3]).as_rotvec(), [0, 0, 1.0], atol=1e-12)
    np.testing.assert_allclose(poses[:, :3, 3], positions)


def test_path_orientations_with_non_finite_parts_are_unset_and_indices_pick_the_same_poses():
    positions = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [2, 1, 0]], float)
    quats = np.array([[np.nan, 0, 0, 1], [np.inf, 0, 0, 0], [1e308, 1e308, 0, 0], [1, 0, 0, 0]])
    poses = path_poses(positions, quats)
    assert np.isfinite(poses).all()
    np.testing.assert_allclose(poses[0, :3, 0], [1, 0, 0], atol=1e-12)  # NaN part: heading of the path
    np.testing.assert_allclose(poses[1, :3, 0], [0, 1, 0], atol=1e-12)
    np.testing.assert_allclose(poses[3, :3, :3], np.eye(3), atol=1e-12)  # identity quaternion given
    np.testing.assert_allclose(path_poses(positions, quats, np.array([1, 3])), poses[[1, 3]])
    np.testing.assert_allclose(path_poses(positions[:1], np.zeros((1, 4)))[0], np.eye(4))


@pytest.mark.parametrize("extent", [1e8, 1e12, 1e300])
def test_sample_path_work_does_not_grow_with_the_path_length_in_metres(extent):
    import tracemalloc

    positions = np.array([[0.0, 0.0, 0.0], [extent, 0.0, 0.0], [extent, extent, 0.0]])
    tracemalloc.start()
    picks = sample_path(positions, 0.5, 8)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 1_000_000, f"{peak} bytes for a path of {extent:g} m"
    np.testing.assert_array_equal(picks, [0, 1, 2] if extent < 1e300 else [0, 1])  # 1e300 * sqrt(2) is inf


def test_check_path_names_the_first_bad_pose():
    good = np.zeros((3, 3))
    np.testing.assert_array_equal(check_path(good, 1e5), good)
    with pytest.raises(InvalidInput, match="pose 1 of 3 has a non-finite position"):
        check_path(np.array([[0, 0, 0], [np.nan, 0, 0], [np.inf, 0, 0]]), 1e5)
    with pytest.raises(InvalidInput, match="pose 2 .* beyond max_coordinate=100000 m"):
        check_path(np.array([[0, 0, 0], [1, 0, 0], [0, 2e5, 0]]), 1e5)
    assert check_path(np.zeros((0, 3)), 1e5).shape == (0, 3)
