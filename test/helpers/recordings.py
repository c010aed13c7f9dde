"""Small RGB-D recordings written with rosbags, for the evaluation reader tests (no tests here).

The simulator's own bag writer is exercised by test_eval_replay.py; these hand-made bags cover the
variants it does not write (bgr8 / 16UC1, compressed copies, odometry-only poses, ROS 1, broken
inputs).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from mirage_ros.geometry import T_LINK_OPTICAL, Intrinsics, invert_pose
from mirage_ros.messages.compressed import encode_colour, encode_depth

K_SMALL = Intrinsics(40.0, 40.0, 23.5, 17.5, 48, 36)
DEPTH_FRAME = "camera_depth_optical_frame"  # the depth camera's own frame (write_bag's depth_camera)
T_BASE_LINK = np.array([[1, 0, 0, 0.1], [0, 1, 0, 0.0], [0, 0, 1, 0.5], [0, 0, 0, 1.0]])  # base -> camera_link


def synthetic_frames(n: int = 12, rate: float = 10.0, K: Intrinsics = K_SMALL, t0: float = 100.0):
    """``[(stamp, rgb, depth, T_world_cam)]``: a camera sliding along x in front of a textured wall."""
    rng = np.random.default_rng(0)
    frames = []
    for i in range(n):
        T_world_base = np.eye(4)
        T_world_base[:3, :3] = Rotation.from_rotvec([0, 0, 0.02 * i]).as_matrix()
        T_world_base[:3, 3] = [0.1 * i, 0.0, 0.0]
        T_world_cam = T_world_base @ T_BASE_LINK @ T_LINK_OPTICAL
        rgb = rng.integers(0, 256, size=(K.height, K.width, 3), dtype=np.uint8)
        depth = np.full((K.height, K.width), 2.0 + 0.01 * i, dtype=np.float32)
        depth[0, 0] = np.nan
        frames.append((t0 + i / rate, rgb, depth, T_world_cam))
    return frames


def _time(typestore, t: float):
    ns = int(round(t * 1e9))
    return typestore.types["builtin_interfaces/msg/Time"](sec=ns // 10**9, nanosec=ns % 10**9)


def _header(ts, t, frame):
    header = ts.types["std_msgs/msg/Header"]
    if "seq" in header.__dataclass_fields__:  # ROS 1
        return header(seq=0, stamp=_time(ts, t), frame_id=frame)
    return header(stamp=_time(ts, t), frame_id=frame)


def _image(ts, t, frame, pixels: np.ndarray, encoding: str):
    data = np.ascontiguousarray(pixels)
    height, width = data.shape[:2]
    raw = np.frombuffer(data.tobytes(), dtype=np.uint8)
    return ts.types["sensor_msgs/msg/Image"](
        header=_header(ts, t, frame), height=height, width=width, encoding=encoding,
        is_bigendian=0, step=raw.size // height, data=raw)


def _transform_stamped(ts, t, parent, child, T):
    q = Rotation.from_matrix(T[:3, :3]).as_quat()
    types = ts.types
    return types["geometry_msgs/msg/TransformStamped"](
        header=_header(ts, t, parent), child_frame_id=child,
        transform=types["geometry_msgs/msg/Transform"](
            translation=types["geometry_msgs/msg/Vector3"](x=T[0, 3], y=T[1, 3], z=T[2, 3]),
            rotation=types["geometry_msgs/msg/Quaternion"](x=q[0], y=q[1], z=q[2], w=q[3])))


def _camera_info(ts, t, frame, K: Intrinsics):
    info = ts.types["sensor_msgs/msg/CameraInfo"]
    matrices = {"d": np.zeros(5), "k": K.K.reshape(-1), "r": np.eye(3).reshape(-1),
                "p": np.hstack([K.K, np.zeros((3, 1))]).reshape(-1)}
    if "K" in info.__dataclass_fields__:  # ROS 1 spells them D, K, R, P
        matrices = {name.upper(): value for name, value in matrices.items()}
    return info(
        header=_header(ts, t, frame), height=K.height, width=K.width, distortion_model="plumb_bob",
        **matrices, binning_x=0, binning_y=0,
        roi=ts.types["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0, width=0, do_rectify=False))


def _odometry(ts, t, T_world_base):
    types = ts.types
    q = Rotation.from_matrix(T_world_base[:3, :3]).as_quat()
    pose = types["geometry_msgs/msg/Pose"](
        position=types["geometry_msgs/msg/Point"](x=T_world_base[0, 3], y=T_world_base[1, 3], z=T_world_base[2, 3]),
        orientation=types["geometry_msgs/msg/Quaternion"](x=q[0], y=q[1], z=q[2], w=q[3]))
    zero3 = types["geometry_msgs/msg/Vector3"](x=0.0, y=0.0, z=0.0)
    return types["nav_msgs/msg/Odometry"](
        header=_header(ts, t, "odom"), child_frame_id="base_link",
        pose=types["geometry_msgs/msg/PoseWithCovariance"](pose=pose, covariance=np.zeros(36)),
        twist=types["geometry_msgs/msg/TwistWithCovariance"](
            twist=types["geometry_msgs/msg/Twist"](linear=zero3, angular=zero3), covariance=np.zeros(36)))


def write_bag(path: Path, frames, K: Intrinsics = K_SMALL, *, storage: str = "mcap", color_encoding: str = "rgb8",
              depth_encoding: str = "32FC1", poses: str = "tf", camera_info: bool = True, images: bool = True,
              depth_dt: float = 0.004, image_frame: str = "camera_optical_frame",
              depth_step: tuple[int, int] = (1, 1), short_frame: int | None = None,
              garbage_frame: int | None = None, compression: str | None = None,
              depth_camera: tuple[Intrinsics, np.ndarray] | None = None, depth_camera_tf: bool = True) -> Path:
    """Write ``frames`` as a bag; ``poses`` is ``"tf"``, ``"odom"`` (odometry, no camera TF) or ``"none"``.

    ``storage``: ``"mcap"`` / ``"sqlite3"`` (rosbag2 folder) or ``"ros1"`` (``path`` must end in .bag).
    Depth is stamped ``depth_dt`` after colour, like a real driver. ``image_frame="camera_link"``
    stamps images with the body frame, as Gazebo's bridged cameras do. ``depth_step`` subsamples
    the depth image (rows, columns), like a depth sensor of lower resolution. ``short_frame``: the
    colour message of that frame index loses half its data (a damaged message); ``garbage_frame``:
    that frame's colour message is bytes that do not deserialize. ``compression``: write the
    image_transport copies instead of raw images, as drivers record them: ``"png"`` / ``"jpeg"``
    colour on ``.../image_raw/compressed`` and compressedDepth PNG (of ``depth_encoding``) on
    ``.../image_raw/compressedDepth``; ``"rvl"`` marks the depth as RVL (its bytes are not RVL).
    ``depth_camera=(K_depth, T_colour_depth)``: the depth images come from a camera of their own,
    as an unregistered driver records them: frame ``camera_depth_optical_frame``, CameraInfo on
    ``/camera/depth/camera_info``, its pose in the colour optical frame on ``/tf_static`` (not
    with ``depth_camera_tf=False``); ``frames`` must hold that camera's depth.
    """
    from rosbags.typesys import Stores, get_typestore

    ros1 = storage == "ros1"
    ts = get_typestore(Stores.ROS1_NOETIC if ros1 else Stores.ROS2_KILTED)
    if ros1:
        from rosbags.rosbag1 import Writer
        from rosbags.typesys import get_types_from_msg

        ts.register(get_types_from_msg("geometry_msgs/TransformStamped[] transforms", "tf2_msgs/msg/TFMessage"))

        writer = Writer(path)
    else:
        from rosbags.rosbag2 import StoragePlugin, Writer

        writer = Writer(path, version=9, storage_plugin=StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3)
    serialize = ts.serialize_ros1 if ros1 else ts.serialize_cdr
    with writer:
        conns = {}

        def write(topic, msg, t, raw=None):
            if topic not in conns:
                conns[topic] = writer.add_connection(topic, msg.__msgtype__, typestore=ts)
            writer.write(conns[topic], int(round(t * 1e9)), raw or serialize(msg, msg.__msgtype__))

        t_first = frames[0][0]
        if poses == "tf":
            mounts = [("base_link", "camera_link", T_BASE_LINK), ("camera_link", "camera_optical_frame", T_LINK_OPTICAL),
                      ("map", "odom", np.eye(4))]
            if depth_camera is not None and depth_camera_tf:
                mounts.append(("camera_optical_frame", DEPTH_FRAME, depth_camera[1]))
            for parent, child, T in mounts:
                write("/tf_static", ts.types["tf2_msgs/msg/TFMessage"](
                    transforms=[_transform_stamped(ts, t_first, parent, child, T)]), t_first)
        for index, (stamp, rgb, depth, T_world_cam) in enumerate(frames):
            T_world_base = T_world_cam @ invert_pose(T_BASE_LINK @ T_LINK_OPTICAL)
            if poses == "tf":
                write("/tf", ts.types["tf2_msgs/msg/TFMessage"](
                    transforms=[_transform_stamped(ts, stamp, "odom", "base_link", T_world_base)]), stamp)
            elif poses == "odom":
                write("/odom", _odometry(ts, stamp, T_world_base), stamp)
            if camera_info:
                write("/camera/color/camera_info", _camera_info(ts, stamp, "camera_optical_frame", K), stamp)
            if depth_camera is not None:
                write("/camera/depth/camera_info", _camera_info(ts, stamp, DEPTH_FRAME, depth_camera[0]), stamp)
            if not images:
                continue
            color = {"rgb8": rgb, "bgr8": rgb[:, :, ::-1], "mono8": rgb[:, :, 0],
                     "rgba8": np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)]),
                     "yuv422": rgb[:, :, :2]}[color_encoding]
            depth = depth[:: depth_step[0], :: depth_step[1]]
            if compression:
                write("/camera/color/image_raw/compressed",
                      _compressed_colour(ts, stamp, image_frame, rgb, compression), stamp)
                write("/camera/depth/image_raw/compressedDepth",
                      _compressed_depth(ts, stamp + depth_dt, image_frame, depth, depth_encoding, compression),
                      stamp + depth_dt)
                continue
            image = _image(ts, stamp, image_frame, color, color_encoding)
            if index == short_frame:
                image.data = image.data[: image.data.size // 2]
            write("/camera/color/image_raw", image, stamp, b"\x00\x01\x00\x00garbage" if index == garbage_frame else None)
            depth_pixels = (np.nan_to_num(depth * 1000.0).astype(np.uint16) if depth_encoding == "16UC1"
                            else depth.astype(np.float32))
            write("/camera/depth/image_raw", _image(ts, stamp + depth_dt, DEPTH_FRAME if depth_camera else image_frame,
                                                    depth_pixels, depth_encoding), stamp + depth_dt)
    return path


def _compressed_colour(ts, t, frame, rgb: np.ndarray, codec: str):
    fmt, data = encode_colour(rgb, "jpeg" if codec == "jpeg" else "png")
    return ts.types["sensor_msgs/msg/CompressedImage"](header=_header(ts, t, frame), format=fmt,
                                                        data=np.frombuffer(data, np.uint8))


def _compressed_depth(ts, t, frame, depth: np.ndarray, encoding: str, codec: str):
    fmt, data = encode_depth(depth, encoding, "rvl" if codec == "rvl" else "png")
    return ts.types["sensor_msgs/msg/CompressedImage"](header=_header(ts, t, frame), format=fmt,
                                                        data=np.frombuffer(data, np.uint8))


def write_tum(folder: Path, frames, depth_scale: float = 5000.0, depth_dt: float = 0.004) -> Path:
    """Write ``frames`` as a TUM RGB-D folder (PNG images, rgb/depth/groundtruth lists)."""
    from PIL import Image

    (folder / "rgb").mkdir(parents=True)
    (folder / "depth").mkdir()
    lists = {name: [f"# {name}"] for name in ("rgb", "depth", "groundtruth")}
    for stamp, rgb, depth, T_world_cam in frames:
        Image.fromarray(rgb).save(folder / "rgb" / f"{stamp:.6f}.png")
        scaled = np.round(np.nan_to_num(depth) * depth_scale).astype(np.uint16)
        Image.fromarray(scaled).save(folder / "depth" / f"{stamp + depth_dt:.6f}.png")
        lists["rgb"].append(f"{stamp:.6f} rgb/{stamp:.6f}.png")
        lists["depth"].append(f"{stamp + depth_dt:.6f} depth/{stamp + depth_dt:.6f}.png")
        q = Rotation.from_matrix(T_world_cam[:3, :3]).as_quat()
        lists["groundtruth"].append(f"{stamp:.6f} " + " ".join(f"{v:.9f}" for v in (*T_world_cam[:3, 3], *q)))
    for name, lines in lists.items():
        (folder / f"{name}.txt").write_text("\n".join(lines) + "\n")
    return folder
