"""Pinhole cameras, latent-grid scaling, (back)projection, rigid poses and depth pooling.

Pure numpy functions; no state, no ROS. Conventions (docs/architecture.md):

- Camera frame = the **optical** frame (x right, y down, z forward). ``T_a_b @ p_b = p_a``.
- The centre of pixel ``(u, v)`` is at integer coordinates ``(u, v)`` (ROS CameraInfo, OpenCV).
- A latent cell ``(i, j)`` at stride ``s`` covers pixels ``[s*j, s*j+s) x [s*i, s*i+s)``; the latent
  grid is ``(height // s, width // s)`` (pixels past the last whole block are cropped).
- Quaternions are ``(w, x, y, z)`` (transforms3d) inside the package; ROS messages use
  ``(x, y, z, w)``: convert with :func:`quat_wxyz_to_xyzw` / :func:`quat_xyzw_to_wxyz` at the edge.
- Depth ``(H, W) float32`` metres; 0, NaN, inf and negative values mean "no reading".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from transforms3d.quaternions import mat2quat, quat2mat

from mirage_ros.errors import InvalidInput

#: ``T_link_optical``: maps points in a camera's optical frame (x right, y down, z forward) into
#: its REP-103 body/link frame (x forward, y left, z up). Gazebo and many URDFs publish the link
#: frame, not the optical one: ``T_world_optical = T_world_link @ T_LINK_OPTICAL``.
T_LINK_OPTICAL = np.array(
    [[0.0, 0.0, 1.0, 0.0], [-1.0, 0.0, 0.0, 0.0], [0.0, -1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]]
)


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics of an undistorted image.

    Args:
        fx, fy: focal lengths in pixels, finite and > 0.
        cx, cy: principal point in pixels (pixel-centre convention: pixel ``(u, v)``'s centre is
            at ``(u, v)``), finite.
        width, height: image size in pixels, > 0.

    Raises:
        InvalidInput: naming the offending field (``"K.fx"``, ``"K.width"``, ...).
    """

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    def __post_init__(self) -> None:
        for name in ("fx", "fy", "cx", "cy"):
            value = getattr(self, name)
            if not isinstance(value, (int, float, np.floating, np.integer)) or not math.isfinite(
                value
            ):
                raise InvalidInput(f"K.{name}", f"must be a finite number, got {value!r}")
            object.__setattr__(self, name, float(value))
        for name in ("fx", "fy"):
            if getattr(self, name) <= 0.0:
                raise InvalidInput(f"K.{name}", f"focal length must be > 0, got {getattr(self, name)}")
        for name in ("width", "height"):
            value = getattr(self, name)
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
                raise InvalidInput(f"K.{name}", f"must be an integer, got {value!r}")
            if value <= 0:
                raise InvalidInput(f"K.{name}", f"must be > 0, got {value}")
            object.__setattr__(self, name, int(value))

    @property
    def K(self) -> np.ndarray:
        """``(3, 3) float64`` camera matrix ``[[fx, 0, cx], [0, fy, cy], [0, 0, 1]]``."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    @property
    def shape(self) -> tuple[int, int]:
        """``(height, width)``, the shape of an image taken with these intrinsics."""
        return (self.height, self.width)

    def scaled(self, stride: int) -> Intrinsics:
        """Intrinsics of the latent grid at integer ``stride``.

        Latent cell ``j`` covers pixels ``[s*j, s*j+s)`` whose centre is pixel ``s*j + (s-1)/2``,
        hence ``cx' = (cx - (s-1)/2) / s`` (same for y) and ``fx' = fx / s``. The grid is
        ``(height // s, width // s)``.

        Raises:
            InvalidInput: ``stride`` not a positive integer or larger than the image.
        """
        stride = _check_stride(stride, self)
        half = (stride - 1) / 2.0
        return Intrinsics(
            self.fx / stride,
            self.fy / stride,
            (self.cx - half) / stride,
            (self.cy - half) / stride,
            self.width // stride,
            self.height // stride,
        )

    def same_camera(self, other: Intrinsics) -> bool:
        """Are ``other`` these intrinsics resampled to its size (focal lengths within 1 %,
        principal point within 1 pixel)? A registered depth image's CameraInfo is, an
        unregistered one (a depth sensor of its own) is not."""
        sx, sy = other.width / self.width, other.height / self.height
        return (abs(other.fx - self.fx * sx) <= 0.01 * other.fx and abs(other.fy - self.fy * sy) <= 0.01 * other.fy
                and abs(other.cx - ((self.cx + 0.5) * sx - 0.5)) <= 1
                and abs(other.cy - ((self.cy + 0.5) * sy - 0.5)) <= 1)

    @classmethod
    def from_K(cls, K: np.ndarray, width: int, height: int) -> Intrinsics:
        """Build from a ``(3, 3)`` camera matrix (e.g. ``CameraInfo.k`` reshaped).

        Raises:
            InvalidInput: ``K`` not 3x3, skewed, or not of the form ``[[fx,0,cx],[0,fy,cy],[0,0,1]]``.
        """
        K = np.asarray(K, dtype=np.float64)
        if K.shape != (3, 3):
            raise InvalidInput("K", f"must be 3x3, got shape {K.shape}")
        if not np.all(np.isfinite(K)):
            raise InvalidInput("K", "must be finite")
        if K[0, 1] != 0.0 or K[1, 0] != 0.0 or not np.allclose(K[2], [0.0, 0.0, 1.0]):
            raise InvalidInput("K", f"must be [[fx,0,cx],[0,fy,cy],[0,0,1]], got {K.tolist()}")
        return cls(K[0, 0], K[1, 1], K[0, 2], K[1, 2], width, height)


def _check_stride(stride: int, K: Intrinsics) -> int:
    if isinstance(stride, (bool, np.bool_)) or not isinstance(stride, (int, np.integer)) or stride < 1:
        raise InvalidInput("stride", f"must be a positive integer, got {stride!r}")
    if stride > min(K.width, K.height):
        raise InvalidInput("stride", f"{stride} exceeds the image size {K.width}x{K.height}")
    return int(stride)


def valid_depth(depth: np.ndarray, near: float = 0.0, far: float = np.inf) -> np.ndarray:
    """``(H, W) bool``: True where ``depth`` is a reading (finite and > 0), within ``(near, far)``
    metres (a memory's depth range) when given."""
    depth = np.asarray(depth)
    with np.errstate(invalid="ignore"):
        return np.isfinite(depth) & (depth > near) & (depth < far)


def pixel_grid(K: Intrinsics) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates ``(u, v)``, each ``(H, W) float64``, for an image taken with ``K``."""
    v, u = np.mgrid[0 : K.height, 0 : K.width].astype(np.float64)
    return u, v


def backproject(depth: np.ndarray, K: Intrinsics) -> np.ndarray:
    """Lift every pixel of a depth image to 3D.

    Args:
        depth: ``(H, W)`` z-depth in metres along the optical axis, ``(H, W) == K.shape``.
        K: intrinsics of that image.

    Returns:
        ``(H, W, 3) float64`` points in the camera optical frame. Pixels without a reading
        (see :func:`valid_depth`) give meaningless points: mask them with ``valid_depth``.

    Raises:
        InvalidInput: ``depth`` shape differs from ``K.shape``.
    """
    depth = np.asarray(depth, dtype=np.float64)
    if depth.shape != K.shape:
        raise InvalidInput("depth", f"shape {depth.shape} does not match K (H, W) = {K.shape}")
    u, v = pixel_grid(K)
    x = (u - K.cx) / K.fx * depth
    y = (v - K.cy) / K.fy * depth
    return np.stack([x, y, depth], axis=-1)


def project(points_cam: np.ndarray, K: Intrinsics) -> tuple[np.ndarray, np.ndarray]:
    """Project camera-frame points to pixel coordinates.

    Args:
        points_cam: ``(N, 3)`` points in the camera optical frame.
        K: intrinsics.

    Returns:
        ``uv`` ``(N, 2) float64`` pixel coordinates (pixel-centre convention; NaN where ``z <= 0``)
        and ``z`` ``(N,) float64`` depth along the optical axis. Points may fall outside the image:
        the caller decides with ``0 <= round(u) < W`` etc.
    """
    points_cam = _as_points(points_cam, "points_cam")
    z = points_cam[:, 2]
    in_front = z > 0
    safe_z = np.where(in_front, z, 1.0)
    u = np.where(in_front, K.fx * points_cam[:, 0] / safe_z + K.cx, np.nan)
    v = np.where(in_front, K.fy * points_cam[:, 1] / safe_z + K.cy, np.nan)
    return np.stack([u, v], axis=-1), z.copy()


# How depth from a camera of its own is treated (node parameter, eval option): ``auto`` =
# re-projected with register_depth, ``disabled`` = taken as registered. Not on/off: ROS parameter
# and launch values are YAML, which reads those as booleans.
DEPTH_REGISTRATION = ("auto", "disabled")


def register_depth(depth: np.ndarray, K_depth: Intrinsics, T_target_depth: np.ndarray, K_target: Intrinsics,
                   max_footprint: int = 4) -> np.ndarray:
    """Depth seen by a depth camera, re-projected into another camera (a colour camera beside it).

    Each depth reading is taken as the small square of surface its pixel sees; it is drawn on the
    target pixels whose centres that square covers (at least the nearest one, at most
    ``max_footprint`` along each axis), and the nearest surface wins where several land on one
    pixel. So a depth image of lower resolution than the target fills it without holes, and
    points the target sees behind a nearer surface are hidden, as in depth_image_proc's register.

    Args:
        depth: ``(Hd, Wd)`` z-depth in metres of the depth camera, ``K_depth.shape``.
        K_depth: intrinsics of the depth image.
        T_target_depth: ``(4, 4)`` pose of the depth camera's optical frame in the target's
            optical frame.
        K_target: intrinsics of the target image.
        max_footprint: most target pixels one reading covers along an axis (>= 1).

    Returns:
        ``(H, W) float32`` z-depth in metres along the target's optical axis, ``K_target.shape``;
        0 where no reading lands.

    Raises:
        InvalidInput: ``depth`` shape differs from ``K_depth.shape``, a bad pose or footprint.
    """
    if max_footprint < 1:
        raise InvalidInput("max_footprint", f"must be >= 1, got {max_footprint}")
    depth = np.asarray(depth, dtype=np.float64)
    valid = valid_depth(depth)
    points = backproject(np.where(valid, depth, 0.0), K_depth)[valid]
    points = transform_points(check_pose(T_target_depth, "T_target_depth"), points)
    in_front = points[:, 2] > 1e-6
    points, source_z = points[in_front], depth[valid][in_front]
    z = points[:, 2]
    centre = {"u": K_target.fx * points[:, 0] / z + K_target.cx, "v": K_target.fy * points[:, 1] / z + K_target.cy}
    # half the side of the reading's square in target pixels: focal ratio x distance ratio
    half = {"u": 0.5 * K_target.fx / K_depth.fx * source_z / z, "v": 0.5 * K_target.fy / K_depth.fy * source_z / z}
    first, count = {}, {}
    for axis in ("u", "v"):
        lo, hi = np.ceil(centre[axis] - half[axis]), np.ceil(centre[axis] + half[axis]) - 1
        covers_none = hi < lo
        lo = np.where(covers_none, np.round(centre[axis]), lo)
        first[axis] = lo
        count[axis] = np.clip(np.where(covers_none, 1, hi - lo + 1), 1, max_footprint).astype(np.int64)
    zbuffer = np.full(K_target.height * K_target.width, np.inf)
    for dv in range(int(count["v"].max(initial=0))):
        for du in range(int(count["u"].max(initial=0))):
            u, v = first["u"] + du, first["v"] + dv
            hit = (du < count["u"]) & (dv < count["v"]) & (u >= 0) & (u < K_target.width) & (v >= 0) & (v < K_target.height)
            np.minimum.at(zbuffer, (v[hit] * K_target.width + u[hit]).astype(np.int64), z[hit])
    return np.where(np.isfinite(zbuffer), zbuffer, 0.0).reshape(K_target.shape).astype(np.float32)


def _as_points(points: np.ndarray, name: str) -> np.ndarray:
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 3:
        raise InvalidInput(name, f"must be (N, 3), got shape {points.shape}")
    return points


_BOTTOM_ROW = np.array([0.0, 0.0, 0.0, 1.0])
_IDENTITY3 = np.eye(3)


def check_pose(T: np.ndarray, name: str = "T_world_cam", atol: float = 1e-4) -> np.ndarray:
    """Validate a rigid transform and return it as ``(4, 4) float64``.

    Raises:
        InvalidInput: naming ``name`` if not 4x4, not finite, bottom row not ``[0,0,0,1]`` or the
            rotation block not orthonormal with determinant +1 (within ``atol``).
    """
    T = np.asarray(T, dtype=np.float64)
    if T.shape != (4, 4):
        raise InvalidInput(name, f"must be a 4x4 matrix, got shape {T.shape}")
    if not np.all(np.isfinite(T)):
        raise InvalidInput(name, "must be finite (got NaN or inf)")
    if np.abs(T[3] - _BOTTOM_ROW).max() > atol:
        raise InvalidInput(name, f"bottom row must be [0, 0, 0, 1], got {T[3].tolist()}")
    R = T[:3, :3]
    if np.abs(R.T @ R - _IDENTITY3).max() > atol or np.linalg.det(R) < 0:
        raise InvalidInput(name, "rotation block is not a proper rotation (orthonormal, det +1)")
    return T


def transform_points(T_a_b: np.ndarray, p_b: np.ndarray) -> np.ndarray:
    """Map ``(N, 3)`` points from frame b to frame a with ``T_a_b (4, 4)``; returns ``(N, 3)``."""
    p_b = _as_points(p_b, "p_b")
    T_a_b = np.asarray(T_a_b, dtype=np.float64)
    return p_b @ T_a_b[:3, :3].T + T_a_b[:3, 3]


def invert_pose(T_a_b: np.ndarray) -> np.ndarray:
    """``T_b_a`` from a rigid ``T_a_b (4, 4)`` (uses ``R^T``, exact for rotations)."""
    T_a_b = np.asarray(T_a_b, dtype=np.float64)
    R_t = T_a_b[:3, :3].T
    T_b_a = np.eye(4)
    T_b_a[:3, :3] = R_t
    T_b_a[:3, 3] = -R_t @ T_a_b[:3, 3]
    return T_b_a


def compose(*poses: np.ndarray) -> np.ndarray:
    """Chain ``(4, 4)`` transforms left to right: ``compose(T_a_b, T_b_c) = T_a_c``."""
    if not poses:
        raise InvalidInput("poses", "need at least one pose")
    out = np.eye(4)
    for T in poses:
        out = out @ np.asarray(T, dtype=np.float64)
    return out


def pose_from_tq(translation: np.ndarray, quat_wxyz: np.ndarray) -> np.ndarray:
    """``(4, 4)`` pose from a translation ``(3,)`` and a quaternion ``(w, x, y, z)``.

    The quaternion is normalised; a zero or non-finite one raises ``InvalidInput("quat_wxyz")``.
    """
    t = np.asarray(translation, dtype=np.float64)
    q = np.asarray(quat_wxyz, dtype=np.float64)
    if t.shape != (3,) or not np.all(np.isfinite(t)):
        raise InvalidInput("translation", f"must be 3 finite numbers, got {t.tolist()}")
    norm = np.linalg.norm(q) if q.shape == (4,) else 0.0
    if q.shape != (4,) or not np.isfinite(norm) or norm < 1e-9:
        raise InvalidInput("quat_wxyz", f"must be 4 finite numbers, not all zero, got {q.tolist()}")
    T = np.eye(4)
    T[:3, :3] = quat2mat(q / norm)
    T[:3, 3] = t
    return T


def pose_to_tq(T: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Translation ``(3,)`` and unit quaternion ``(w, x, y, z)`` with ``w >= 0`` from ``T (4, 4)``."""
    T = np.asarray(T, dtype=np.float64)
    q = mat2quat(T[:3, :3])
    if q[0] < 0:
        q = -q
    return T[:3, 3].copy(), q


def quat_wxyz_to_xyzw(q: np.ndarray) -> np.ndarray:
    """``(..., 4)`` quaternion from transforms3d order ``(w, x, y, z)`` to ROS order ``(x, y, z, w)``."""
    return np.roll(np.asarray(q, dtype=np.float64), -1, axis=-1)


def quat_xyzw_to_wxyz(q: np.ndarray) -> np.ndarray:
    """``(..., 4)`` quaternion from ROS order ``(x, y, z, w)`` to transforms3d order ``(w, x, y, z)``."""
    return np.roll(np.asarray(q, dtype=np.float64), 1, axis=-1)


def upsample_cells(cells: np.ndarray, stride: int, shape: tuple[int, int],
                   repeat_edge: bool = False) -> np.ndarray:
    """Per-cell values ``(h, w)`` -> ``shape (H, W)``: each cell repeated ``stride`` times per side.

    The ragged edge past whole cells (``H % stride`` rows, ``W % stride`` columns) is zero
    (``False``), or a copy of the last cell row / column with ``repeat_edge``.
    """
    cells = np.asarray(cells)
    big = np.repeat(np.repeat(cells, stride, 0), stride, 1)[: shape[0], : shape[1]]
    pad = ((0, shape[0] - big.shape[0]), (0, shape[1] - big.shape[1]))
    return np.pad(big, pad, mode="edge" if repeat_edge else "constant")


def pool_mask(mask: np.ndarray, stride: int) -> np.ndarray:
    """Fraction of flagged pixels per ``stride x stride`` block: ``(H, W) bool -> (H//s, W//s) float32``."""
    mask = np.asarray(mask, dtype=bool)
    blocks = _blocks(mask, stride, "mask")
    return blocks.mean(axis=-1, dtype=np.float32)


def _blocks(image: np.ndarray, stride: int, name: str) -> np.ndarray:
    """``(H, W) -> (H//s, W//s, s*s)`` view of whole ``s x s`` blocks (ragged edge cropped)."""
    if image.ndim != 2:
        raise InvalidInput(name, f"must be 2-D (H, W), got shape {image.shape}")
    if isinstance(stride, (bool, np.bool_)) or not isinstance(stride, (int, np.integer)) or stride < 1:
        raise InvalidInput("stride", f"must be a positive integer, got {stride!r}")
    h, w = image.shape[0] // stride, image.shape[1] // stride
    if h == 0 or w == 0:
        raise InvalidInput("stride", f"{stride} exceeds the image size {image.shape[::-1]}")
    cropped = image[: h * stride, : w * stride]
    return cropped.reshape(h, stride, w, stride).transpose(0, 2, 1, 3).reshape(h, w, stride * stride)


def pool_depth(
    depth: np.ndarray, stride: int, rel_gap: float = 0.05, min_fraction: float = 0.25
) -> np.ndarray:
    """Edge-aware depth at latent resolution: the median of the nearest well-supported depth mode.

    Each ``s x s`` block's valid depths are sorted and split into clusters wherever two
    consecutive values differ by more than ``rel_gap`` times the smaller one (a depth
    discontinuity). The block's depth is the median of the **nearest** cluster holding at least
    ``min_fraction`` of the block's valid pixels, so foreground and background are never averaged
    and isolated flying pixels at silhouettes cannot pull a cell in front of everything. Nearest
    wins because read-out is a z-buffer too: the foreground is what occludes.

    Args:
        depth: ``(H, W)`` metres; 0, NaN, inf and negative values are ignored.
        stride: block size ``s`` (latent stride).
        rel_gap: relative depth jump that separates two surfaces (0.05 = 5 cm at 1 m).
        min_fraction: in ``(0, 1]``, the smallest share of a block's valid pixels a cluster needs.

    Returns:
        ``(H//s, W//s) float32`` metres; 0 where a block has no valid pixel.
    """
    depth = np.asarray(depth, dtype=np.float32)
    if not (0.0 < min_fraction <= 1.0):
        raise InvalidInput("min_fraction", f"must be in (0, 1], got {min_fraction}")
    if not (rel_gap > 0.0 and math.isfinite(rel_gap)):
        raise InvalidInput("rel_gap", f"must be a finite number > 0, got {rel_gap}")
    blocks = _blocks(np.where(valid_depth(depth), depth, np.inf), stride, "depth")
    h, w, n = blocks.shape
    ordered = np.sort(blocks.reshape(h * w, n), axis=1)  # invalid (+inf) sort last
    finite = np.isfinite(ordered)
    n_valid = finite.sum(axis=1)
    with np.errstate(invalid="ignore"):
        jumps = np.diff(ordered, axis=1) > rel_gap * ordered[:, :-1]
    cluster = np.concatenate([np.zeros((h * w, 1), np.int64), np.cumsum(jumps, axis=1)], axis=1)
    # Per-block cluster sizes, counting valid pixels only; cluster ids are 0..n-1 within a block.
    flat_id = (np.arange(h * w)[:, None] * n + cluster)[finite]
    sizes = np.bincount(flat_id, minlength=h * w * n).reshape(h * w, n)
    supported = sizes >= np.maximum(1.0, min_fraction * n_valid)[:, None]
    chosen = np.argmax(supported, axis=1)  # first (= nearest) supported cluster
    start = np.cumsum(sizes, axis=1) - sizes  # clusters are contiguous in sorted order
    rows = np.arange(h * w)
    first = start[rows, chosen]
    count = sizes[rows, chosen]
    lo = ordered[rows, np.clip(first + (count - 1) // 2, 0, n - 1)]
    hi = ordered[rows, np.clip(first + count // 2, 0, n - 1)]
    pooled = np.where(n_valid > 0, 0.5 * (lo + hi), 0.0)
    return pooled.reshape(h, w).astype(np.float32)
