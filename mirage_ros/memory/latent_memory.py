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

``read_out`` projects every live point into the target camera at latent resolution, keeps the
nearest per cell (z-buffer: ScatterElements ``min``) and gathers its latent.

State lives in two sets of device buffers (OrtValues): the update reads set A and writes set B,
then they swap (ORT cannot alias a graph's input and output). Nothing goes through the host per
frame except the frame's own inputs; ``stats()``, ``points()`` and ``save()`` copy on demand.
"""

from __future__ import annotations

import functools
import math
import threading
from pathlib import Path

import numpy as np
import onnxruntime as ort

from mirage_ros import geometry as g
from mirage_ros import graphs
from mirage_ros.errors import InvalidInput
from mirage_ros.memory import layout as L
from mirage_ros.memory.config import MemoryConfig, Readout
from mirage_ros.memory.storage import load_state, save_state
from mirage_ros.runtime.session import BoundSession, BufferSets, BufferView

_FRAME_DTYPES = {"depth": np.float32, "dynamic": np.bool_, "latent": np.float32, "rays": np.float32,
                 "T_world_cam": np.float32, "params": np.float32}


def latent_rays(K_latent: g.Intrinsics) -> np.ndarray:
    """``(2, h, w) float32`` normalised ray slopes ``((j - cx)/fx, (i - cy)/fy)`` of each latent cell."""
    u, v = g.pixel_grid(K_latent)
    return np.stack([(u - K_latent.cx) / K_latent.fx, (v - K_latent.cy) / K_latent.fy]).astype(np.float32)


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
        self._readout = BoundSession(graphs.path(graphs.READOUT), self._update.device, cuda_graph=cuda_graph)
        self._readout_views: BoundSession | None = None  # made by the first read-out of several views
        self._batches = BufferSets(self._batch_buffers)
        self.device = self._update.device
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
        self._ids = {n: self._readout.upload(v) for n, v in L.readout_ids(config.slots + 1).items()}
        self._epoch: float | None = None
        self._frame: dict[str, ort.OrtValue] = {}
        self._frame_key: tuple | None = None
        self._rays_for: g.Intrinsics | None = None
        self._views: dict[tuple, dict[str, ort.OrtValue]] = {}
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
               replace: bool = False) -> None:
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

        Raises:
            InvalidInput: naming the parameter (shape mismatch, bad pose, non-finite stamp...).
                The memory is unchanged.
        """
        cfg, s = self.config, self.config.stride
        if not isinstance(K, g.Intrinsics):
            raise InvalidInput("K", f"must be a geometry.Intrinsics, got {type(K).__name__}")
        K_latent = K.scaled(s)
        h, w = K_latent.height, K_latent.width
        depth = np.asarray(depth)
        if depth.shape != K.shape or not np.issubdtype(depth.dtype, np.number):
            raise InvalidInput("depth", f"must be a numeric {K.shape} array like K, got {depth.dtype}{depth.shape}")
        latent_shape = (cfg.channels, h, w)
        on_device = isinstance(latent, (ort.OrtValue, BufferView))
        if on_device:
            if tuple(latent.shape()) != latent_shape or latent.device_name().lower() != self.device:
                raise InvalidInput("latent", f"device buffer must be {latent_shape} on {self.device}, got "
                                             f"{tuple(latent.shape())} on {latent.device_name()}")
        else:
            latent = np.asarray(latent)
            if latent.shape != latent_shape or not np.issubdtype(latent.dtype, np.number):
                raise InvalidInput("latent", f"must be {latent_shape} (C, K.height//{s}, K.width//{s}), "
                                             f"got {latent.dtype}{latent.shape}")
        T_world_cam = g.check_pose(T_world_cam, "T_world_cam")
        if isinstance(stamp, bool) or not isinstance(stamp, (int, float, np.number)) or not math.isfinite(stamp):
            raise InvalidInput("stamp", f"must be a finite number of seconds, got {stamp!r}")
        if dynamic_mask is not None:
            dynamic_mask = np.asarray(dynamic_mask)
            if dynamic_mask.shape != K.shape or dynamic_mask.dtype != np.bool_:
                raise InvalidInput("dynamic_mask", f"must be {K.shape} bool, got {dynamic_mask.dtype}{dynamic_mask.shape}")

        if self._epoch is None or replace:
            self._epoch = float(stamp)
        params = cfg.update_params(float(stamp) - self._epoch, K_latent)
        frame = self._frame_buffers(h * s, w * s, h, w)
        if self._rays_for != K_latent:
            BoundSession.write(frame["rays"], latent_rays(K_latent))
            self._rays_for = K_latent
        BoundSession.write(frame["depth"], np.asarray(depth[: h * s, : w * s], np.float32))
        if dynamic_mask is not None:
            BoundSession.write(frame["dynamic"], dynamic_mask[: h * s, : w * s])
            self._dynamic_clear = False
        elif not self._dynamic_clear:  # the buffer is all False already: skip the upload
            BoundSession.write(frame["dynamic"], np.zeros((h * s, w * s), bool))
            self._dynamic_clear = True
        BoundSession.write(frame["T_world_cam"], T_world_cam.astype(np.float32))
        BoundSession.write(frame["params"], params)
        inputs = dict(frame)
        if on_device:
            inputs["latent"] = latent
        else:
            BoundSession.write(frame["latent"], latent.astype(np.float32, copy=False))
        src, dst = self._states[self._current], self._states[1 - self._current]
        if replace:
            if self._empty_state is None:
                self._empty_state = self._upload_state(self._empty())
            src = self._empty_state
        if self._carve is not None:
            src = {**src, **self._run_carve(frame, K_latent, T_world_cam, src)}
        self._update.run({**inputs, **src}, {f"{n}_out": dst[n] for n in L.STATE_NAMES})
        self._current = 1 - self._current

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

    def _frame_buffers(self, H: int, W: int, h: int, w: int) -> dict[str, ort.OrtValue]:
        key = (H, W, h, w)
        if self._frame_key != key:
            shapes = {"depth": (H, W), "dynamic": (H, W), "latent": (self.config.channels, h, w),
                      "rays": (2, h, w), "T_world_cam": (4, 4), "params": (len(L.UPDATE_PARAMS),)}
            self._frame = {n: self._update.alloc(shape, _FRAME_DTYPES[n]) for n, shape in shapes.items()}
            self._frame_key, self._rays_for, self._dynamic_clear = key, None, True
            self._update.forget_bindings()
            if self._carve is not None:
                self._carve.forget_bindings()
        return self._frame

    # ------------------------------------------------------------------ read-out
    @_locked
    def read_out_device(self, T_world_cam, K: g.Intrinsics, far=None) -> dict[str, ort.OrtValue]:
        """Like :meth:`read_out` but returns the device buffers ``latent``, ``valid``, ``depth``
        (reused by the next read-out of the same grid size: consume or copy them first)."""
        K_latent = self._latent_grid(K)
        h, w = K_latent.height, K_latent.width
        T_cam_world = g.invert_pose(g.check_pose(T_world_cam, "T_world_cam"))
        view = self._view_buffers(h, w)
        if far is not None:
            far = np.asarray(far, np.float32)
            if far.shape != (h, w):
                raise InvalidInput("far", f"must be {(h, w)} like the latent grid, got {far.shape}")
            BoundSession.write(view["far"], np.where(np.isnan(far) | (far <= 0), np.inf, far).astype(np.float32))
            view["far_is_open"] = False
        elif not view["far_is_open"]:  # "no far plane" is already in the buffer otherwise
            BoundSession.write(view["far"], np.full((h, w), np.inf, np.float32))
            view["far_is_open"] = True
        BoundSession.write(view["projection"], L.projection_matrix(K_latent, T_cam_world))
        state = self.state
        inputs = {"positions": state["positions"], "latents": state["latents"], "counts": state["counts"], **self._ids,
                  "projection": view["projection"], "grid": view["grid"], "far": view["far"]}
        outputs = {n: view[n] for n in Readout.FIELDS}
        self._readout.run(inputs, outputs)
        return outputs

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
        out = self.read_out_device(T_world_cam, K, far)
        return Readout(*(BoundSession.to_host(out[n]) for n in Readout.FIELDS))

    @_locked
    def read_out_views(self, poses, K: g.Intrinsics) -> list[Readout]:
        """:meth:`read_out` at ``V`` camera poses ``T_world_cam (4, 4)`` sharing ``K``, in one call of
        the views graph (``graphs.READOUT_VIEWS``): the same read-outs as ``V`` single calls.

        Raises:
            InvalidInput: ``poses`` empty or a bad pose, bad ``K``.
        """
        out = self.read_out_views_device(poses, K)
        host = [BoundSession.to_host(out[n]) for n in Readout.FIELDS]
        return [Readout(*(field[i] for field in host)) for i in range(host[1].shape[0])]

    @_locked
    def read_out_views_device(self, poses, K: g.Intrinsics) -> dict:
        """:meth:`read_out_views` without the download: ``latent (V, C, h, w)``, ``valid (V, h, w)``,
        ``depth (V, h, w)``, ``offset (V, 2, h, w)`` device buffers (or views of them), reused by
        the next read-out of as many views of this grid size. One view runs the single-view graph
        (:meth:`read_out_device`, captured as a CUDA graph where enabled).

        Raises:
            InvalidInput: ``poses`` empty or a bad pose, bad ``K``.
        """
        K_latent = self._latent_grid(K)
        poses = list(poses)
        if not poses:
            raise InvalidInput("poses", "need at least one camera pose")
        h, w = K_latent.height, K_latent.width
        if len(poses) == 1:
            self.read_out_device(poses[0], K)
            return self._view_buffers(h, w)["as_views"]
        projection = np.stack([L.projection_matrix(K_latent, g.invert_pose(g.check_pose(T, f"poses[{i}]")))
                               for i, T in enumerate(poses)]).astype(np.float32)
        buffers = self._batches(len(poses), h, w)
        BoundSession.write(buffers["projection"], projection)
        state = self.state
        inputs = {"positions": state["positions"], "latents": state["latents"], "counts": state["counts"],
                  **self._ids, "projection": buffers["projection"], "grid": self._view_buffers(h, w)["grid"],
                  "far": buffers["far"]}
        outputs = {n: buffers[n] for n in Readout.FIELDS}
        self._readout_views.run(inputs, outputs)
        return outputs

    def _batch_buffers(self, v: int, h: int, w: int) -> dict[str, ort.OrtValue]:
        """Inputs and outputs of the views graph for ``v`` views of an ``h x w`` grid."""
        if self._readout_views is None:
            self._readout_views = BoundSession(graphs.path(graphs.READOUT_VIEWS), self.device)
        alloc = self._readout_views.alloc
        return {"projection": alloc((v, 3, 4), np.float32),
                "far": self._readout_views.upload(np.full((v, h, w), np.inf, np.float32)),
                "latent": alloc((v, self.config.channels, h, w), np.float32), "valid": alloc((v, h, w), np.bool_),
                "depth": alloc((v, h, w), np.float32), "offset": alloc((v, 2, h, w), np.float32)}

    def _latent_grid(self, K: g.Intrinsics) -> g.Intrinsics:
        """The latent grid of a target camera ``K``; raises ``InvalidInput`` for anything else."""
        if not isinstance(K, g.Intrinsics):
            raise InvalidInput("K", f"must be a geometry.Intrinsics, got {type(K).__name__}")
        return K.scaled(self.config.stride)

    def _view_buffers(self, h: int, w: int) -> dict[str, ort.OrtValue]:
        key = (h, w)
        if key not in self._views:
            alloc, upload = self._readout.alloc, self._readout.upload
            view = {
                "projection": alloc((3, 4), np.float32),
                "grid": upload(L.readout_grid(w, h, self.config.near, self.config.readout_min_count)),
                "far": upload(np.full((h, w), np.inf, np.float32)), "far_is_open": True,
                "latent": alloc((self.config.channels, h, w), np.float32),
                "valid": alloc((h, w), np.bool_), "depth": alloc((h, w), np.float32),
                "offset": alloc((2, h, w), np.float32),
            }
            # the single view's outputs as a batch of one (read_out_views_device)
            view["as_views"] = {n: BufferView(view[n], (1, *view[n].shape())) for n in Readout.FIELDS}
            self._views[key] = view
        return self._views[key]

    # ------------------------------------------------------------------ housekeeping
    @_locked
    def reset(self) -> None:
        """Forget every point and counter (buffers are kept)."""
        self._write_state(self._empty())
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
        self._epoch = epoch
