"""Plausibility bounds and the frames' time line (pure, no ROS)."""

import numpy as np
import pytest

from mirage_ros.errors import InvalidInput
from mirage_ros.geometry import Intrinsics
from mirage_ros.ros.plausibility import Bounds, Timeline, Verdict, stamp_ahead

K = Intrinsics(525.0, 525.0, 319.5, 239.5, 640, 480)
BOUNDS = Bounds()


@pytest.mark.parametrize("fx, fy, cx, cy, cause", [
    (1e-30, 525.0, 319.5, 239.5, "horizontal field of view 180 deg"),
    (1e30, 525.0, 319.5, 239.5, "horizontal field of view 3.67e-26 deg"),
    (525.0, 1e-3, 319.5, 239.5, "vertical field of view"),
    (525.0, 525.0, 1e12, 239.5, "principal point 1e\\+12 px"),
    (525.0, 525.0, 319.5, -300.0, "principal point -300 px"),
])
def test_implausible_intrinsics_are_refused_naming_the_value(fx, fy, cx, cy, cause):
    with pytest.raises(InvalidInput, match=f"camera_info.k: {cause}"):
        BOUNDS.intrinsics(Intrinsics(fx, fy, cx, cy, 640, 480))


def test_real_cameras_pass():
    for camera in (K, Intrinsics(160.0, 160.0, 159.5, 119.5, 320, 240), Intrinsics(30.0, 30.0, 80.0, 60.0, 160, 120)):
        assert BOUNDS.intrinsics(camera) is camera


def test_depth_needs_a_reading_inside_the_range():
    depth = np.full((4, 4), 2.0, np.float32)
    assert BOUNDS.depth(depth) is depth
    for value, cause in ((1e30, "readings span 1e\\+30 to 1e\\+30 m"), (1e-30, "span 1e-30"),
                         (np.nan, "no valid reading"), (0.0, "no valid reading")):
        with pytest.raises(InvalidInput, match=f"depth: .*{cause}"):
            BOUNDS.depth(np.full((4, 4), value, np.float32))
    mixed = np.full((4, 4), 1e30, np.float32)
    mixed[0, 0] = 3.0
    BOUNDS.depth(mixed)  # one usable reading: the memory keeps what lies in range


def test_poses_far_away_or_not_finite_are_refused():
    T = np.eye(4)
    BOUNDS.pose(T, "camera pose")
    T[0, 3] = 1e30
    with pytest.raises(InvalidInput, match="camera pose: translation .* beyond max_coordinate=100000 m"):
        BOUNDS.pose(T, "camera pose")
    T[0, 3] = np.nan
    with pytest.raises(InvalidInput, match="camera pose: not finite"):
        BOUNDS.pose(T, "camera pose")


def test_stamps_far_ahead_of_the_clock_are_refused_unless_the_clock_has_not_started():
    stamp_ahead(1000.0 + 59.0, 1000.0, 60.0)
    stamp_ahead(1000.0 - 1e6, 1000.0, 60.0)  # a bag's old stamps, replayed without sim time
    stamp_ahead(1e9, 0.0, 60.0)  # use_sim_time before /clock: nothing to compare with
    with pytest.raises(InvalidInput, match="header.stamp: 10800.0 s ahead"):
        stamp_ahead(1000.0 + 3 * 3600, 1000.0, 60.0)


def _verdicts(timeline: Timeline, stamps) -> list[str]:
    return [timeline.check(t).value for t in stamps]


def test_one_stamp_hours_ahead_does_not_move_the_time_line():
    timeline = Timeline(jump_threshold=1.0, confirm_frames=3)
    got = _verdicts(timeline, [10.0, 10.1, 10.2 + 3 * 3600, 10.3, 10.4, 10.5])
    assert got == ["accept"] * 6  # the outlier is taken, the frames after it are still in order
    assert timeline.last == 10.5


def test_a_real_jump_ahead_moves_the_time_line_on_its_second_frame():
    timeline = Timeline(jump_threshold=1.0)
    assert _verdicts(timeline, [10.0, 50.0, 50.1]) == ["accept", "accept", "accept"]
    assert timeline.last == 50.1
    assert timeline.check(5.0) is Verdict.JUMP_PENDING  # before the time line's stamp prior to the move


def test_frames_ahead_in_a_row_then_the_old_time_line_never_reset():
    """Two or more frames hours ahead, in order among themselves, move the time line; the camera's
    next frame continues the old one: accepted, no reset (found by mirage-ros bench fuzz)."""
    timeline = Timeline(jump_threshold=1.0, confirm_frames=3)
    ahead = 3 * 3600
    got = _verdicts(timeline, [10.0, 10.1, 10.2 + ahead, 10.3 + ahead, 10.4 + ahead, 10.5, 10.6, 10.7, 10.8])
    assert got == ["accept"] * 9 and timeline.last == 10.8
    # a bag loop (back before the time line's start) still resets
    assert _verdicts(timeline, [0.0, 0.1, 0.2]) == ["jump_pending", "jump_pending", "reset"]


def test_a_jump_back_resets_only_once_confirmed_by_frames_in_order():
    timeline = Timeline(jump_threshold=1.0, confirm_frames=3)
    got = _verdicts(timeline, [100.0, 100.1, 0.0, 0.1, 0.2, 0.3])
    assert got == ["accept", "accept", "jump_pending", "jump_pending", "reset", "accept"]
    assert timeline.last == 0.3


def test_one_stamp_far_behind_is_skipped_and_forgotten():
    timeline = Timeline(jump_threshold=1.0, confirm_frames=3)
    got = _verdicts(timeline, [100.0, 5.0, 100.1, 5.1, 5.2, 100.2])
    assert got == ["accept", "jump_pending", "accept", "jump_pending", "jump_pending", "accept"]
    assert timeline.pending == 0 and timeline.last == 100.2


def test_out_of_order_and_confirm_one():
    timeline = Timeline(jump_threshold=1.0, confirm_frames=1)
    assert _verdicts(timeline, [5.0, 4.5, 5.0, 0.0, 0.1]) == ["accept", "out_of_order", "out_of_order", "reset",
                                                             "accept"]
    timeline.reset()
    assert timeline.check(-3.0) is Verdict.ACCEPT
