"""Record simulated frames as a rosbag2 (MCAP or sqlite3) with ``rosbags``, atomically.

Topics (all stamped ``STAMP_OFFSET + t``; images in ``camera_optical_frame``):

============================  ==========================  ======================================
/camera/color/image_raw       sensor_msgs/Image rgb8
/camera/color/camera_info     sensor_msgs/CameraInfo      plumb_bob, zero distortion
/camera/depth/image_raw       sensor_msgs/Image 32FC1     metres, 0 = no return (REP-118),
                                                          registered to colour
/camera/depth/camera_info     sensor_msgs/CameraInfo      same as colour
/camera/motion_mask           sensor_msgs/Image mono8     255 = a person walking (ground truth)
/camera/instance_ids          sensor_msgs/Image 16UC1     0 = static, k = person k
/tf                           tf2_msgs/TFMessage          odom -> base_link per frame
/tf_static                    tf2_msgs/TFMessage          map -> odom, base_link -> camera_link
                                                          -> camera_optical_frame (transient local)
/odom                         nav_msgs/Odometry           odom -> base_link, twist in base_link
============================  ==========================  ======================================

The bag is written under a temporary name next to the target and renamed into place at the end:
an interrupted or failed recording leaves nothing under the final name.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from mirage_ros.errors import InvalidInput
from mirage_ros.geometry import pose_to_tq, quat_wxyz_to_xyzw
from mirage_ros.sim.simulator import BASE, ODOM, OPTICAL, Frame, Simulator

STAMP_OFFSET = 1_700_000_000.0  # seconds added to simulation time in messages (time 0 means "unset" in ROS)
STORAGES = {"mcap": (StoragePlugin.MCAP, ".mcap"), "sqlite3": (StoragePlugin.SQLITE3, ".db3")}
TOPICS = {
    "color": ("/camera/color/image_raw", "sensor_msgs/msg/Image"),
    "color_info": ("/camera/color/camera_info", "sensor_msgs/msg/CameraInfo"),
    "depth": ("/camera/depth/image_raw", "sensor_msgs/msg/Image"),
    "depth_info": ("/camera/depth/camera_info", "sensor_msgs/msg/CameraInfo"),
    "mask": ("/camera/motion_mask", "sensor_msgs/msg/Image"),
    "instances": ("/camera/instance_ids", "sensor_msgs/msg/Image"),
    "tf": ("/tf", "tf2_msgs/msg/TFMessage"),
    "tf_static": ("/tf_static", "tf2_msgs/msg/TFMessage"),
    "odom": ("/odom", "nav_msgs/msg/Odometry"),
}


def resolve_output(out: str | os.PathLike, storage: str | None = None) -> tuple[Path, str]:
    """Bag directory and storage for ``--out``: ``run.mcap`` -> (``run/``, mcap), ``run.db3`` ->
    (``run/``, sqlite3); without a suffix, ``storage`` (default mcap). Checks it can be created."""
    path = Path(out)
    by_suffix = {ext: name for name, (_, ext) in STORAGES.items()}
    if path.suffix in by_suffix:
        if storage is not None and storage != by_suffix[path.suffix]:
            raise InvalidInput("--storage", f"{storage!r} contradicts the suffix of {str(path)!r}")
        storage, path = by_suffix[path.suffix], path.with_suffix("")
    storage = storage or "mcap"
    if storage not in STORAGES:
        raise InvalidInput("--storage", f"unknown storage {storage!r}; choose one of {sorted(STORAGES)}")
    if path.exists():
        raise InvalidInput("--out", f"{str(path)!r} exists already; not overwriting it")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise InvalidInput("--out", f"folder {str(parent)!r} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InvalidInput("--out", f"folder {str(parent)!r} is not writable")
    return path, storage


class _Messages:
    """Builds rosbags typestore messages for one simulator."""

    def __init__(self, sim: Simulator):
        self.ts = get_typestore(Stores.ROS2_KILTED)
        self.t = self.ts.types
        self.sim = sim
        K = sim.K
        self.k = np.array([K.fx, 0, K.cx, 0, K.fy, K.cy, 0, 0, 1], np.float64)
        self.p = np.array([K.fx, 0, K.cx, 0, 0, K.fy, K.cy, 0, 0, 0, 1, 0], np.float64)

    def header(self, stamp: float, frame_id: str):
        ns = int(round((STAMP_OFFSET + stamp) * 1e9))
        return self.t["std_msgs/msg/Header"](
            stamp=self.t["builtin_interfaces/msg/Time"](sec=ns // 10**9, nanosec=ns % 10**9), frame_id=frame_id
        )

    def image(self, stamp: float, pixels: np.ndarray, encoding: str):
        data = np.ascontiguousarray(pixels)
        H, W = data.shape[:2]
        return self.t["sensor_msgs/msg/Image"](
            header=self.header(stamp, OPTICAL),
            height=H,
            width=W,
            encoding=encoding,
            is_bigendian=0,
            step=data.nbytes // H,
            data=data.view(np.uint8).ravel(),
        )

    def camera_info(self, stamp: float):
        K = self.sim.K
        roi = self.t["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0, width=0, do_rectify=False)
        return self.t["sensor_msgs/msg/CameraInfo"](
            header=self.header(stamp, OPTICAL),
            height=K.height,
            width=K.width,
            distortion_model="plumb_bob",
            d=np.zeros(5),
            k=self.k,
            r=np.eye(3).ravel(),
            p=self.p,
            binning_x=0,
            binning_y=0,
            roi=roi,
        )

    def _tq(self, T: np.ndarray):
        trans, q = pose_to_tq(T)
        x, y, z, w = quat_wxyz_to_xyzw(q).tolist()
        v = self.t["geometry_msgs/msg/Vector3"](x=float(trans[0]), y=float(trans[1]), z=float(trans[2]))
        r = self.t["geometry_msgs/msg/Quaternion"](x=x, y=y, z=z, w=w)
        return v, r

    def tf(self, stamp: float, transforms: list[tuple[str, str, np.ndarray]]):
        msgs = []
        for parent, child, T in transforms:
            v, r = self._tq(T)
            msgs.append(
                self.t["geometry_msgs/msg/TransformStamped"](
                    header=self.header(stamp, parent),
                    child_frame_id=child,
                    transform=self.t["geometry_msgs/msg/Transform"](translation=v, rotation=r),
                )
            )
        return self.t["tf2_msgs/msg/TFMessage"](transforms=msgs)

    def odometry(self, stamp: float):
        v, r = self._tq(self.sim.T_odom_base(stamp))
        lin, ang = self.sim.twist_at(stamp)
        vec = self.t["geometry_msgs/msg/Vector3"]
        pose = self.t["geometry_msgs/msg/Pose"](
            position=self.t["geometry_msgs/msg/Point"](x=v.x, y=v.y, z=v.z), orientation=r
        )
        twist = self.t["geometry_msgs/msg/Twist"](
            linear=vec(x=lin[0], y=lin[1], z=lin[2]), angular=vec(x=ang[0], y=ang[1], z=ang[2])
        )
        return self.t["nav_msgs/msg/Odometry"](
            header=self.header(stamp, ODOM),
            child_frame_id=BASE,
            pose=self.t["geometry_msgs/msg/PoseWithCovariance"](pose=pose, covariance=np.zeros(36)),
            twist=self.t["geometry_msgs/msg/TwistWithCovariance"](twist=twist, covariance=np.zeros(36)),
        )

    def frame(self, frame: Frame) -> dict[str, object]:
        s = frame.stamp
        return {
            "color": self.image(s, frame.rgb, "rgb8"),
            "color_info": self.camera_info(s),
            "depth": self.image(s, frame.depth.astype(np.float32), "32FC1"),
            "depth_info": self.camera_info(s),
            "mask": self.image(s, frame.motion_mask.astype(np.uint8) * 255, "mono8"),
            "instances": self.image(s, frame.instance_ids.astype(np.uint16), "16UC1"),
            "tf": self.tf(s, self.sim.dynamic_transforms(s)),
            "odom": self.odometry(s),
        }


def _qos(latched: bool, best_effort: bool = False) -> Qos:
    zero = QosTime(sec=0, nsec=0)
    return Qos(
        history=QosHistory.KEEP_LAST,
        depth=1 if latched else 10,
        reliability=QosReliability.BEST_EFFORT if best_effort else QosReliability.RELIABLE,
        durability=QosDurability.TRANSIENT_LOCAL if latched else QosDurability.VOLATILE,
        deadline=zero,
        lifespan=zero,
        liveliness=QosLiveliness.AUTOMATIC,
        liveliness_lease_duration=zero,
        avoid_ros_namespace_conventions=False,
    )


def record_bag(
    sim: Simulator, out: str | os.PathLike, frames: int, storage: str | None = None, progress: bool = True
) -> Path:
    """Write ``frames`` frames of ``sim`` (from t = 0) to a new bag; returns the bag directory."""
    if not isinstance(frames, int) or isinstance(frames, bool) or frames < 1:
        raise InvalidInput("--frames", f"must be an integer >= 1, got {frames!r}")
    final, storage = resolve_output(out, storage)
    plugin = STORAGES[storage][0]
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.partial-", dir=final.parent if str(final.parent) else "."))
    try:
        msgs = _Messages(sim)
        with Writer(staging / final.name, version=9, storage_plugin=plugin) as writer:
            conns = {
                key: writer.add_connection(
                    topic, msgtype, typestore=msgs.ts, offered_qos_profiles=[_qos(latched=key == "tf_static")]
                )
                for key, (topic, msgtype) in TOPICS.items()
            }
            stamp_ns = lambda s: int(round((STAMP_OFFSET + s) * 1e9))  # noqa: E731
            writer.write(
                conns["tf_static"],
                stamp_ns(0.0),
                msgs.ts.serialize_cdr(msgs.tf(0.0, sim.static_transforms()), TOPICS["tf_static"][1]),
            )
            iterator = sim.frames(frames)
            if progress:
                from tqdm import tqdm

                iterator = tqdm(iterator, total=frames, unit="frame", desc=f"recording {final}")
            for frame in iterator:
                for key, msg in msgs.frame(frame).items():
                    writer.write(conns[key], stamp_ns(frame.stamp), msgs.ts.serialize_cdr(msg, TOPICS[key][1]))
        if final.exists():
            raise InvalidInput("--out", f"{str(final)!r} appeared while recording; not overwriting it")
        os.rename(staging / final.name, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final
