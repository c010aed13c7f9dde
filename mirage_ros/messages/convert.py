"""Conversions between ROS messages and the package's numpy conventions.

The only place (with the bag writer) where ROS message layouts meet numpy arrays:

- ``sensor_msgs/Image`` <-> ``(H, W, 3) uint8`` RGB, ``(H, W) float32`` depth in metres,
  ``(H, W) uint8`` masks. Row padding (``step``) and ``is_bigendian`` are honoured.
- ``sensor_msgs/CameraInfo`` <-> :class:`mirage_ros.geometry.Intrinsics`.
- ``geometry_msgs/Pose`` / ``Transform`` (/ ``TransformStamped``) <-> ``(4, 4) float64`` ``T`` (quaternions are
  ``(x, y, z, w)`` in ROS and ``(w, x, y, z)`` in transforms3d).
- ``builtin_interfaces/Time`` <-> seconds as ``float``.

Decoding uses cv_bridge when it is importable and numpy otherwise; both give the same arrays
(the numpy path is the one tested on machines without cv_bridge).

Distortion: images are assumed **rectified** (``image_rect`` topics, Gazebo, simulators). The
distortion coefficients ``d`` of ``CameraInfo`` are ignored; with ``use_projection=True`` the
rectified projection matrix ``p`` gives the intrinsics instead of ``k`` (what ``image_proc``
rectified images need).
"""

from __future__ import annotations

import array

import numpy as np

from mirage_ros.errors import InvalidInput
from mirage_ros.geometry import (
    Intrinsics,
    pose_from_tq,
    pose_to_tq,
    quat_wxyz_to_xyzw,
    quat_xyzw_to_wxyz,
)

try:  # cv_bridge is optional: decoding falls back to numpy (same result).
    from cv_bridge import CvBridge

    _BRIDGE = CvBridge()
except ImportError:  # pragma: no cover - depends on the machine
    _BRIDGE = None

#: encoding -> (numpy dtype, channels)
ENCODINGS: dict[str, tuple[np.dtype, int]] = {
    "rgb8": (np.dtype(np.uint8), 3),
    "bgr8": (np.dtype(np.uint8), 3),
    "rgba8": (np.dtype(np.uint8), 4),
    "bgra8": (np.dtype(np.uint8), 4),
    "mono8": (np.dtype(np.uint8), 1),
    "32FC1": (np.dtype(np.float32), 1),
    "16UC1": (np.dtype(np.uint16), 1),
}
#: row padding (``step`` beyond the pixels) drivers use for alignment, at most; more than a whole
#: row is a wrong encoding label (16UC1 on 32FC1 bytes) rather than padding
_MAX_ALIGNMENT = 64
COLOR_ENCODINGS = ("rgb8", "bgr8", "rgba8", "bgra8", "mono8")
DEPTH_ENCODINGS = ("32FC1", "16UC1")


def time_to_ns(stamp) -> int:
    """``builtin_interfaces/Time`` -> integer nanoseconds (exact: the key to match stamps by).

    Seconds as a float since 1970 resolve only ~0.25 us: a stamp converted to float and back
    can land after the TF sample it came from ("extrapolation into the future").
    """
    return stamp.sec * 1_000_000_000 + stamp.nanosec


