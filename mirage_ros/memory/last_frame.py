"""``LastFrameWarp``: the newest frame's latents, each cell lifted into the world and warped to
target cameras. No memory and no fusion: every ``insert`` replaces the frame.

It is the world model's newest-frame overlay (``pipeline.WorldModel``) and an evaluation baseline
(``last_frame_warp``). One graph lifts the frame (``memory_maths.frame_points``: ``h * w`` points,
one per cell, no hashing), the read-out graphs of the fused memory read it (``PointReadout``).
Inside the world model it reads the frame the fused memory has just put on the device
(:meth:`insert_frame`), so a frame goes up once for both.
"""

from __future__ import annotations

import threading
from dataclasses import replace

import numpy as np
import onnxruntime as ort

from mirage_ros import geometry as g
from mirage_ros import graphs
from mirage_ros.errors import InvalidInput
from mirage_ros.memory.config import MemoryConfig, Readout
from mirage_ros.memory.frame_inputs import Frame, FrameInputs
from mirage_ros.memory.point_readout import PointReadout, host_readout
from mirage_ros.runtime.session import BoundSession


class LastFrameWarp:
    """The last inserted frame, read out like a memory (see module docstring).

    Args:
        config: memory parameters (``channels``, ``stride``, depth range, ``near``, dynamic
            threshold); capacity, voxels and carving do not apply. Every cell is drawn
            (``readout_min_count`` is ignored: a frame's points are seen once).
        provider: ``"auto"``, ``"cuda"`` or ``"cpu"``. cuda_graph: capture the graphs on CUDA.

    Thread-safe: public methods hold one lock.
    """

    def __init__(self, config: MemoryConfig, provider: str = "auto", *, cuda_graph: bool = False):
        if not isinstance(config, MemoryConfig):
            raise InvalidInput("config", f"must be a MemoryConfig, got {type(config).__name__}")
        self.config = replace(config, readout_min_count=1)
        self._lift = BoundSession(graphs.path(graphs.frame_points_name(config.stride)), provider,
                                  cuda_graph=cuda_graph)
        self.device = self._lift.device
        self._cuda_graph = cuda_graph
        self._frames = FrameInputs(self._lift, self.config)
        self._hole = self._lift.alloc(1, np.float32)
        self._points: dict[str, ort.OrtValue] | None = None  # sized to the first frame's grid
        self._reader: PointReadout | None = None
        self._kept = False  # a frame is kept (the buffers hold one)
        self._lock = threading.RLock()

    def insert(self, latent, depth, K: g.Intrinsics, T_world_cam, stamp: float, dynamic_mask=None,
               hole_depth: float = 0.0) -> None:
        """Replace the kept frame (arguments as ``LatentMemory.insert``; ``hole_depth``: metres
        given to pixels without a reading, 0 = none).

        Raises:
            InvalidInput: naming the parameter; the kept frame is then unchanged.
        """
        with self._lock:
            self.insert_frame(self._frames.write(latent, depth, K, T_world_cam, stamp, dynamic_mask), hole_depth)

    def insert_frame(self, frame: Frame, hole_depth: float = 0.0) -> None:
        """Replace the kept frame by one already on this device (``LatentMemory.frame``)."""
        h, w = frame.K_latent.height, frame.K_latent.width
        with self._lock:
            if self._reader is None or self._reader.n_points != h * w:
                self._allocate(h * w)
            BoundSession.write(self._hole, np.array([hole_depth], np.float32))
            self._lift.run({**frame.inputs, "hole_depth": self._hole}, self._points)
            self._kept = True

    def clear(self) -> None:
        """Forget the kept frame (buffers and sessions stay)."""
        with self._lock:
            self._kept = False

    def _allocate(self, n_points: int) -> None:
        cfg = self.config
        self._points = {"positions": self._lift.upload(np.full((n_points, 3), np.nan, np.float32)),
                        "latents": self._lift.alloc((n_points, cfg.channels), np.float16),
                        "counts": self._lift.alloc(n_points, np.int32)}
        self._reader = PointReadout(cfg.channels, cfg.stride, cfg.near, cfg.readout_min_count, n_points,
                                    self.device, cuda_graph=self._cuda_graph)
        self._lift.forget_bindings()

    def points(self) -> dict[str, np.ndarray]:
        """Host copy of the kept frame's points, one row per latent cell (row-major): ``positions
        (M, 3) f32`` world frame (NaN where the cell has none), ``latents (M, C) f16``, ``counts
        (M,) i32`` (1 where a point); empty before any insert."""
        with self._lock:
            if not self._kept:
                return {"positions": np.zeros((0, 3), np.float32),
                        "latents": np.zeros((0, self.config.channels), np.float16),
                        "counts": np.zeros(0, np.int32)}
            return {name: BoundSession.to_host(value) for name, value in self._points.items()}

    def stats(self) -> dict:
        """``points``: cells of the kept frame with a point; ``bytes``: what those points take
        (position 12, latent 2C, count 4 bytes each)."""
        points = int(self.points()["counts"].sum())
        return {"points": points, "bytes": points * (12 + 2 * self.config.channels + 4)}

    def read_out(self, T_world_cam, K: g.Intrinsics) -> Readout:
        """The kept frame at a camera, at latent resolution (as ``LatentMemory.read_out``; before
        any insert: nothing valid).

        Raises:
            InvalidInput: bad ``T_world_cam`` or ``K``.
        """
        with self._lock:
            if not self._kept:
                return _nothing(self.config, K)
            return host_readout(self._reader.read_out(self._points, T_world_cam, K))

    def read_out_views_device(self, poses, K: g.Intrinsics) -> dict | None:
        """``PointReadout.read_out_views`` of the kept frame; None when none is kept."""
        with self._lock:
            return self._reader.read_out_views(self._points, poses, K) if self._kept else None


def _nothing(config: MemoryConfig, K: g.Intrinsics) -> Readout:
    """An all-invalid read-out on ``K``'s latent grid."""
    if not isinstance(K, g.Intrinsics):
        raise InvalidInput("K", f"must be a geometry.Intrinsics, got {type(K).__name__}")
    h, w = K.scaled(config.stride).shape
    return Readout(np.zeros((config.channels, h, w), np.float32), np.zeros((h, w), bool),
                   np.zeros((h, w), np.float32), np.zeros((2, h, w), np.float32))
