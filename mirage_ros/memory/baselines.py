"""Baselines fed the same frames as :class:`LatentMemory`, through the same ONNX read-out graph.

- :class:`RGBPointCloudMemory`: the explicit memory Mirage replaces. Every valid pixel of every
  frame is kept as a coloured world point; a view is rendered by rasterising the cloud at the
  target camera (z-buffer, the read-out graph at stride 1) and, to get a latent, re-encoding that
  picture with the encoder, its gaps filled with the nearest covered pixel first. Its size grows
  with path length; ``keep_frames=1`` turns it into a last-frame colour warp.
- ``last_frame.LastFrameWarp``: no memory, only the last frame's latents lifted and warped to the
  target.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable

import numpy as np
import onnxruntime as ort
from scipy import ndimage

from mirage_ros import geometry as g
from mirage_ros import graphs
from mirage_ros.errors import InvalidInput
from mirage_ros.memory import layout as L
from mirage_ros.memory.config import Readout
from mirage_ros.runtime.session import BoundSession

POINT_BYTES = 3 * 4 + 3  # float32 xyz + uint8 rgb
HOST_POINT_BYTES = 3 * 4 + 3 * 2  # what a point takes in host memory: float32 xyz + float16 rgb


class _BlockCloud:
    """Host arrays of the cloud in fixed-size blocks: appending a frame costs its own size (no
    reallocation), and the rasteriser runs block by block, so its working memory is bounded by one
    block, not the cloud. Keeps per-frame sizes so the oldest frames can be dropped when only
    ``keep_frames`` are kept."""

    def __init__(self, keep_frames: int | None, block_points: int):
        self.keep_frames, self.block_points = keep_frames, block_points
        self.sizes: deque[int] = deque()
        self.positions: list[np.ndarray] = []  # (block_points, 3) float32 each
        self.colours: list[np.ndarray] = []  # (block_points, 3) float16 in [0, 1]: the rasteriser's "latent"
        self.n = 0

    def block_lengths(self) -> list[int]:
        """Points held by each block (all full but the last)."""
        full, rest = divmod(self.n, self.block_points)
        return [self.block_points] * full + ([rest] if rest else [])

    def append(self, points: np.ndarray, colours: np.ndarray) -> None:
        if self.keep_frames is not None and len(self.sizes) == self.keep_frames:
            drop = self.sizes.popleft()  # only a few frames are kept: re-packing them is cheap
            lengths = self.block_lengths()
            kept = [np.concatenate([b[:n] for b, n in zip(blocks, lengths)] or [np.empty((0, 3), dtype)])[drop:]
                    for blocks, dtype in ((self.positions, np.float32), (self.colours, np.float16))]
            self.positions, self.colours, self.n = [], [], 0
            self._write(*kept)
        self._write(points, colours / np.float16(255))
        self.sizes.append(len(points))

    def _write(self, points: np.ndarray, colours: np.ndarray) -> None:
        done = 0
        while done < len(points):
            block, at = divmod(self.n, self.block_points)
            if block == len(self.positions):  # np.empty: pages are committed only where written
                self.positions.append(np.empty((self.block_points, 3), np.float32))
                self.colours.append(np.empty((self.block_points, 3), np.float16))
            take = min(len(points) - done, self.block_points - at)
            self.positions[block][at : at + take] = points[done : done + take]
            self.colours[block][at : at + take] = colours[done : done + take]
            self.n += take
            done += take


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
        block_points: points rasterised per run (default: 2**22 on CPU, 2**25 on CUDA). The graph's
            working memory is about 75 bytes per point it is given: in blocks, a cloud of 61M
            points (200 frames at 640x480) rasterised in 4.7 s within its own 1.1 GB on this
            2-core CPU, against 11.4 s and 4.5 GB more in one run. On CUDA a view of a cloud that
            fits one block never leaves the device.
    """

    def __init__(self, provider: str = "auto", keep_frames: int | None = None, min_depth: float = 0.1,
                 max_depth: float = 10.0, near: float = 0.05, fill_px: float = math.inf, *,
                 cuda_graph: bool = False, block_points: int | None = None):
        if keep_frames is not None and keep_frames < 1:
            raise InvalidInput("keep_frames", f"must be None or >= 1, got {keep_frames}")
        if not fill_px >= 0:
            raise InvalidInput("fill_px", f"must be >= 0 pixels, got {fill_px}")
        self._raster = BoundSession(graphs.path("readout"), provider, cuda_graph=cuda_graph)
        self.device = self._raster.device
        self.min_depth, self.max_depth, self.near = min_depth, max_depth, near
        self.fill_px = fill_px
        if block_points is None:
            block_points = 1 << (22 if self.device == "cpu" else 25)
        if block_points < 1:
            raise InvalidInput("block_points", f"must be >= 1, got {block_points}")
        self._host = _BlockCloud(keep_frames, block_points)
        # the read-out graph's constant index inputs for one block (a coloured point is drawn
        # from its first frame: counts 1)
        self._ids = {**L.readout_ids(block_points), "counts": np.ones(block_points, np.int32)}
        self._blocks: list[dict[str, ort.OrtValue]] = []  # the rasteriser's copy, block by block
        self._dirty_from = 0  # first block that changed since the last sync
        self._inserts = 0
        self._last_filled: tuple[tuple, tuple] | None = None  # (view key, filled()): two readers of one view
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
        keep = g.valid_depth(depth, self.min_depth, self.max_depth)
        if dynamic_mask is not None:
            keep &= ~np.asarray(dynamic_mask, bool)
        host = self._host
        # dropping the oldest frame re-packs every block; otherwise only the last one and new ones change
        self._dirty_from = min(self._dirty_from, 0 if host.keep_frames else host.n // host.block_points)
        host.append(g.transform_points(T_world_cam, g.backproject(depth, K)[keep]), rgb[keep])
        self._inserts += 1

    @property
    def points(self) -> int:
        return self._host.n

    @property
    def bytes(self) -> int:
        """Bytes of the cloud in its lean form: 15 per point (float32 xyz + uint8 rgb); the
        rasteriser's working copy (fp16 colour) is not counted against it."""
        return self.points * POINT_BYTES

    def sync(self) -> None:
        """Hand the blocks changed since the last call to the rasteriser (done lazily by
        :meth:`render`): on CPU the host arrays are bound without a copy, on CUDA they are uploaded."""
        host, first = self._host, self._dirty_from
        lengths = host.block_lengths()
        if first >= len(lengths) and len(self._blocks) == len(lengths):
            return
        share = self._raster.wrap if self.device == "cpu" else self._raster.upload
        self._blocks = self._blocks[:first] + [
            {"positions": share(host.positions[i][:n]), "latents": share(host.colours[i][:n]),
             **{name: share(ids[:n]) for name, ids in self._ids.items()}}
            for i, n in enumerate(lengths) if i >= first]
        self._dirty_from = len(lengths)
        self._raster.forget_bindings()

    def render_device(self, T_world_cam, K: g.Intrinsics) -> dict[str, ort.OrtValue]:
        """Rasterise at a camera: device buffers ``latent`` = ``(3, H, W)`` colour in ``[0, 1]``,
        ``valid (H, W)``, ``depth (H, W)`` and the unused ``offset (2, H, W)`` (reused by the next
        call of the same size). Blocks after the first are z-buffered against the depth the
        earlier ones reached (merged on the host); equal depths go to the newer point, as within
        a block."""
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
        camera = {"projection": view["projection"], "grid": view["grid"], "far": view["far"]}
        if len(self._blocks) == 1:
            self._raster.run({**self._blocks[0], **camera}, outputs)
            return outputs
        depth = np.full(K.shape, np.inf, np.float32)
        merged = {name: np.zeros(buffer.shape(), np.float32) for name, buffer in outputs.items()
                  if name in ("latent", "offset")}
        valid = np.zeros(K.shape, bool)
        for block in self._blocks:
            BoundSession.write(view["far"], depth)
            self._raster.run({**block, **camera}, outputs)
            hit = BoundSession.to_host(outputs["valid"])
            depth = np.where(hit, BoundSession.to_host(outputs["depth"]), depth)
            for name, image in merged.items():
                merged[name] = np.where(hit, BoundSession.to_host(outputs[name]), image)
            valid |= hit
        BoundSession.write(view["far"], np.full(K.shape, np.inf, np.float32))
        for name, image in {**merged, "valid": valid, "depth": np.where(valid, depth, 0.0)}.items():
            BoundSession.write(outputs[name], image)
        return outputs

    def render(self, T_world_cam, K: g.Intrinsics) -> tuple[np.ndarray, np.ndarray]:
        """``(H, W, 3) uint8`` picture and ``(H, W) bool`` coverage of the cloud at a camera."""
        out = self.render_device(T_world_cam, K)
        colour = BoundSession.to_host(out["latent"]).transpose(1, 2, 0)
        return (np.clip(colour, 0, 1) * 255 + 0.5).astype(np.uint8), BoundSession.to_host(out["valid"])

    def filled(self, T_world_cam, K: g.Intrinsics) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The rasterised picture with its gaps filled up to ``fill_px``: ``(H, W, 3) uint8`` colour,
        ``(H, W) bool`` covered (or filled) pixels and ``(H, W)`` depth in metres (0 elsewhere).
        The last view's arrays are kept: asked again before the next insert, it is not rasterised
        again (evaluation reads one view both re-encoded and as it is)."""
        key = (self._inserts, np.asarray(T_world_cam, np.float64).tobytes(), K)
        if self._last_filled is not None and self._last_filled[0] == key:
            return self._last_filled[1]
        rgb, covered = self.render(T_world_cam, K)
        depth = np.where(covered, BoundSession.to_host(self._views[K.shape]["depth"]), 0.0)
        if self.fill_px > 0 and covered.any():
            distance, (rows, cols) = ndimage.distance_transform_edt(~covered, return_indices=True)
            covered = distance <= self.fill_px
            rgb = np.where(covered[..., None], rgb[rows, cols], 0).astype(np.uint8)
            depth = np.where(covered, depth[rows, cols], 0.0)
        for array in (rgb, covered, depth):  # shared by the view's readers
            array.setflags(write=False)
        self._last_filled = (key, (rgb, covered, depth))
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
