"""``PointReadout``: device points read out at target cameras by the read-out graphs.

The fused memory (``LatentMemory``) and the newest frame's lifted cells (``LastFrameWarp``) are
both point sets ``positions (S, 3) f32``, ``latents (S, C) f16``, ``counts (S,) i32`` on one device;
this class owns what reading such a set needs: the sessions of ``readout.onnx`` (one view) and
``readout_views.onnx`` (``V`` views in one call), their constant index inputs and the per-grid
output buffers, reused call after call so bindings (and CUDA graphs) stay valid.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import onnxruntime as ort

from mirage_ros import geometry as g
from mirage_ros import graphs
from mirage_ros.errors import InvalidInput
from mirage_ros.memory import layout as L
from mirage_ros.memory.config import Readout
from mirage_ros.runtime.networks import readout_buffers
from mirage_ros.runtime.session import BoundSession, BufferSets, BufferView

#: the point-set tensors the read-out graphs read
POINT_NAMES = ("positions", "latents", "counts")


def host_readout(buffers: Mapping) -> Readout:
    """Host copy of one view's read-out buffers (:meth:`PointReadout.read_out`)."""
    return Readout(*(BoundSession.to_host(buffers[n]) for n in Readout.FIELDS))


def host_readouts(buffers: Mapping) -> list[Readout]:
    """Host copies of ``V`` views' read-out buffers (:meth:`PointReadout.read_out_views`)."""
    host = [BoundSession.to_host(buffers[n]) for n in Readout.FIELDS]
    return [Readout(*(field[i] for field in host)) for i in range(host[1].shape[0])]


class PointReadout:
    """Read-outs of a point set of ``n_points`` rows (see module docstring).

    Args:
        channels, stride: latent channels ``C`` and stride ``s`` of the points' latents.
        near: near plane, metres. min_count: fewest ``counts`` a point needs to be drawn.
        n_points: rows of the point sets read (fixed: the index inputs are sized to it).
        device: ``"cuda"`` or ``"cpu"``. cuda_graph: capture each binding as a CUDA graph.

    Not thread-safe: the owner serialises calls (output buffers are shared).
    """

    def __init__(self, channels: int, stride: int, near: float, min_count: int, n_points: int, device: str,
                 *, cuda_graph: bool = False):
        self.channels, self.stride, self.near, self.min_count = channels, stride, near, min_count
        self.n_points, self.device, self._cuda_graph = n_points, device, cuda_graph
        self._single = BoundSession(graphs.path(graphs.READOUT), device, cuda_graph=cuda_graph)
        self._views_session: BoundSession | None = None  # made by the first read-out of several views
        self._ids = {n: self._single.upload(v) for n, v in L.readout_ids(n_points).items()}
        self._views: dict[tuple, dict[str, ort.OrtValue]] = {}
        self._batches = BufferSets(self._batch_buffers)

    def latent_grid(self, K: g.Intrinsics) -> g.Intrinsics:
        """The latent grid of a target camera ``K``; raises ``InvalidInput`` for anything else."""
        if not isinstance(K, g.Intrinsics):
            raise InvalidInput("K", f"must be a geometry.Intrinsics, got {type(K).__name__}")
        return K.scaled(self.stride)

    def read_out(self, points: Mapping[str, ort.OrtValue], T_world_cam, K: g.Intrinsics,
                 far=None) -> dict[str, ort.OrtValue]:
        """``points`` (``POINT_NAMES`` device buffers) at one camera: the device buffers ``latent
        (C, h, w)``, ``valid``, ``depth`` and ``offset`` (``Readout.FIELDS``), reused by the next
        read-out of the same grid size.

        Args:
            T_world_cam: ``(4, 4)`` target camera pose (optical frame) in the world frame.
            K: full-resolution target intrinsics (the grid is ``K.scaled(s)``).
            far: optional ``(h, w)`` far plane per cell, metres; NaN / 0 = no limit.
        """
        K_latent = self.latent_grid(K)
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
        inputs = {**{n: points[n] for n in POINT_NAMES}, **self._ids,
                  "projection": view["projection"], "grid": view["grid"], "far": view["far"]}
        outputs = {n: view[n] for n in Readout.FIELDS}
        self._single.run(inputs, outputs)
        return outputs

    def read_out_views(self, points: Mapping[str, ort.OrtValue], poses, K: g.Intrinsics) -> dict:
        """:meth:`read_out` at each of ``poses`` (``T_world_cam (4, 4)``, sharing ``K``) in one call:
        ``latent (V, C, h, w)``, ``valid (V, h, w)``, ``depth (V, h, w)``, ``offset (V, 2, h, w)``
        device buffers (or views of them), reused by the next read-out of as many views of this
        grid size. One view runs the single-view graph.

        Raises:
            InvalidInput: ``poses`` empty or a bad pose, bad ``K``.
        """
        K_latent = self.latent_grid(K)
        poses = list(poses)
        if not poses:
            raise InvalidInput("poses", "need at least one camera pose")
        h, w = K_latent.height, K_latent.width
        if len(poses) == 1:
            self.read_out(points, poses[0], K)
            return self._view_buffers(h, w)["as_views"]
        projection = np.stack([L.projection_matrix(K_latent, g.invert_pose(g.check_pose(T, f"poses[{i}]")))
                               for i, T in enumerate(poses)]).astype(np.float32)
        buffers = self._batches(len(poses), h, w)
        BoundSession.write(buffers["projection"], projection)
        inputs = {**{n: points[n] for n in POINT_NAMES}, **self._ids, "projection": buffers["projection"],
                  "grid": self._view_buffers(h, w)["grid"], "far": buffers["far"]}
        outputs = {n: buffers[n] for n in Readout.FIELDS}
        self._views_session.run(inputs, outputs)
        return outputs

    def _batch_buffers(self, v: int, h: int, w: int) -> dict[str, ort.OrtValue]:
        """Inputs and outputs of the views graph for ``v`` views of an ``h x w`` grid."""
        if self._views_session is None:
            self._views_session = BoundSession(graphs.path(graphs.READOUT_VIEWS), self.device,
                                               cuda_graph=self._cuda_graph)
        session = self._views_session
        return {"projection": session.alloc((v, 3, 4), np.float32),
                "far": session.upload(np.full((v, h, w), np.inf, np.float32)),
                **readout_buffers(session, v, self.channels, h, w)}

    def _view_buffers(self, h: int, w: int) -> dict[str, ort.OrtValue]:
        key = (h, w)
        if key not in self._views:
            alloc, upload = self._single.alloc, self._single.upload
            view = {
                "projection": alloc((3, 4), np.float32),
                "grid": upload(L.readout_grid(w, h, self.near, self.min_count)),
                "far": upload(np.full((h, w), np.inf, np.float32)), "far_is_open": True,
                "latent": alloc((self.channels, h, w), np.float32),
                "valid": alloc((h, w), np.bool_), "depth": alloc((h, w), np.float32),
                "offset": alloc((2, h, w), np.float32),
            }
            # the single view's outputs as a batch of one (read_out_views)
            view["as_views"] = {n: BufferView(view[n], (1, *view[n].shape())) for n in Readout.FIELDS}
            self._views[key] = view
        return self._views[key]
