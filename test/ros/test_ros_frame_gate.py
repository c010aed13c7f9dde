"""FrameGate: frames wait for their pose, then briefly for their moving mask, in order."""

import numpy as np

from mirage_ros.geometry import Intrinsics
from mirage_ros.ros.frame_gate import FrameGate, PendingFrame
from mirage_ros.ros.pose_source import PoseUnavailable

K = Intrinsics(50.0, 50.0, 15.5, 11.5, 32, 24)


def frame(stamp, arrived):
    return PendingFrame(int(stamp * 1e9), stamp, "cam", np.zeros((24, 32, 3), np.uint8),
                        np.ones((24, 32), np.float32), K, arrived)


def poses_known_until(t_known):
    def pose_of(f):
        if f.stamp > t_known:
            raise PoseUnavailable("extrapolation into the future", may_arrive=True)
        return np.eye(4)
    return pose_of


def test_frame_waits_for_mask_then_goes_with_it():
    gate = FrameGate(mask_hold=0.15, tf_timeout=0.5)
    gate.push(frame(1.0, arrived=10.0))
    posed, ready, dropped = gate.poll(10.0, poses_known_until(5.0))
    assert [f.stamp for f in posed] == [1.0] and ready == [] and dropped == []
    mask = np.ones((24, 32), bool)
    gate.add_mask(1_000_000_000, mask)
    posed, ready, dropped = gate.poll(10.01, poses_known_until(5.0))
    assert posed == [] and len(ready) == 1 and ready[0][1] is mask


def test_hold_expires_without_mask():
    gate = FrameGate(mask_hold=0.15, tf_timeout=0.5)
    gate.push(frame(1.0, arrived=10.0))
    gate.poll(10.0, poses_known_until(5.0))
    assert gate.poll(10.1, poses_known_until(5.0))[1] == []
    (_, ready, _) = gate.poll(10.2, poses_known_until(5.0))
    assert len(ready) == 1 and ready[0][1] is None


def test_tf_lag_is_waited_for_then_frame_dropped_after_timeout():
    gate = FrameGate(mask_hold=0.0, tf_timeout=0.5)
    gate.push(frame(1.0, arrived=10.0))
    gate.push(frame(2.0, arrived=10.1))
    posed, ready, dropped = gate.poll(10.2, poses_known_until(1.0))
    assert [f.stamp for f, _ in ready] == [1.0] and dropped == []
    posed, ready, dropped = gate.poll(10.7, poses_known_until(1.0))
    assert ready == [] and len(dropped) == 1 and "no camera pose after 0.60 s" in dropped[0][1]
    assert len(gate) == 0


def test_pose_that_cannot_arrive_drops_at_once_and_order_is_kept():
    gate = FrameGate(mask_hold=0.0, tf_timeout=5.0)
    gate.push(frame(1.0, arrived=0.0))
    gate.push(frame(2.0, arrived=0.0))

    def pose_of(f):
        if f.stamp == 1.0:
            raise PoseUnavailable("older than the TF history", may_arrive=False)
        return np.eye(4)

    _, ready, dropped = gate.poll(0.0, pose_of)
    assert [f.stamp for f, _ in dropped] == [1.0] and [f.stamp for f, _ in ready] == [2.0]


def test_queue_is_bounded():
    gate = FrameGate(mask_hold=1.0, tf_timeout=1.0, max_pending=2)
    assert gate.push(frame(1.0, 0.0)) == [] and gate.push(frame(2.0, 0.0)) == []
    dropped = gate.push(frame(3.0, 0.0))
    assert [f.stamp for f, _ in dropped] == [1.0] and "queue full" in dropped[0][1]


def test_only_the_head_is_announced_and_it_is_never_dropped_for_room():
    gate = FrameGate(mask_hold=1.0, tf_timeout=1.0, max_pending=2)
    gate.push(frame(1.0, 0.0))
    gate.push(frame(2.0, 0.0))
    posed, ready, _ = gate.poll(0.0, poses_known_until(9.0))
    assert [f.stamp for f in posed] == [1.0] and ready == []  # frame 2 is not rendered yet
    dropped = gate.push(frame(3.0, 0.1)) + gate.push(frame(4.0, 0.2))
    assert [f.stamp for f, _ in dropped] == [2.0]  # the oldest uncommitted one, not the announced head
    gate.add_mask(1_000_000_000, np.zeros((24, 32), bool))
    posed, ready, _ = gate.poll(0.3, poses_known_until(9.0))
    assert [f.stamp for f, _ in ready] == [1.0] and [f.stamp for f in posed] == [3.0]


def test_frames_of_the_same_stamp_are_two_frames():
    """The world model looks a frame up in lists (``frame in posed``): comparing two frames field by
    field compared their arrays and raised (the fuzz run's masks hit it at the callback boundary)."""
    a, b = frame(1.0, arrived=10.0), frame(1.0, arrived=10.0)
    assert a in [a] and b not in [a]
    posed = [a, b]
    posed.remove(b)
    assert posed == [a]
