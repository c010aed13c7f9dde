"""Simulated RGB-D camera: procedural indoor scenes with people, ground-truth depth, poses, masks.

    from mirage_ros.sim import SimConfig, Simulator
    sim = Simulator(SimConfig(scene="corridor", seed=3, width=320, height=240, rate_hz=10.0,
                              path="loop", actors=True))
    for frame in sim.frames(100):   # Frame(stamp, rgb, depth, K, T_world_cam, motion_mask, instance_ids)
        ...
    sim.pose_at(t)                  # T_world_cam (4, 4) at t seconds
    sim.render(T_world_cam, t)      # any level pose at time t (ground truth for evaluation)

Scenes (``families.py``; any seed >= 0 is a new layout, palette and furniture): ``corridor`` (a
ring corridor with doors into furnished side rooms), ``office`` (open plan: desks, chairs,
pillars, meeting rooms), ``warehouse`` (tall racks in aisles, pallets, a small office).
Textures are procedural (brick, plaster, wallpaper, wood, tiles, carpet, concrete, posters,
books, clothing); ceiling light panels make a per-room light map; a mild vignette darkens corners.
As through a real lens, textures are filtered to each pixel's footprint (mip levels) and a slight
blur softens the image: point-sampled textures alias differently at every distance, which no
camera shows and which would cap any reprojection (even of exact colours) near 22 dB PSNR.

Conventions:

- World = ``map`` (REP-103, z up, metres). ``T_world_cam`` maps the camera **optical** frame
  (x right, y down, z forward) into it. The camera is **level**: no roll and zero pitch, at
  ``camera_height`` (1.15 m) above the floor; TF: map -> odom (static: the start pose) ->
  base_link -> camera_link (0.1 m ahead, at camera height) -> camera_optical_frame.
- Time ``t``: seconds since the start; frame ``i`` is at ``i / rate_hz``. Bags and the node add
  ``bag.STAMP_OFFSET`` (1.7e9 s) because ROS treats time 0 as unset.
- Depth ``(H, W) float32``: optical z in metres, 0 = no return (beyond ``max_range``, default
  10 m). It is registered to colour and shares its intrinsics (pixel centres at integers).
- ``motion_mask``: pixels of people walking at that instant (people also stop now and then:
  standing, they keep their ``instance_ids`` value k >= 1 but leave the mask). 0 = static.
- Paths: ``loop`` (closed, detours into a room, revisits its start every ``sim.period`` s),
  ``forward``, ``pan``, ``static``; a diff-drive robot: turns in place at 0.6 rad/s, drives at
  ``speed`` m/s.
- ``noise="none"`` (default) gives exact ground truth; ``noise="kinect"`` adds a seeded
  Kinect-class sensor model (``sensor.py``). Everything is deterministic: the same config gives
  byte-identical frames, in any rendering order.

Outputs: this iterator; rosbag2 files (``bag.py``, ``mirage-ros sim record``); the ``sim_camera``
ROS 2 node (``mirage_ros.ros.sim_camera``); contact sheets (``mirage-ros sim preview``).
"""

from mirage_ros.sim.config import SimConfig
from mirage_ros.sim.families import FAMILIES
from mirage_ros.sim.motion import PATHS
from mirage_ros.sim.simulator import Frame, Simulator

SCENES = tuple(FAMILIES)

__all__ = ["SCENES", "PATHS", "SimConfig", "Simulator", "Frame"]
