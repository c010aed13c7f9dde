"""``LastFrameWarp``: the newest frame's latents, each cell lifted into the world on its own and
warped to target cameras. No fusion: every ``insert`` replaces the frame.

It is the world model's newest-frame overlay (``pipeline.WorldModel``) and an evaluation baseline
(``last_frame_warp``). The points are the update graph's second output
(``LatentMemory.frame_points``: ``h * w`` rows, one per cell, no hashing); the read-out graphs of
the fused memory read them (``PointReadout``). Inside the world model it reads the fused memory's
own update, so the frame costs no second graph; alone, it keeps a one-frame memory.
"""

from __future__ import annotations

import threading
from dataclasses import replace

import numpy as np

from mirage_ros import geometry as g
from mirage_ros.errors import InvalidInput
from mirage_ros.memory import layout as L
from mirage_ros.memory.config import MemoryConfig, Readout
from mirage_ros.memory.latent_memory import LatentMemory
from mirage_ros.memory.point_readout import PointReadout, host_readout
from mirage_ros.runtime.session import BoundSession

#: the smallest table a memory takes: a one-frame memory only runs the update for its frame points
_ONE_FRAME_CAPACITY = 2 * L.WAYS


class LastFrameWarp:
    """The last frame inserted into ``memory``, read out like a memory (see module docstring).

    Args:
        config: memory parameters (``channels``, ``stride``, depth range, ``near``, dynamic
            threshold); every cell is drawn (``readout_min_count`` does not apply).
        provider: ``"auto"``, ``"cuda"`` or ``"cpu"``. cuda_graph: capture the graphs on CUDA.
        memory: read the frames this memory inserts (its owner inserts them); None: a one-frame
            memory of its own, fed by :meth:`insert`.

    Thread-safe: public methods hold one lock.
    """

    def __init__(self, config: MemoryConfig, provider: str = "auto", *, cuda_graph: bool = False,
                 memory: LatentMemory | None = None):
        if not isinstance(config, MemoryConfig):
            raise InvalidInput("config", f"must be a MemoryConfig, got {type(config).__name__}")
        self.config = replace(config, readout_min_count=1)
        self._own = memory is None
        self.memory = memory or LatentMemory(replace(config, capacity_points=_ONE_FRAME_CAPACITY, carve=False),
                                             provider, cuda_graph=cuda_graph)
        self._cuda_graph = cuda_graph
        self._reader: PointReadout | None = None  # sized to the frame's grid
        self._lock = threading.RLock()

    def insert(self, latent, depth, K: g.Intrinsics, T_world_cam, stamp: float, dynamic_mask=None,
               hole_depth: float = 0.0) -> None:
        """Replace the kept frame (arguments as ``LatentMemory.insert``).

        Raises:
            InvalidInput: naming the parameter (the kept frame is then unchanged), or this warp
                reads another memory's frames.
        """
        if not self._own:
            raise InvalidInput("memory", "this warp reads the frames its memory's owner inserts")
        with self._lock:
            self.memory.insert(latent, depth, K, T_world_cam, stamp, dynamic_mask, replace=True, hole_depth=hole_depth)

    def _points(self):
        """The kept frame's point buffers and a reader sized to them; None when none is kept."""
        points = self.memory.frame_points
        if points is None:
            return None
        n_points = points["counts"].shape()[0]
        if self._reader is None or self._reader.n_points != n_points:
            cfg = self.config
            self._reader = PointReadout(cfg.channels, cfg.stride, cfg.near, cfg.readout_min_count, n_points,
                                        self.memory.device, cuda_graph=self._cuda_graph)
        return points

    def points(self) -> dict[str, np.ndarray]:
        """Host copy of the kept frame's points, one row per latent cell (row-major): ``positions
        (M, 3) f32`` world frame (NaN where the cell has none), ``latents (M, C) f16``, ``counts
        (M,) i32`` (1 where a point); no rows when no frame is kept."""
        with self._lock:
            points = self.memory.frame_points
            if points is None:
                return {"positions": np.zeros((0, 3), np.float32),
                        "latents": np.zeros((0, self.config.channels), np.float16),
                        "counts": np.zeros(0, np.int32)}
            return {name: BoundSession.to_host(points[name]) for name in L.FRAME_POINT_NAMES}

    def stats(self) -> dict:
        """``points``: cells of the kept frame with a point; ``bytes``: what those points take
        (position 12, latent 2C, count 4 bytes each)."""
        points = int(self.points()["counts"].sum())
        return {"points": points, "bytes": points * (12 + 2 * self.config.channels + 4)}

    def read_out(self, T_world_cam, K: g.Intrinsics) -> Readout:
        """The kept frame at a camera, at latent resolution (as ``LatentMemory.read_out``; nothing
        valid when no frame is kept).

        Raises:
            InvalidInput: bad ``T_world_cam`` or ``K``.
        """
        with self._lock:
            points = self._points()
            if points is None:
                return _nothing(self.config, K, T_world_cam)
            return host_readout(self._reader.read_out(points, T_world_cam, K))

    def read_out_views_device(self, poses, K: g.Intrinsics) -> dict | None:
        """``PointReadout.read_out_views`` of the kept frame; None when none is kept."""
        with self._lock:
            points = self._points()
            return None if points is None else self._reader.read_out_views(points, poses, K)


def _nothing(config: MemoryConfig, K: g.Intrinsics, T_world_cam) -> Readout:
    """An all-invalid read-out on ``K``'s latent grid (inputs checked like a read-out's)."""
    if not isinstance(K, g.Intrinsics):
        raise InvalidInput("K", f"must be a geometry.Intrinsics, got {type(K).__name__}")
    g.check_pose(T_world_cam, "T_world_cam")
    h, w = K.scaled(config.stride).shape
    return Readout(np.zeros((config.channels, h, w), np.float32), np.zeros((h, w), bool),
                   np.zeros((h, w), np.float32), np.zeros((2, h, w), np.float32))
