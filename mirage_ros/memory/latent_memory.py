"""``LatentMemory``: latent points in the world frame, updated and read out by ONNX graphs.

Per frame (``insert``) the update graph pools depth to the latent grid (edge-aware), lifts each
cell with a reading to a world point, skips dynamic / depthless / non-finite cells, keys the rest
by world voxel and fuses them into a set-associative hash table of ``config.slots`` points:

- a voxel already stored is updated in place (weighted running average of position and latent,
  confidence = observation count capped at ``max_weight``): revisits never grow the memory;
- a new voxel takes an empty way of its 8-way bucket, else evicts the bucket's **least recently
  seen** point (the eviction rule). The table never holds more than ``config.slots`` points.

With ``config.carve`` (default) each ``insert`` first runs the carve graph (``carve.py``): points
the live depth sees through lose weight and are removed when it runs out. It writes its own
buffers for the tensors it changes, and the update reads those (plus the unchanged ``latents`` and
``last_seen``), so carving costs no state copy.

The update also returns the frame's own cells as points, one per cell and unfused
(``frame_points``): the newest-frame overlay reads them (``last_frame.LastFrameWarp``).

``read_out`` projects every live point into the target camera at latent resolution, keeps the
nearest per cell (z-buffer: ScatterElements ``min``) and gathers its latent (``PointReadout``).

State lives in two sets of device buffers (OrtValues): the update reads set A and writes set B,
then they swap (ORT cannot alias a graph's input and output). Nothing goes through the host per
frame except the frame's own inputs; ``stats()``, ``points()`` and ``save()`` copy on demand.
"""

from __future__ import annotations

import functools
import threading
from pathlib import Path

import numpy as np
import onnxruntime as ort

from mirage_ros import geometry as g
from mirage_ros import graphs
from mirage_ros.errors import InvalidInput
from mirage_ros.memory import layout as L
from mirage_ros.memory.config import MemoryConfig, Readout
from mirage_ros.memory.frame_inputs import FrameInputs
from mirage_ros.memory.point_readout import PointReadout, host_readout, host_readouts
from mirage_ros.memory.storage import load_state, save_state
from mirage_ros.runtime.session import BoundSession


