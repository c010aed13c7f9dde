"""``WorldModel``: encoder + latent memory + renderer, no ROS and no torch.

    wm = WorldModel()                                   # shipped networks, memory sized to them
    wm.observe(rgb, depth, K, T_world_cam, stamp, dynamic_mask=None)
    pred = wm.predict(T_world_cam, K)                   # Prediction(rgb, depth, valid, confidence)
    views = wm.predict_views(poses, K)                  # several poses in one call

The read-out the renderer gets is the fused memory's, overlaid with the newest frame's own latents
where that frame sees the target cell's surface (``newest_overlay``, ``memory_maths.views.overlay``):
stored latents are averages over views (view-dependent) and a cell's winning point may come from
any earlier view, while the newest frame's latents are consistent with each other (measured on
validation seed 1000: +0.2 to +0.35 dB PSNR on future views and revisits). Optionally
(``see_through_fill``), cells that show a point through a gap in a nearer surface then take that
surface's point (``memory.see_through``).

Data stays on the networks' device from the camera image to the rendered ``uint8`` view: the
encoder's latent goes into the memory as a device buffer, whose update also gives the newest
frame's own points (``LatentMemory.frame_points``); read-outs, overlay, renderer and 8-bit
conversion run on device buffers, and a view comes down as its image plus its latent-grid
validity and depth (full-size depth and validity are built on the host when first asked for).

Frames: ``T_world_cam (4, 4)`` maps the camera **optical** frame to the world frame. Images
``(H, W, 3) uint8``, depth ``(H, W) float32`` metres (0/NaN = no reading). The latent grid is
``(H // s, W // s)``; predictions are rendered on that grid times ``s`` and padded with edge
pixels (``valid`` False) to the full ``K`` size when ``H`` or ``W`` is not a multiple of ``s``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from mirage_ros import geometry as g
from mirage_ros.errors import InvalidInput
from mirage_ros.memory import LatentMemory, MemoryConfig, Readout
from mirage_ros.memory.last_frame import LastFrameWarp
from mirage_ros.memory.see_through import fill_see_through
from mirage_ros.runtime.networks import SUBCELL_PLACEMENT, Networks, pad_to
from mirage_ros.runtime.session import BoundSession

#: With CUDA graphs, batches of more views than this are padded to the next power of two: each
#: batch size is a captured graph (and buffers) of every stage, so sizes must stay few.
GRAPH_EXACT_VIEWS = 8
#: Percentile of a frame's depth readings at which its pixels without a reading are placed in the
#: newest-frame overlay (``hole_depth``).
HOLE_DEPTH_PERCENTILE = 95.0


def hole_depth(depth: np.ndarray, config: MemoryConfig) -> float:
    """The depth at which a frame's pixels without a reading in ``(min_depth, max_depth)`` enter the
    newest-frame overlay: the frame's far depth (the ``HOLE_DEPTH_PERCENTILE`` of its readings);
    0 (they stay out) when it has none.

    RGB-D sensors return nothing beyond their range, on dark, shiny or sunlit surfaces and in
    shadows: a fifth of a Kinect frame indoors. Those pixels still have colour and latents. Put
    far away, they warp exactly under rotation and nearly so under small translations, and only
    where nothing nearer is known (the overlay lets the fused memory's nearer surfaces win), so
    the newest frame fills views that would otherwise be the renderer's guess.
    """
    depth = np.asarray(depth)
    if depth.ndim != 2 or not np.issubdtype(depth.dtype, np.number):
        return 0.0  # not a depth image: the memory's insert says why
    # the percentile of every 4th row and column: the same far depth for a sixteenth of the cost
    sample = depth[::4, ::4]
    sample = sample[g.valid_depth(sample, config.min_depth, config.max_depth)]
    if not sample.size:
        reading = g.valid_depth(depth, config.min_depth, config.max_depth)
        if not reading.any():
            return 0.0
        sample = depth[reading]
    return float(np.percentile(sample, HOLE_DEPTH_PERCENTILE))


@dataclass(frozen=True)
class Prediction:
    """A predicted camera view.

    Attributes:
        rgb: ``(H, W, 3) uint8`` rendered image (holes filled by the renderer).
        cell_valid: ``(h, w) bool`` latent cells the memory (or the newest frame) covered.
        cell_depth: ``(h, w) float32`` metres of those cells' points (0 where not covered).
        stride: latent stride ``s`` (``h = H // s``).
        readout: the latent-resolution read-out the image was rendered from, when asked for
            (``predict(..., with_readout=True)``), else None.

    ``depth``, ``valid`` and ``confidence`` are the cells at image size, made on first access.
    """

    rgb: np.ndarray
    cell_valid: np.ndarray
    cell_depth: np.ndarray
    stride: int
    readout: Readout | None = None

    @cached_property
    def valid(self) -> np.ndarray:
        """``(H, W) bool`` pixels whose latent cell was covered (False on the ragged edge)."""
        return g.upsample_cells(self.cell_valid, self.stride, self.rgb.shape[:2])

    @cached_property
    def depth(self) -> np.ndarray:
        """``(H, W) float32`` metres from the memory (0 where it has nothing)."""
        cells = np.where(self.cell_valid, self.cell_depth, 0.0).astype(np.float32)
        return g.upsample_cells(cells, self.stride, self.rgb.shape[:2])

    @cached_property
    def confidence(self) -> np.ndarray:
        """``(H, W) float32`` in ``[0, 1]``: 1 where covered, 0 in filled holes."""
        return self.valid.astype(np.float32)


@dataclass
class _Timer:
    """Running mean of stage durations in milliseconds."""

    totals: dict = field(default_factory=dict)
    counts: dict = field(default_factory=dict)

    def add(self, name: str, seconds: float) -> None:
        self.totals[name] = self.totals.get(name, 0.0) + seconds * 1e3
        self.counts[name] = self.counts.get(name, 0) + 1

    def means(self) -> dict:
        return {f"{k}_ms": self.totals[k] / self.counts[k] for k in self.totals}


def _host_readouts(composed: dict) -> list[Readout]:
    """Host copies of the read-outs a view shows (``Networks.compose_device``'s ``cell_*`` and
    latent), one per view."""
    latent, valid, depth, offset = (BoundSession.to_host(composed[n]) for n in
                                    ("render_latent", "cell_valid", "cell_depth", "cell_offset"))
    return [Readout(*fields) for fields in zip(latent, valid, depth, offset)]


def memory_config_for(networks: Networks, **overrides) -> MemoryConfig:
    """The memory the networks were trained with: their channels and stride, and the fusion
    settings of their manifest (``Networks.memory_settings``); ``overrides`` replace fields."""
    return MemoryConfig(**{"channels": networks.channels, "stride": networks.stride,
                           **networks.memory_settings, **overrides})


class WorldModel:
    """The world model pipeline used by the ROS nodes and by evaluation.

    Args:
        networks: loaded :class:`Networks` (default: the shipped ones on ``provider``).
        memory_config: memory parameters; ``channels`` and ``stride`` must match the networks
            (default: :func:`memory_config_for`).
        provider: ``"auto"``, ``"cuda"`` or ``"cpu"`` for networks and memory.
        newest_overlay: overlay the newest frame's latents on the memory's read-out (module doc);
            False renders the fused memory alone.
        see_through_fill: give cells seen through a gap in a nearer surface that surface's point
            (``memory.see_through``, which says when it helps); off by default: it also spreads
            the points of people the moving-object detector let into memory.
        fill_holes: the newest frame's pixels without a depth reading enter the newest-frame
            overlay at the frame's far depth (:func:`hole_depth`); never the fused memory.
        cuda_graph: on CUDA, capture the memories' graphs as CUDA graphs (the default networks
            are loaded so too; pass networks loaded with ``cuda_graph`` for the whole path).

    Raises:
        InvalidInput: ``memory_config`` disagrees with the networks.
    """

    def __init__(self, networks: Networks | None = None, memory_config: MemoryConfig | None = None,
                 provider: str = "auto", newest_overlay: bool = True, see_through_fill: bool = False,
                 fill_holes: bool = True, cuda_graph: bool = False):
        self.networks = networks or Networks.load(provider=provider, cuda_graph=cuda_graph)
        n = self.networks
        self.memory_config = memory_config or memory_config_for(n)
        if (self.memory_config.channels, self.memory_config.stride) != (n.channels, n.stride):
            raise InvalidInput("memory_config", f"channels/stride {self.memory_config.channels}/"
                                                f"{self.memory_config.stride} differ from the "
                                                f"networks' {n.channels}/{n.stride}")
        self.memory = LatentMemory(self.memory_config, provider=provider, cuda_graph=cuda_graph)
        self._cuda_graph = cuda_graph and self.memory.device == "cuda"
        self.newest_overlay = newest_overlay
        self.see_through_fill = see_through_fill
        self.fill_holes = fill_holes
        # the newest frame's own points: the fused memory's update gives them (no second graph)
        self._newest = LastFrameWarp(self.memory_config, cuda_graph=self._cuda_graph, memory=self.memory)
        self._latent = None  # the last observed frame's latent (device buffer view)
        self._lock = self.networks.lock  # observe and predict share the networks' device buffers
        self._timer = _Timer()
        self.frames_observed = 0
        self.last_stamp: float | None = None

    @property
    def stride(self) -> int:
        return self.networks.stride

    def observe(self, rgb: np.ndarray, depth: np.ndarray, K: g.Intrinsics, T_world_cam: np.ndarray,
                stamp: float, dynamic_mask: np.ndarray | None = None) -> None:
        """Encode a frame and fuse it into the memory.

        Args:
            rgb: ``(H, W, 3) uint8``; depth: ``(H, W)`` metres, registered to ``rgb``;
            K: intrinsics of both (``K.shape == (H, W)``); T_world_cam: ``(4, 4)`` optical frame
            pose; stamp: seconds; dynamic_mask: ``(H, W) bool`` moving pixels kept out of memory.

        Raises:
            InvalidInput: naming the parameter (``rgb`` size differs from ``K``, bad pose, ...).
        """
        if not isinstance(K, g.Intrinsics):
            raise InvalidInput("K", f"must be a geometry.Intrinsics, got {type(K).__name__}")
        rgb = np.asarray(rgb)
        if rgb.shape[:2] != K.shape:
            raise InvalidInput("rgb", f"size {rgb.shape[:2]} differs from K (H, W) = {K.shape}")
        with self._lock:
            t0 = time.perf_counter()
            latent = self.networks.encode_device(rgb)
            t1 = time.perf_counter()
            holes = hole_depth(depth, self.memory_config) if self.newest_overlay and self.fill_holes else 0.0
            self.memory.insert(latent, depth, K, T_world_cam, stamp, dynamic_mask, hole_depth=holes)
            t2 = time.perf_counter()
            self._latent = latent
            self._timer.add("encode", t1 - t0)
            self._timer.add("insert", t2 - t1)
            self.frames_observed += 1
            self.last_stamp = float(stamp)

    def newest_latent(self) -> np.ndarray | None:
        """The last observed frame's latent ``(C, H // s, W // s) float32`` (a host copy; None
        before any ``observe``). Taken from the encoder's buffer: ask before the networks encode
        another image of that size."""
        with self._lock:
            return None if self._latent is None else BoundSession.to_host(self._latent)

    def predict(self, T_world_cam: np.ndarray, K: g.Intrinsics, with_readout: bool = False) -> Prediction:
        """Render the memory at a camera pose ``T_world_cam (4, 4)`` with intrinsics ``K``.

        Args:
            with_readout: also download the read-out rendered (``Prediction.readout``; its latent
                is ``C`` floats per cell, more than the image).

        Returns:
            :class:`Prediction` of size ``K.shape``. Before any ``observe`` the memory is empty:
            the image is the renderer's guess from nothing and ``valid`` is all False.
        """
        return self.predict_views([T_world_cam], K, with_readout)[0]

    def predict_views(self, poses, K: g.Intrinsics, with_readout: bool = False) -> list[Prediction]:
        """:meth:`predict` at each of ``poses`` (``T_world_cam (4, 4)`` each, sharing ``K``: the
        views along a path, or at several horizons) with one read-out call per memory and one
        renderer call for all: the same predictions as single calls, for less than their cost.

        Raises:
            InvalidInput: no pose, a bad pose or ``K``.
        """
        poses = list(poses)
        if not poses:
            raise InvalidInput("poses", "need at least one camera pose")
        wanted = len(poses)
        if self._cuda_graph and wanted > GRAPH_EXACT_VIEWS:
            poses += [poses[-1]] * (2 ** math.ceil(math.log2(wanted)) - wanted)
        stage = "" if len(poses) == 1 else "_views"
        with self._lock:
            t0 = time.perf_counter()
            readout = self.memory.read_out_views_device(poses, K)
            newest = self._newest.read_out_views_device(poses, K) if self.newest_overlay else None
            composed = self.networks.compose_device(readout, newest)
            if self.see_through_fill:
                filled = [fill_see_through(r) for r in _host_readouts(composed)]
                composed = self.networks.compose_device(self.networks.upload_readouts(filled))
            t1 = time.perf_counter()
            images = BoundSession.to_host(self.networks.render_device(composed))
            if with_readout:
                readouts = _host_readouts(composed)
                cell_valid, cell_depth = [r.valid for r in readouts], [r.depth for r in readouts]
            else:
                readouts = [None] * len(poses)
                cell_valid, cell_depth = (BoundSession.to_host(composed[n]) for n in ("cell_valid", "cell_depth"))
            self._timer.add(f"read_out{stage}", t1 - t0)
            self._timer.add(f"render{stage}", time.perf_counter() - t1)
        return [Prediction(pad_to(image, K.shape), valid, depth, self.stride, r)
                for image, valid, depth, r in zip(images[:wanted], cell_valid, cell_depth, readouts)]

    def reset(self) -> None:
        """Forget the memory and the newest frame (networks stay loaded)."""
        self.memory.reset()
        self._latent = None
        self.frames_observed = 0
        self.last_stamp = None

    def save(self, path: str | Path) -> Path:
        """Save the memory (``.npz``); see ``LatentMemory.save``."""
        return self.memory.save(path)

    def load(self, path: str | Path) -> None:
        """Load a saved memory; see ``LatentMemory.load``. The file holds no newest frame:
        predictions render the loaded memory alone until the next ``observe``."""
        self.memory.load(path)

    def reset_timings(self) -> None:
        """Start the stage latencies of :meth:`stats` afresh (after a warm-up, say)."""
        with self._lock:
            self._timer = _Timer()

    def stats(self) -> dict:
        """Memory counters and sizes, frames observed, mean stage latencies (``*_ms``: ``encode``,
        ``insert``; ``read_out`` (read-outs, overlay) and ``render`` (renderer, download) of single
        views, ``read_out_views`` and ``render_views`` of batches) since construction or
        :meth:`reset_timings`, provider."""
        return {**self.memory.stats(), "frames_observed": self.frames_observed,
                "provider": self.networks.provider, "stride": self.stride,
                "channels": self.networks.channels, **self._timer.means()}


def build_world_model(provider: str, weights_dir: str = "", newest_overlay: bool = True,
                      see_through_fill: bool = False, subcell_placement: str = "auto", fill_holes: bool = True,
                      cuda_graph: bool = False, tf32: bool = False, **memory) -> WorldModel:
    """The engine behind the ``world_model`` node, from its parameters: :class:`WorldModel` on
    ``provider`` with the networks ``weights_dir`` names (``Networks.load``; ``subcell_placement``:
    a key of ``SUBCELL_PLACEMENT``), every stage a CUDA graph with ``cuda_graph`` and the networks'
    convolutions in TF32 with ``tf32`` (CUDA only); ``memory``: ``MemoryConfig`` overrides."""
    networks = Networks.load(weights_dir or None, provider=provider, allow_tf32=tf32, cuda_graph=cuda_graph,
                             subcell_placement=SUBCELL_PLACEMENT[subcell_placement])
    return WorldModel(networks, memory_config_for(networks, **memory), provider=provider,
                      newest_overlay=newest_overlay, see_through_fill=see_through_fill, fill_holes=fill_holes,
                      cuda_graph=cuda_graph)
