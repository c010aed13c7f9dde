"""Baselines fed the same frames as :class:`LatentMemory`, through the same ONNX read-out graph.

- :class:`RGBPointCloudMemory`: the explicit memory Mirage replaces. Every valid pixel of every
  frame is kept as a coloured world point; a view is rendered by rasterising the cloud at the
  target camera (z-buffer, the read-out graph at stride 1) and, to get a latent, re-encoding that
  picture with the encoder, its gaps filled with the nearest covered pixel first. Its size grows
  with path length; ``keep_frames=1`` turns it into a last-frame colour warp.
- :class:`LastFrameWarp`: no memory, only the last frame's latents lifted and warped to the target
  (a :class:`LatentMemory` reset before each insert).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import replace

import numpy as np
import onnxruntime as ort
from scipy import ndimage

from mirage_ros import geometry as g
from mirage_ros.errors import InvalidInput
from mirage_ros.memory import layout as L
from mirage_ros.memory.config import MemoryConfig, Readout
from mirage_ros.memory.latent_memory import LatentMemory
from mirage_ros.runtime.session import BoundSession

POINT_BYTES = 3 * 4 + 3  # float32 xyz + uint8 rgb


class _GrowingCloud:
    """Host arrays of the cloud with amortised growth (appending a frame costs its own size) and
    the per-frame sizes, so the oldest frames can be dropped when only ``keep_frames`` are kept."""

    def __init__(self, keep_frames: int | None):
        self.keep_frames = keep_frames
        self.sizes: deque[int] = deque()
        self.n = 0
        self._allocate(1 << 16)

    def _allocate(self, capacity: int) -> None:
        positions = np.empty((capacity, 3), np.float32)
        colours = np.empty((capacity, 3), np.float16)  # [0, 1]: the rasteriser's "latent"
        if self.n:
            positions[: self.n], colours[: self.n] = self.positions[: self.n], self.colours[: self.n]
        self.positions, self.colours = positions, colours
        # the read-out graph's counts input: a coloured point is drawn from its first frame
        self.ids = {**L.readout_ids(capacity), "counts": np.ones(capacity, np.int32)}

    def append(self, points: np.ndarray, colours: np.ndarray) -> None:
        if self.keep_frames is not None and len(self.sizes) == self.keep_frames:
            drop = self.sizes.popleft()  # only a few frames are kept: shifting them is cheap
            self.positions[: self.n - drop] = self.positions[drop : self.n]
            self.colours[: self.n - drop] = self.colours[drop : self.n]
            self.n -= drop
        if self.n + len(points) > len(self.positions):
            self._allocate(max(2 * len(self.positions), self.n + len(points)))
        self.positions[self.n : self.n + len(points)] = points
        self.colours[self.n : self.n + len(points)] = colours / np.float16(255)
        self.n += len(points)
        self.sizes.append(len(points))


class RGBPointCloudMemory:
    """Coloured point cloud of every valid pixel (world frame), rendered by z-buffer rasterisation.

    Args:
        provider: ``"auto"``, ``"cuda"`` or ``"cpu"`` for the rasteriser.
        keep_frames: keep only the last ``keep_frames`` frames (None: all; 1: last-frame warp).
        min_depth, max_depth: depth readings kept, metres.
        near: rasteriser near plane, metres.
        fill_px: before re-encoding (:meth:`read_out`), pixels no point lands on take the colour and
            depth of the nearest covered pixel up to this distance (pixels; inf: every pixel, the
            default: a cloud seen from nearer than it was observed leaves gaps between its points,
            and black gaps re-encode into speckle; the renderer fills the rest worse than this
            does, measured in docs/evaluation.md); 0 keeps the raw rasterisation.
        cuda_graph: capture the rasteriser as a CUDA graph (as ``LatentMemory`` may).
    """

    def __init__(self, provider: str = "auto", keep_frames: int | None = None, min_depth: float = 0.1,
                 max_depth: float = 10.0, near: float = 0.05, fill_px: float = math.inf, *,
                 cuda_graph: bool = False):
        if keep_frames is not None and keep_frames < 1:
            raise InvalidInput("keep_frames", f"must be None or >= 1, got {keep_frames}")
        if not fill_px >= 0:
            raise InvalidInput("fill_px", f"must be >= 0 pixels, got {fill_px}")
        self._raster = BoundSession(L.graph_path("readout"), provider, cuda_graph=cuda_graph)
        self.device = self._raster.device
        self.min_depth, self.max_depth, self.near = min_depth, max_depth, near
        self.fill_px = fill_px
        self._host = _GrowingCloud(keep_frames)
        self._cloud: dict[str, ort.OrtValue] | None = None
        self._views: dict[tuple, dict[str, ort.OrtValue]] = {}

    def insert(self, rgb, depth, K: g.Intrinsics, T_world_cam, dynamic_mask=None) -> None:
        """Append the frame's valid pixels as coloured world points.

        Args:
            rgb: ``(H, W, 3) uint8``; depth: ``(H, W)`` metres; K: their intrinsics;
            T_world_cam: ``(4, 4)`` camera pose; dynamic_mask: ``(H, W) bool`` pixels to drop.
        """
        rgb, depth = np.asarray(rgb), np.asarray(depth, np.float32)
        if rgb.shape != (*K.shape, 3) or rgb.dtype != np.uint8:
            raise InvalidInput("rgb", f"must be {(*K.shape, 3)} uint8, got {rgb.dtype}{rgb.shape}")
        T_world_cam = g.check_pose(T_world_cam, "T_world_cam")
        keep = g.valid_depth(depth) & (depth > self.min_depth) & (depth < self.max_depth)
        if dynamic_mask is not None:
            keep &= ~np.asarray(dynamic_mask, bool)
        self._host.append(g.transform_points(T_world_cam, g.backproject(depth, K)[keep]), rgb[keep])
        self._cloud = None

    @property
    def points(self) -> int:
        return self._host.n

    @property
    def bytes(self) -> int:
        """Bytes of the cloud in its lean form: 15 per point (float32 xyz + uint8 rgb); the
        rasteriser's working copy (fp16 colour, index columns) is not counted against it."""
        return self.points * POINT_BYTES

    def sync(self) -> None:
        """Hand the cloud to the rasteriser (done lazily by :meth:`render`): on CPU the host
        arrays are bound without a copy, on CUDA they are uploaded."""
        if self._cloud is None:
            host, n = self._host, self._host.n
            share = self._raster.wrap if self.device == "cpu" else self._raster.upload
            self._cloud = {"positions": share(host.positions[:n]), "latents": share(host.colours[:n]),
                           **{name: share(ids[:n]) for name, ids in host.ids.items()}}
            self._raster.forget_bindings()

    def render_device(self, T_world_cam, K: g.Intrinsics) -> dict[str, ort.OrtValue]:
        """Rasterise at a camera: device buffers ``latent`` = ``(3, H, W)`` colour in ``[0, 1]``,
        ``valid (H, W)``, ``depth (H, W)`` and the unused ``offset (2, H, W)`` (reused by the next
        call of the same size)."""
        self.sync()
        view = self._views.get(K.shape)
        if view is None:
            alloc = self._raster.alloc
            view = self._views[K.shape] = {
                "projection": alloc((3, 4), np.float32),
                "grid": self._raster.upload(L.readout_grid(K.width, K.height, self.near)),
                "far": self._raster.upload(np.full(K.shape, np.inf, np.float32)),
                "latent": alloc((3, *K.shape), np.float32), "valid": alloc(K.shape, np.bool_),
                "depth": alloc(K.shape, np.float32), "offset": alloc((2, *K.shape), np.float32),
            }
        T_cam_world = g.invert_pose(g.check_pose(T_world_cam, "T_world_cam"))
        outputs = {n: view[n] for n in Readout.FIELDS}
        if self.points == 0:  # the graph gathers from the cloud: an empty one covers nothing
            for name, buffer in outputs.items():
                BoundSession.write(buffer, np.zeros(buffer.shape(), buffer.numpy().dtype))
            return outputs
        BoundSession.write(view["projection"], L.projection_matrix(K, T_cam_world))
        inputs = {**self._cloud, "projection": view["projection"], "grid": view["grid"], "far": view["far"]}
        self._raster.run(inputs, outputs)
        return outputs

    def render(self, T_world_cam, K: g.Intrinsics) -> tuple[np.ndarray, np.ndarray]:
        """``(H, W, 3) uint8`` picture and ``(H, W) bool`` coverage of the cloud at a camera."""
        out = self.render_device(T_world_cam, K)
        colour = BoundSession.to_host(out["latent"]).transpose(1, 2, 0)
        return (np.clip(colour, 0, 1) * 255 + 0.5).astype(np.uint8), BoundSession.to_host(out["valid"])

    def filled(self, T_world_cam, K: g.Intrinsics) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The rasterised picture with its gaps filled up to ``fill_px``: ``(H, W, 3) uint8`` colour,
        ``(H, W) bool`` covered (or filled) pixels and ``(H, W)`` depth in metres (0 elsewhere)."""
        rgb, covered = self.render(T_world_cam, K)
        depth = np.where(covered, BoundSession.to_host(self._views[K.shape]["depth"]), 0.0)
        if self.fill_px > 0 and covered.any():
            distance, (rows, cols) = ndimage.distance_transform_edt(~covered, return_indices=True)
            covered = distance <= self.fill_px
            rgb = np.where(covered[..., None], rgb[rows, cols], 0).astype(np.uint8)
            depth = np.where(covered, depth[rows, cols], 0.0)
        return rgb, covered, depth

    def read_out(self, T_world_cam, K: g.Intrinsics, encode: Callable[[np.ndarray], np.ndarray],
                 stride: int) -> Readout:
        """The baseline's latent at a view: the :meth:`filled` picture re-encoded with ``encode``
        (``(H, W, 3) uint8 -> (C, H//stride, W//stride)``). Valid cells: any covered (or filled)
        pixel; their depth is the rasterised depth pooled like the latent memory's (the renderer
        ignores cells without depth)."""
        rgb, covered, depth = self.filled(T_world_cam, K)
        latent = np.asarray(encode(rgb), np.float32)
        valid = g.pool_mask(covered, stride) > 0
        return Readout(latent, valid, g.pool_depth(depth, stride))


class LastFrameWarp:
    """Latent warp of the last frame only (no memory): same graphs as :class:`LatentMemory`."""

    def __init__(self, config: MemoryConfig, provider: str = "auto"):
        # it holds one frame: every point was seen once
        self.memory = LatentMemory(replace(config, readout_min_count=1), provider)

    def insert(self, latent, depth, K, T_world_cam, stamp, dynamic_mask=None) -> None:
        """Replace the kept frame (arguments as :meth:`LatentMemory.insert`)."""
        self.memory.reset()
        self.memory.insert(latent, depth, K, T_world_cam, stamp, dynamic_mask)

    def read_out(self, T_world_cam, K) -> Readout:
        return self.memory.read_out(T_world_cam, K)
