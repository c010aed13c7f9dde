"""Simulated RGB-D camera: procedural indoor scenes with people, ground-truth depth, poses, masks.

    from mirage_ros.sim import SimConfig, Simulator
    sim = Simulator(SimConfig(scene="corridor", seed=3, width=320, height=240, rate_hz=10.0,
                              path="loop", actors=True))
    for frame in sim.frames(100):   # Frame(stamp, rgb, depth, K, T_world_cam, motion_mask, instance_ids)
        ...
    sim.pose_at(t)                  # T_world_cam (4, 4) at t seconds
    sim.render(T_world_cam, t)      # any level pose at time t (ground truth for evaluation)
"""

from mirage_ros.sim.config import SimConfig
from mirage_ros.sim.families import FAMILIES
from mirage_ros.sim.motion import PATHS
from mirage_ros.sim.simulator import Frame, Simulator

SCENES = tuple(FAMILIES)

__all__ = ["SCENES", "PATHS", "SimConfig", "Simulator", "Frame"]
