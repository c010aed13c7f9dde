"""``FrameInputs``: one camera frame checked and written into the device buffers that the memory's
update and carve graphs read.

The buffers are kept per image size, so their addresses (hence bindings and CUDA graphs) stay the
same frame after frame; a frame whose latent is already a device buffer (``Networks.encode_device``)
is bound as it is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import onnxruntime as ort

from mirage_ros import geometry as g
from mirage_ros.errors import InvalidInput
from mirage_ros.memory import layout as L
from mirage_ros.memory.config import MemoryConfig
from mirage_ros.runtime.session import BoundSession, BufferView

_DTYPES = {"depth": np.float32, "dynamic": np.bool_, "latent": np.float32, "rays": np.float32,
           "T_world_cam": np.float32, "params": np.float32}


def latent_rays(K_latent: g.Intrinsics) -> np.ndarray:
    """``(2, h, w) float32`` normalised ray slopes ``((j - cx)/fx, (i - cy)/fy)`` of each latent cell."""
    u, v = g.pixel_grid(K_latent)
    return np.stack([(u - K_latent.cx) / K_latent.fx, (v - K_latent.cy) / K_latent.fy]).astype(np.float32)


@dataclass(frozen=True)
class Frame:
    """A frame on the device.

    Attributes:
        inputs: ``depth (H, W)``, ``dynamic (H, W)``, ``latent (C, h, w)``, ``rays (2, h, w)``,
            ``T_world_cam (4, 4)``, ``params`` (``layout.UPDATE_PARAMS``) device buffers.
        K_latent: the latent grid. T_world_cam: the checked ``(4, 4) float64`` pose.
        stamp: seconds. new_buffers: the buffers were (re)allocated for this frame's size.
    """

    inputs: dict
    K_latent: g.Intrinsics
    T_world_cam: np.ndarray
    stamp: float
    new_buffers: bool


class FrameInputs:
    """Checks frames and writes them into device buffers of ``session``'s device.

    Args:
        session: allocates the buffers (any session on the device the graphs run on).
        config: the memory's parameters (channels, stride, the update graph's params).
    """

    def __init__(self, session: BoundSession, config: MemoryConfig):
        self._session, self.config = session, config
        self._buffers: dict[str, ort.OrtValue] = {}
        self._key: tuple | None = None
        self._rays_for: g.Intrinsics | None = None
        self._dynamic_clear = True

    def write(self, latent, depth, K: g.Intrinsics, T_world_cam, stamp: float, dynamic_mask=None,
              epoch: float | None = None, hole_depth: float = 0.0) -> Frame:
        """Check one frame and write it (arguments as ``LatentMemory.insert``; ``epoch``: the
        memory's time origin, None = this frame's stamp). Nothing is written when a check fails.

        Raises:
            InvalidInput: naming the parameter (shape mismatch, bad pose, non-finite stamp...).
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
            if tuple(latent.shape()) != latent_shape or latent.device_name().lower() != self._session.device:
                raise InvalidInput("latent", f"device buffer must be {latent_shape} on {self._session.device}, "
                                             f"got {tuple(latent.shape())} on {latent.device_name()}")
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
        if isinstance(hole_depth, bool) or not isinstance(hole_depth, (int, float, np.number)) \
                or not math.isfinite(hole_depth) or hole_depth < 0:
            raise InvalidInput("hole_depth", f"must be a finite number of metres >= 0, got {hole_depth!r}")

        stamp = float(stamp)
        new_buffers = self._allocate(h * s, w * s, h, w)
        frame = self._buffers
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
        BoundSession.write(frame["params"], cfg.update_params(stamp - (stamp if epoch is None else epoch), K_latent,
                                                              float(hole_depth)))
        inputs = dict(frame)
        if on_device:
            inputs["latent"] = latent
        else:
            BoundSession.write(frame["latent"], latent.astype(np.float32, copy=False))
        return Frame(inputs, K_latent, T_world_cam, stamp, new_buffers)

    def _allocate(self, H: int, W: int, h: int, w: int) -> bool:
        """Buffers for this size; True when they were (re)allocated."""
        key = (H, W, h, w)
        if self._key == key:
            return False
        shapes = {"depth": (H, W), "dynamic": (H, W), "latent": (self.config.channels, h, w),
                  "rays": (2, h, w), "T_world_cam": (4, 4), "params": (len(L.UPDATE_PARAMS),)}
        self._buffers = {n: self._session.alloc(shape, _DTYPES[n]) for n, shape in shapes.items()}
        self._key, self._rays_for, self._dynamic_clear = key, None, True
        return True
