"""People give way to the robot (sim/motion.Walkers): they keep clear of the camera, wait or step
aside, never stand still for good, and the yielding stays a pure function of (config, t)."""

import numpy as np

from mirage_ros.sim import SimConfig, Simulator


def gaps(sim: Simulator, stamps) -> np.ndarray:
    """``(T,)`` distance (m) from the camera to the nearest person's centre at each stamp."""
    return np.array([np.min(np.hypot(*(sim.walkers.state(t)[0] - sim.camera_xy(t)).T)) for t in stamps])


def test_people_keep_clear_of_a_driving_robot():
    sim = Simulator(SimConfig(scene="corridor", seed=1, actors=5))
    stamps = np.arange(0.0, 60.0, 0.1)
    near = gaps(sim, stamps)
    assert near.min() >= 0.7  # the robot (no collision avoidance) never reaches anyone
    assert (near < 1.5).sum() > 20  # ... although it meets people often
    clock = np.array(sim.walkers._clock)
    assert (np.diff(clock, axis=0) == 0).any()  # someone waited for it
    moving = np.array([sim.walkers.state(t)[3] for t in stamps])
    assert moving.mean() > 0.5  # people still walk most of the time


def test_yielding_does_not_depend_on_query_order():
    config = SimConfig(scene="office", seed=4, actors=4)
    forward, backward = Simulator(config), Simulator(config)
    stamps = np.arange(0.0, 20.0, 0.37)
    ahead = [forward.walkers.state(t)[0] for t in stamps]
    behind = [backward.walkers.state(t)[0] for t in stamps[::-1]][::-1]
    np.testing.assert_array_equal(np.array(ahead), np.array(behind))


def test_people_walk_round_a_standing_robot():
    sim = Simulator(SimConfig(scene="corridor", seed=2, path="static", actors=5))
    stamps = np.arange(0.0, 40.0, 0.1)
    assert gaps(sim, stamps).min() >= 0.7
    clock = np.array(sim.walkers._clock)
    assert not (np.diff(clock, axis=0) == 0).any()  # nobody waits for a robot that does not move