def ns_to_time(nanoseconds: int):
    """Integer nanoseconds (>= 0) -> ``builtin_interfaces/Time``."""
    from builtin_interfaces.msg import Time

    nanoseconds = max(0, int(nanoseconds))
    return Time(sec=nanoseconds // 1_000_000_000, nanosec=nanoseconds % 1_000_000_000)


def time_to_sec(stamp) -> float:
    """``builtin_interfaces/Time`` -> seconds (``float``, for arithmetic, not for matching)."""
    return time_to_ns(stamp) / 1e9


def sec_to_time(seconds: float):
    """Seconds -> ``builtin_interfaces/Time`` (rounded to the nanosecond, never negative)."""
    return ns_to_time(int(round(seconds * 1e9)))


def image_to_array(msg, allowed: tuple[str, ...] | None = None, name: str = "image") -> np.ndarray:
    """Raw pixel array of an Image, in its own encoding.

    Args:
        msg: ``sensor_msgs/Image``.
        allowed: encodings accepted here (default: every one in :data:`ENCODINGS`).
        name: what the image is, for error messages (``"image"``, ``"depth"``).

    Returns:
        ``(H, W, C)`` (or ``(H, W)`` for one channel) array of the encoding's dtype, native byte
        order, C-contiguous, owning its memory.

    Raises:
        InvalidInput: ``"<name>.encoding"`` unsupported, ``<name>.step`` / ``.data`` too short, or
            ``<name>.step`` padding a row by more than the row (a wrong encoding label).
    """
    encoding = msg.encoding
    allowed = allowed or tuple(ENCODINGS)
    if encoding not in allowed:
        raise InvalidInput(f"{name}.encoding", f"unsupported encoding {encoding!r} (supported: {', '.join(allowed)})")
    dtype, channels = ENCODINGS[encoding]
    height, width = int(msg.height), int(msg.width)
    if height <= 0 or width <= 0:
        raise InvalidInput(f"{name}.size", f"empty image {width}x{height}")
    row_bytes = width * channels * dtype.itemsize
    if msg.step < row_bytes:
        raise InvalidInput(f"{name}.step", f"step {msg.step} < width * pixel size = {row_bytes}")
    if msg.step - row_bytes >= max(row_bytes, _MAX_ALIGNMENT):
        raise InvalidInput(f"{name}.step", f"step {msg.step} is {msg.step / row_bytes:.3g} times a row of {width} "
                           f"{encoding} pixels ({row_bytes} bytes): the data looks like another encoding")
    buf = np.frombuffer(msg.data, dtype=np.uint8)
    if buf.size < (height - 1) * msg.step + row_bytes:
        raise InvalidInput(f"{name}.data", f"{buf.size} bytes, need {height} rows of step {msg.step}")
    if _BRIDGE is not None and not msg.is_bigendian:
        out = _BRIDGE.imgmsg_to_cv2(msg, desired_encoding="passthrough")
        return np.ascontiguousarray(out).copy()
    rows = np.lib.stride_tricks.as_strided(buf, shape=(height, row_bytes), strides=(msg.step, 1))
    pixels = rows.copy().view(dtype.newbyteorder(">" if msg.is_bigendian else "<"))
    pixels = pixels.astype(dtype.newbyteorder("="), copy=False)
    return pixels.reshape((height, width, channels) if channels > 1 else (height, width))


def rgb_from_image(msg) -> np.ndarray:
    """``sensor_msgs/Image`` (rgb8, bgr8, rgba8, bgra8, mono8) -> ``(H, W, 3) uint8`` RGB."""
    pixels = image_to_array(msg, COLOR_ENCODINGS, "image")
    encoding = msg.encoding
    if encoding == "mono8":
        return np.repeat(pixels[:, :, None], 3, axis=2)
    if encoding.startswith("bgr"):
        pixels = pixels[:, :, 2::-1]
    return np.ascontiguousarray(pixels[:, :, :3])


def depth_from_image(msg) -> np.ndarray:
    """``sensor_msgs/Image`` depth -> ``(H, W) float32`` metres, 0 where there is no reading.

    ``32FC1`` is metres (REP-118); NaN, +inf (beyond range, Gazebo), -inf (too close) and values
    <= 0 become 0. ``16UC1`` is millimetres; 0 means no reading.
    """
    pixels = image_to_array(msg, DEPTH_ENCODINGS, "depth")
    if msg.encoding == "16UC1":
        return pixels.astype(np.float32) * np.float32(1e-3)
    with np.errstate(invalid="ignore"):
        good = np.isfinite(pixels) & (pixels > 0)
    return np.where(good, pixels, np.float32(0.0)).astype(np.float32)


def mask_from_image(msg) -> np.ndarray:
    """``mono8`` mask Image -> ``(H, W) bool`` (non-zero = flagged)."""
    return image_to_array(msg, ("mono8",), "mask") != 0


def array_to_image(pixels: np.ndarray, encoding: str, stamp=None, frame_id: str = ""):
    """Build a ``sensor_msgs/Image`` from an array (no row padding, little-endian).

    Args:
        pixels: ``(H, W, C)`` or ``(H, W)`` array matching ``encoding`` (e.g. ``(H, W, 3) uint8``
            for rgb8, ``(H, W) float32`` metres for 32FC1, ``(H, W)`` bool or uint8 for mono8).
        encoding: one of :data:`ENCODINGS`.
        stamp: ``builtin_interfaces/Time`` of the header (default zero).
        frame_id: header frame.
    """
    from sensor_msgs.msg import Image

    if encoding not in ENCODINGS:
        raise InvalidInput("encoding", f"unsupported encoding {encoding!r}")
    dtype, channels = ENCODINGS[encoding]
    pixels = np.asarray(pixels)
    expected = (channels,) if channels > 1 else ()
    if pixels.ndim != 2 + len(expected) or pixels.shape[2:] != expected:
        raise InvalidInput("pixels", f"shape {pixels.shape} does not fit encoding {encoding}")
    if pixels.dtype == bool:
        pixels = pixels.astype(np.uint8) * np.uint8(255)
    pixels = np.ascontiguousarray(pixels, dtype=dtype.newbyteorder("<"))
    msg = Image()
    if stamp is not None:
        msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.height, msg.width = int(pixels.shape[0]), int(pixels.shape[1])
    msg.encoding = encoding
    msg.is_bigendian = 0
    msg.step = int(msg.width * channels * dtype.itemsize)
    msg.data = byte_array(pixels.tobytes())
    return msg


def byte_array(data: bytes) -> array.array:
    """``array('B')`` for a ``uint8[]`` message field: assigning ``bytes`` makes rclpy check
    every element in Python, which takes seconds for a large image."""
    out = array.array("B")
    out.frombytes(data)
    return out


def intrinsics_from_camera_info(msg, use_projection: bool = False) -> Intrinsics:
    """``sensor_msgs/CameraInfo`` -> :class:`Intrinsics` (distortion ignored: rectified images).

    Args:
        msg: the CameraInfo.
        use_projection: take ``fx, fy, cx, cy`` from the projection matrix ``p`` (rectified image
            of a distorted camera) instead of ``k``.

    Raises:
        InvalidInput: ``"camera_info.k"`` (or ``.p``) all zero / not a pinhole matrix, or
            ``"camera_info.width"`` zero.
    """
    name = "camera_info.p" if use_projection else "camera_info.k"
    if use_projection:
        P = np.asarray(msg.p, dtype=np.float64).reshape(3, 4)
        K = P[:, :3]
    else:
        K = np.asarray(msg.k, dtype=np.float64).reshape(3, 3)
    if not np.any(K):
        raise InvalidInput(name, "all zero: the camera is not calibrated")
    if msg.width <= 0 or msg.height <= 0:
        raise InvalidInput("camera_info.width", f"image size {msg.width}x{msg.height} must be > 0")
    try:
        return Intrinsics.from_K(K, int(msg.width), int(msg.height))
    except InvalidInput as exc:
        raise InvalidInput(name, exc.reason) from exc


def camera_info_from_intrinsics(K: Intrinsics, stamp=None, frame_id: str = ""):
    """:class:`Intrinsics` -> ``sensor_msgs/CameraInfo`` of a rectified pinhole camera."""
    from sensor_msgs.msg import CameraInfo

    msg = CameraInfo()
    if stamp is not None:
        msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.width, msg.height = K.width, K.height
    msg.distortion_model = "plumb_bob"
    msg.d = [0.0] * 5
    msg.k = [K.fx, 0.0, K.cx, 0.0, K.fy, K.cy, 0.0, 0.0, 1.0]
    msg.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    msg.p = [K.fx, 0.0, K.cx, 0.0, 0.0, K.fy, K.cy, 0.0, 0.0, 0.0, 1.0, 0.0]
    return msg


def _matrix(translation, rotation, name: str) -> np.ndarray:
    q_xyzw = np.array([rotation.x, rotation.y, rotation.z, rotation.w])
    try:
        return pose_from_tq(np.array([translation.x, translation.y, translation.z]), quat_xyzw_to_wxyz(q_xyzw))
    except InvalidInput as exc:
        raise InvalidInput(name, exc.reason) from exc


def pose_to_matrix(pose) -> np.ndarray:
    """``geometry_msgs/Pose`` -> ``(4, 4) float64`` (quaternion normalised).

    Raises:
        InvalidInput: ``"pose"`` with a zero or non-finite quaternion / position.
    """
    return _matrix(pose.position, pose.orientation, "pose")


def transform_to_matrix(transform) -> np.ndarray:
    """``geometry_msgs/Transform`` -> ``(4, 4) float64`` ``T_parent_child``."""
    return _matrix(transform.translation, transform.rotation, "transform")


def path_arrays(msg) -> tuple[np.ndarray, np.ndarray]:
    """``nav_msgs/Path`` -> positions ``(N, 3) float64`` and quaternions ``(N, 4) float64``
    ``(w, x, y, z)``, as they are (unchecked: see :mod:`mirage_ros.ros.prediction_poses`)."""
    poses = [q.pose for q in msg.poses]
    positions = np.array([[p.position.x, p.position.y, p.position.z] for p in poses], dtype=np.float64)
    quats = np.array([[p.orientation.w, p.orientation.x, p.orientation.y, p.orientation.z] for p in poses],
                     dtype=np.float64)
    return positions.reshape(-1, 3), quats.reshape(-1, 4)


def matrix_to_pose(T: np.ndarray):
    """``(4, 4)`` -> ``geometry_msgs/Pose``."""
    from geometry_msgs.msg import Pose

    t, q = pose_to_tq(T)
    x, y, z, w = quat_wxyz_to_xyzw(q)
    msg = Pose()
    msg.position.x, msg.position.y, msg.position.z = (float(v) for v in t)
    msg.orientation.x, msg.orientation.y, msg.orientation.z, msg.orientation.w = float(x), float(y), float(z), float(w)
    return msg


def matrix_to_transform(T: np.ndarray):
    """``(4, 4)`` ``T_parent_child`` -> ``geometry_msgs/Transform``."""
    from geometry_msgs.msg import Transform

    pose = matrix_to_pose(T)
    msg = Transform()
    msg.translation.x, msg.translation.y, msg.translation.z = pose.position.x, pose.position.y, pose.position.z
    msg.rotation = pose.orientation
    return msg


def transform_stamped(T_parent_child: np.ndarray, parent: str, child: str, stamp):
    """``(4, 4)`` ``T_parent_child`` -> ``geometry_msgs/TransformStamped`` (``parent -> child``)."""
    from geometry_msgs.msg import TransformStamped

    msg = TransformStamped()
    msg.header.stamp, msg.header.frame_id, msg.child_frame_id = stamp, parent, child
    msg.transform = matrix_to_transform(T_parent_child)
    return msg