def _locked(method):
    """Run ``method`` under the memory's lock: ROS executors may call insert and read-out from
    different threads, and both use the same state and output buffers."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        with self._lock:
            return method(self, *args, **kwargs)

    return wrapper


class LatentMemory:
    """Latent spatial memory (see module docstring).

    Args:
        config: :class:`MemoryConfig`.
        provider: ``"auto"`` (CUDA when available), ``"cuda"`` or ``"cpu"``.
        cuda_graph: with CUDA, capture update and read-out as CUDA graphs (fixed buffers).

    Thread-safe: public methods hold one lock (a read-out never sees half an update).
    """

    def __init__(self, config: MemoryConfig, provider: str = "auto", *, cuda_graph: bool = False):
        if not isinstance(config, MemoryConfig):
            raise InvalidInput("config", f"must be a MemoryConfig, got {type(config).__name__}")
        self.config = config
        self._update = BoundSession(graphs.path(graphs.update_name(config.stride)), provider, cuda_graph=cuda_graph)
        self.device = self._update.device
        self._reader = PointReadout(config.channels, config.stride, config.near, config.readout_min_count,
                                    config.slots + 1, self.device, cuda_graph=cuda_graph)
        self._frames = FrameInputs(self._update, config)
        self._frame_points: dict[str, ort.OrtValue] = {}  # the update's frame points, sized to the frame
        self._frame_points_kept = False
        self._states = [self._upload_state(self._empty()), self._upload_state(self._empty())]
        self._empty_state: dict[str, ort.OrtValue] | None = None  # read, never written: insert(replace=True)
        self._carve = None
        if config.carve:
            self._carve = BoundSession(graphs.path(graphs.carve_name(config.stride)), self.device,
                                       cuda_graph=cuda_graph)
            empty = self._empty()
            # carve writes here; the update then reads these instead of the current set
            self._carved = {n: self._carve.upload(empty[n]) for n in L.CARVE_STATE}
            self._carve_shares = [self._carve.upload(ids) for ids in L.slot_shares(config.slots)]
            self._carve_trash = self._carve.upload(np.array([config.slots], np.int64))
            self._carve_phase = 0
            self._carve_stats = [self._carve.alloc(len(L.CARVE_STAT_NAMES), np.int64) for _ in range(2)]
            self._carve_frame = {"projection": self._carve.alloc((3, 4), np.float32),
                                 "params": self._carve.alloc(len(L.CARVE_PARAMS), np.float32)}
        self._current = 0
        self._epoch: float | None = None
        self._lock = threading.RLock()

    # ------------------------------------------------------------------ state buffers
    def _empty(self) -> dict[str, np.ndarray]:
        return L.empty_state(self.config.slots, self.config.channels)

    def _upload_state(self, host: dict[str, np.ndarray]) -> dict[str, ort.OrtValue]:
        return {name: self._update.upload(host[name]) for name in L.STATE_NAMES}

    def _write_state(self, host: dict[str, np.ndarray]) -> None:
        """Fill both buffer sets in place (addresses, hence bindings and CUDA graphs, stay valid)."""
        for state in self._states:
            for name in L.STATE_NAMES:
                BoundSession.write(state[name], host[name])

    @property
    def state(self) -> dict[str, ort.OrtValue]:
        """The current state buffers (device OrtValues; see ``layout.py``). Do not keep them:
        the next ``insert`` writes the other set and makes it current."""
        return self._states[self._current]

    @_locked
    def host_state(self) -> dict[str, np.ndarray]:
        """A host copy of the whole state (``capacity + 1`` rows, trash row last)."""
        return {name: BoundSession.to_host(value) for name, value in self.state.items()}

    # ------------------------------------------------------------------ update
    @_locked
    def insert(self, latent, depth, K: g.Intrinsics, T_world_cam, stamp: float, dynamic_mask=None,
               replace: bool = False, hole_depth: float = 0.0) -> None:
        """Lift one frame's latents into the memory and fuse them.

        Args:
            latent: ``(C, h, w) float32`` encoder output for this frame, ``(h, w) =
                (K.height // s, K.width // s)``; a numpy array, or an OrtValue or ``BufferView``
                on this memory's device (``Networks.encode_device``: the encoder's output stays on
                the GPU; with ``cuda_graph`` pass the same buffer every frame, each new buffer is a
                new graph). Non-finite cells are skipped.
            depth: ``(H, W)`` z-depth in metres, ``(H, W) = (K.height, K.width)``; 0, NaN, inf,
                negative or outside ``(min_depth, max_depth)`` = no reading.
            K: full-resolution intrinsics of ``depth`` (the latent grid is ``K.scaled(s)``).
            T_world_cam: ``(4, 4)`` pose of the camera optical frame in the world frame.
            stamp: time of the frame, seconds.
            dynamic_mask: ``(H, W) bool`` True on moving things, or None. Cells with more than
                ``config.dynamic_max_fraction`` flagged pixels are skipped; flagged pixels never
                contribute depth.
            replace: the memory becomes this frame alone (as ``reset`` then ``insert``, without
                refilling the state: the update reads a state set kept empty on the device).
            hole_depth: metres at which the frame's own points (:attr:`frame_points`, never the
                memory) place cells without a reading; 0 leaves them out.

        Raises:
            InvalidInput: naming the parameter (shape mismatch, bad pose, non-finite stamp...).
                The memory is unchanged.
        """
        frame = self._frames.write(latent, depth, K, T_world_cam, stamp, dynamic_mask,
                                   None if replace else self._epoch, hole_depth)
        if frame.new_buffers:  # bindings of another image size hold their buffers alive
            self._update.forget_bindings()
            if self._carve is not None:
                self._carve.forget_bindings()
            cells = frame.K_latent.height * frame.K_latent.width
            self._frame_points = {"positions": self._update.alloc((cells, 3), np.float32),
                                  "latents": self._update.alloc((cells, self.config.channels), np.float16),
                                  "counts": self._update.alloc(cells, np.int32)}
        if self._epoch is None or replace:
            self._epoch = frame.stamp
        src, dst = self._states[self._current], self._states[1 - self._current]
        if replace:
            if self._empty_state is None:
                self._empty_state = self._upload_state(self._empty())
            src = self._empty_state
        if self._carve is not None:
            src = {**src, **self._run_carve(frame.inputs, frame.K_latent, frame.T_world_cam, src)}
        self._update.run({**frame.inputs, **src}, {**{f"{n}_out": dst[n] for n in L.STATE_NAMES},
                                                    **{f"frame_{n}": v for n, v in self._frame_points.items()}})
        self._current = 1 - self._current
        self._frame_points_kept = True

    @property
    def frame_points(self) -> dict[str, ort.OrtValue] | None:
        """The last inserted frame's own cells as points, one row per latent cell (row-major):
        ``positions (h*w, 3)`` (NaN where the cell has none), ``latents (h*w, C) f16``, ``counts``
        (1 where a point) device buffers, overwritten by the next insert; None before any insert
        and after ``reset`` or ``load``. No fusion: what the newest-frame overlay reads
        (``last_frame.LastFrameWarp``)."""
        return self._frame_points if self._frame_points_kept else None

    def _run_carve(self, frame, K_latent: g.Intrinsics, T_world_cam, src) -> dict[str, ort.OrtValue]:
        """Carve ``src`` with the frame already in ``frame``; returns the carved state tensors."""
        cfg = self.config
        params = np.array([K_latent.width, K_latent.height, cfg.near, cfg.min_depth, cfg.max_depth,
                           cfg.carve_margin, cfg.carve_rel_margin, cfg.carve_min_valid_fraction,
                           cfg.carve_decrement * len(self._carve_shares)], np.float32)
        BoundSession.write(self._carve_frame["params"], params)
        BoundSession.write(self._carve_frame["projection"],
                           L.projection_matrix(K_latent, g.invert_pose(T_world_cam)))
        stats_in, stats_out = self._carve_stats[self._current], self._carve_stats[1 - self._current]
        share = self._carve_shares[self._carve_phase]
        self._carve_phase = (self._carve_phase + 1) % len(self._carve_shares)
        inputs = {"depth": frame["depth"], "dynamic": frame["dynamic"], **self._carve_frame,
                  "slot_ids": share, "trash_id": self._carve_trash,
                  **{n: src[n] for n in L.CARVE_STATE}, "carve_stats": stats_in}
        self._carve.run(inputs, {**{f"{n}_out": self._carved[n] for n in L.CARVE_STATE},
                                 "carve_stats_out": stats_out})
        return self._carved

    # ------------------------------------------------------------------ read-out
    @_locked
    def read_out_device(self, T_world_cam, K: g.Intrinsics, far=None) -> dict[str, ort.OrtValue]:
        """Like :meth:`read_out` but returns the device buffers ``latent``, ``valid``, ``depth``,
        ``offset`` (reused by the next read-out of the same grid size: consume or copy them first)."""
        return self._reader.read_out(self.state, T_world_cam, K, far)

    @_locked
    def read_out(self, T_world_cam, K: g.Intrinsics, far=None) -> Readout:
        """Render the memory at a camera, at latent resolution.

        Args:
            T_world_cam: ``(4, 4)`` target camera pose (optical frame) in the world frame.
            K: full-resolution target intrinsics (any size/focal; the grid is ``K.scaled(s)``).
            far: optional ``(h, w)`` far plane per cell, metres (points beyond are ignored;
                default: none). NaN/0 mean "no limit".

        Returns:
            :class:`Readout` (host arrays). An empty memory gives ``valid`` all False.

        Raises:
            InvalidInput: bad ``T_world_cam``, ``K`` or ``far``.
        """
        return host_readout(self._reader.read_out(self.state, T_world_cam, K, far))

    @_locked
    def read_out_views(self, poses, K: g.Intrinsics) -> list[Readout]:
        """:meth:`read_out` at ``V`` camera poses ``T_world_cam (4, 4)`` sharing ``K``, in one call of
        the views graph (``graphs.READOUT_VIEWS``): the same read-outs as ``V`` single calls.

        Raises:
            InvalidInput: ``poses`` empty or a bad pose, bad ``K``.
        """
        return host_readouts(self.read_out_views_device(poses, K))

    @_locked
    def read_out_views_device(self, poses, K: g.Intrinsics) -> dict:
        """:meth:`read_out_views` without the download (``PointReadout.read_out_views``)."""
        return self._reader.read_out_views(self.state, poses, K)

    # ------------------------------------------------------------------ housekeeping
    @_locked
    def reset(self) -> None:
        """Forget every point and counter (buffers are kept)."""
        self._write_state(self._empty())
        self._frame_points_kept = False
        if self._carve is not None:
            for buffer in self._carve_stats:
                BoundSession.write(buffer, np.zeros(len(L.CARVE_STAT_NAMES), np.int64))
        self._epoch = None

    @_locked
    def stats(self) -> dict:
        """Counters (``layout.STAT_NAMES``) and sizes.

        ``points``: live points; ``bytes``: bytes those points take (``bytes_per_point`` each);
        ``bytes_allocated``: the capacity-sized buffers of one state set; ``fuse_ratio``: share of
        written cells that landed in an already stored voxel. With carving, also
        ``layout.CARVE_STAT_NAMES`` (since construction or ``reset``; not saved in memory files).
        """
        counters = dict(zip(L.STAT_NAMES, (int(x) for x in BoundSession.to_host(self.state["stats"]))))
        if self._carve is not None:
            carved = BoundSession.to_host(self._carve_stats[self._current])
            counters.update(zip(L.CARVE_STAT_NAMES, (int(x) for x in carved)))
        points = counters["points_live"]
        return {
            **counters,
            "points": points,
            "capacity": self.config.slots,
            "bytes": points * self.config.bytes_per_point,
            "bytes_allocated": (self.config.slots + 1) * self.config.bytes_per_point,
            "fuse_ratio": counters["cells_revisited"] / max(counters["cells_fused"], 1),
            "inserts": counters["frames"],
        }

    @_locked
    def points(self) -> dict[str, np.ndarray]:
        """Host copy of the live points: ``positions (P, 3) f32`` (world), ``latents (P, C) f16``,
        ``weights``, ``last_seen`` (seconds, absolute), ``counts`` ``(P,)``."""
        host = self.host_state()
        live = host["keys"] >= 0
        out = {n: host[n][live] for n in ("positions", "latents", "weights", "last_seen", "counts")}
        out["last_seen"] = out["last_seen"].astype(np.float64) + (self._epoch or 0.0)
        return out

    @_locked
    def save(self, path: str | Path) -> Path:
        """Write the memory to ``path`` (``.npz``) atomically; returns the path written."""
        return save_state(path, self.host_state(), self.config.to_dict(), self._epoch)

    @_locked
    def load(self, path: str | Path) -> None:
        """Replace the memory with a saved one.

        Raises:
            MemoryFileError: unreadable, corrupt, other format/version, or another channel count,
                voxel size or capacity. The live memory is then left untouched.
        """
        host, epoch = load_state(path, self.config.to_dict(), self.config.slots)
        self._write_state(host)
        self._frame_points_kept = False
        self._epoch = epoch
