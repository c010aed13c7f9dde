"""Publish RGB-D frames with their TF from a script: the benchmark's and the tests' camera.

Unlike the ``sim_camera`` node (a free-running simulated sensor), :class:`CameraFeed` publishes
exactly the frames it is given, when it is told to, so a caller controls stamps and timing and
can inject malformed messages. Frames are published like a ROS RGB-D driver does:

- ``<prefix>/color/image_raw`` (rgb8), ``<prefix>/depth/image_raw`` (32FC1),
  ``<prefix>/color/camera_info``, all stamped in ``optical_frame``; with ``transport="compressed"``
  image_transport's copies instead: ``.../image_raw/compressed`` (PNG) and
  ``.../image_raw/compressedDepth`` (32FC1 PNG);
- ``/tf``: ``world_frame -> base_frame`` at the frame stamp; ``/tf_static``:
  ``base_frame -> optical_frame``;
- with ``depth_camera``, depth as an unregistered driver sends it: stamped in
  ``camera_depth_optical_frame``, its own ``<prefix>/depth/camera_info``, and
  ``optical_frame -> camera_depth_optical_frame`` on ``/tf_static``.
"""

from __future__ import annotations

import numpy as np
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from tf2_msgs.msg import TFMessage

from mirage_ros.geometry import Intrinsics
from mirage_ros.messages import convert
from mirage_ros.ros.recorder import Recorder
from mirage_ros.ros.transport import frame_messages


class CameraFeed:
    """Publishers of one RGB-D camera and its TF on a :class:`Recorder`'s node.

    Args:
        recorder: supplies the node.
        T_base_cam: ``(4, 4)`` optical camera pose on the robot base (sent on ``/tf_static``).
        prefix: topic prefix (``/camera``).
        world_frame, base_frame, optical_frame: TF frame names.
        transport: ``"raw"`` or ``"compressed"`` (image_transport's copies, see module doc).
        depth_camera: ``(K_depth, T_colour_depth)``: depth images come from a camera of their own
            with intrinsics ``K_depth``, posed ``T_colour_depth (4, 4)`` in the optical frame.
    """

    DEPTH_FRAME = "camera_depth_optical_frame"

    def __init__(self, recorder: Recorder, T_base_cam: np.ndarray, prefix: str = "/camera",
                 world_frame: str = "map", base_frame: str = "base_link",
                 optical_frame: str = "camera_color_optical_frame", transport: str = "raw",
                 depth_camera: tuple[Intrinsics, np.ndarray] | None = None):
        self.recorder = recorder
        self.frames = (world_frame, base_frame, optical_frame)
        self.transport = transport
        self.depth_camera = depth_camera
        if transport == "compressed":
            self.image = recorder.publisher(f"{prefix}/color/image_raw/compressed", CompressedImage, 10)
            self.depth = recorder.publisher(f"{prefix}/depth/image_raw/compressedDepth", CompressedImage, 10)
        else:
            self.image = recorder.publisher(f"{prefix}/color/image_raw", Image, 10)
            self.depth = recorder.publisher(f"{prefix}/depth/image_raw", Image, 10)
        self.info = recorder.publisher(f"{prefix}/color/camera_info", CameraInfo, 10)
        self.depth_info = recorder.publisher(f"{prefix}/depth/camera_info", CameraInfo, 10) if depth_camera else None
        self.tf = recorder.publisher("/tf", TFMessage, 100)
        static_qos = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL,
                                reliability=ReliabilityPolicy.RELIABLE)
        self.tf_static = recorder.publisher("/tf_static", TFMessage, static_qos)
        mounts = [(T_base_cam, base_frame, optical_frame)]
        if depth_camera is not None:
            mounts.append((depth_camera[1], optical_frame, self.DEPTH_FRAME))
        # one message: a latched topic keeps only the last one for late subscribers
        self.tf_static.publish(TFMessage(transforms=[
            convert.transform_stamped(T, parent, child, convert.sec_to_time(0.0)) for T, parent, child in mounts]))

    def wait_for_subscribers(self, timeout: float = 30.0, tf: bool = True) -> bool:
        """Spin until image, depth, camera_info (and ``/tf``) each have a subscriber.

        DDS discovery matches each topic separately, seconds apart on a loaded machine: frames sent
        before every topic is matched are lost or unsynchronisable."""
        publishers = (self.image, self.depth, self.info) + ((self.tf,) if tf else ()) + (
            (self.depth_info,) if self.depth_info else ())
        return all(self.recorder.wait_for_subscribers(p, timeout=timeout) for p in publishers)

    def publish_pose(self, T_world_base: np.ndarray, stamp: float) -> None:
        """``world_frame -> base_frame`` on ``/tf`` at ``stamp`` seconds."""
        world, base, _ = self.frames
        msg = convert.transform_stamped(T_world_base, world, base, convert.sec_to_time(stamp))
        self.tf.publish(TFMessage(transforms=[msg]))

    def publish(self, rgb: np.ndarray, depth: np.ndarray, K: Intrinsics, stamp: float,
                T_world_base: np.ndarray | None = None, image: Image | None = None,
                depth_msg: Image | None = None, info: CameraInfo | None = None) -> None:
        """Publish one frame (pose first, as drivers' TF usually leads the image).

        ``depth``: ``(H, W)`` metres in ``K``, or with ``depth_camera`` ``K_depth.shape`` in the
        depth camera. ``image`` / ``depth_msg`` / ``info`` replace the messages built from the
        arrays (to send malformed ones); ``T_world_base=None`` publishes no pose.
        """
        if T_world_base is not None:
            self.publish_pose(T_world_base, stamp)
        ros_stamp, frame = convert.sec_to_time(stamp), self.frames[2]
        if image is None or depth_msg is None:
            built = frame_messages(rgb, depth, self.transport)
            image, depth_msg = image or built[0], depth_msg or built[1]
        info = info or convert.camera_info_from_intrinsics(K, ros_stamp, frame)
        for msg in (image, depth_msg, info):
            msg.header.stamp, msg.header.frame_id = ros_stamp, frame
        if self.depth_camera is not None:
            depth_msg.header.frame_id = self.DEPTH_FRAME
            self.depth_info.publish(convert.camera_info_from_intrinsics(self.depth_camera[0], ros_stamp,
                                                                        self.DEPTH_FRAME))
        self.info.publish(info)
        self.depth.publish(depth_msg)
        self.image.publish(image)

