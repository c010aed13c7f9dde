"""Depth from a sensor of its own, re-projected into the colour camera (``depth_registration``).

Drivers that do not register depth publish it in the depth sensor's frame and resolution: a
Kinect's ``camera/depth/image_raw`` beside ``camera/rgb/image_color``, a RealSense without
``align_depth``, an Azure Kinect's ``depth/image_raw``. Such images come with a CameraInfo of their
own, by image_transport's convention beside them (``/camera/depth/camera_info`` for
``/camera/depth/image_raw``), and the depth-to-colour transform on ``/tf_static``. Lifting colour
latents with that depth as it is would put every surface a few centimetres (a baseline of
2.5 cm at 1 m: about 13 px at 640x480) away from its colour.

With ``depth_registration: auto`` the nodes re-project it into the colour camera
(:func:`mirage_ros.geometry.register_depth`, what depth_image_proc's ``register`` node does).
Depth is used as it is when its CameraInfo is the colour camera's (resampled to its size) and it
is stamped in the colour image's frame, as drivers' aligned outputs are; with no depth CameraInfo
received, a depth image stamped in another frame is used as it is with a warning (``disabled``: always
as it is, no warning).
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo

from mirage_ros.errors import InvalidInput
from mirage_ros.geometry import DEPTH_REGISTRATION, Intrinsics, register_depth
from mirage_ros.messages.convert import intrinsics_from_camera_info
from mirage_ros.messages.frames import optical_between, resolve_convention
from mirage_ros.ros.node_util import WarningThrottle
from mirage_ros.ros.params import Param
from mirage_ros.ros.plausibility import Bounds
from mirage_ros.ros.pose_source import PoseUnavailable, TfPoseSource

PARAMS = [
    Param("depth_registration", "auto", "auto = depth with a CameraInfo of its own (another frame or other "
          "intrinsics than the colour camera) is re-projected into the colour camera with TF's depth-to-colour "
          "transform; disabled = depth is registered to the colour image", choices=DEPTH_REGISTRATION),
    Param("depth_camera_info_topic", "", "CameraInfo of the depth images ('' = camera_info beside the depth "
          "topic, after remapping: /camera/depth/camera_info for /camera/depth/image_raw)"),
]


_SIZES_KEPT = 4  # depth CameraInfos of different sizes remembered (a driver switching modes, strays)


def depth_info_topic(node, setting: str) -> str | None:
    """The depth CameraInfo topic: ``setting``, or ``camera_info`` in the namespace of the node's
    ``depth`` topic; None when that is the colour's own ``camera_info`` topic."""
    topic = node.resolve_topic_name(setting) if setting else (
        node.resolve_topic_name("depth").rsplit("/", 1)[0] + "/camera_info")
    return None if topic == node.resolve_topic_name("camera_info") else topic


class DepthRegistration:
    """A node's depth CameraInfo subscription and the re-projection of its depth images.

    Args:
        node: the rclpy node (subscribes the depth CameraInfo with ``mode`` ``auto``).
        mode: one of :data:`DEPTH_REGISTRATION`.
        info_topic: the depth CameraInfo topic (:func:`depth_info_topic`; None: none of its own).
        convention: the ``camera_frame_convention`` parameter (both cameras' frames).
        warn: the node's throttled warnings.
        tf: a :class:`TfPoseSource` to share; None: one is made the first time TF is needed.
        use_projection: intrinsics from ``CameraInfo.p`` (``use_rectified_projection``).
        bounds: plausible intrinsics (others are ignored with a warning).
    """

    def __init__(self, node, mode: str, info_topic: str | None, convention: str, warn: WarningThrottle,
                 tf: TfPoseSource | None = None, use_projection: bool = False, bounds: Bounds = Bounds()):
        if mode not in DEPTH_REGISTRATION:
            raise InvalidInput("depth_registration", f"must be one of {DEPTH_REGISTRATION}, got {mode!r}")
        self.mode = mode
        self.topic = info_topic
        self.K_depth: Intrinsics | None = None  # the newest depth CameraInfo
        self._by_size: OrderedDict[tuple[int, int], Intrinsics] = OrderedDict()  # the newest of each size
        self._bounds = bounds
        self.registered_frames = 0
        self._node, self._convention, self._warn, self._tf = node, convention, warn, tf
        self._use_projection = use_projection
        if mode == "auto" and info_topic:
            node.create_subscription(CameraInfo, info_topic, self._on_info, qos_profile_sensor_data)

    def _on_info(self, msg: CameraInfo) -> None:
        try:
            K_depth = self._bounds.intrinsics(intrinsics_from_camera_info(msg, self._use_projection))
        except InvalidInput as exc:
            self._warn.warn("depth_camera_info", f"depth CameraInfo on {self.topic} ignored: {exc}")
            return
        self.K_depth = K_depth
        self._by_size[(K_depth.width, K_depth.height)] = K_depth
        self._by_size.move_to_end((K_depth.width, K_depth.height))
        while len(self._by_size) > _SIZES_KEPT:
            self._by_size.popitem(last=False)

    def depth_camera(self, colour_frame: str, K: Intrinsics, depth_frame: str,
                     depth_size: tuple[int, int] | None = None) -> Intrinsics | None:
        """The depth image's own intrinsics when it must be re-projected into the colour camera
        ``K`` (see the module doc), None when it is registered to it.

        ``depth_size``: the depth image's ``(width, height)`` where known before decoding: the
        newest depth CameraInfo of that size answers, so that one stray CameraInfo of another
        size cannot hold up every later frame."""
        if self.mode == "disabled":
            return None
        same_frame = not depth_frame or depth_frame == colour_frame
        if depth_size is not None and self.K_depth is not None and depth_size != self.K_depth.shape[::-1]:
            sized = self._by_size.get(tuple(depth_size))
            if sized is None and same_frame and tuple(depth_size) == K.shape[::-1]:
                self._warn.warn("depth_camera_info", f"depth CameraInfo on {self.topic} of "
                                f"{self.K_depth.width}x{self.K_depth.height} ignored: the depth images are "
                                f"{depth_size[0]}x{depth_size[1]}, stamped in the image's frame: taken as registered")
                return None
            if sized is not None:
                return None if same_frame and K.same_camera(sized) else sized
        if self.K_depth is None:
            if not same_frame:
                self._warn.warn("depth_registration", (
                    f"depth is stamped in {depth_frame!r}, the image in {colour_frame!r}, and no CameraInfo came "
                    f"on {self.topic or '(no depth CameraInfo topic)'}: depth taken as registered to the image "
                    "(set depth_camera_info_topic, or depth_registration: disabled if it is registered)"), 30.0)
            return None
        return None if same_frame and K.same_camera(self.K_depth) else self.K_depth

    def register(self, depth: np.ndarray, K_depth: Intrinsics, depth_frame: str, K: Intrinsics,
                 colour_frame: str, stamp_ns: int) -> np.ndarray:
        """``(H, W) float32`` metres in the colour camera ``K`` from the depth camera's
        ``depth`` ``(Hd, Wd)``, with TF's ``colour_frame <- depth_frame`` at ``stamp_ns``.

        Raises:
            PoseUnavailable: no such transform (``may_arrive`` while /tf_static may still come).
        """
        try:
            T = self._tf_source().lookup(colour_frame, depth_frame, stamp_ns)
            T_colour_depth = optical_between(T, resolve_convention(self._convention, colour_frame),
                                             resolve_convention(self._convention, depth_frame))
            registered = register_depth(depth, K_depth, T_colour_depth, K)
        except PoseUnavailable as exc:
            raise PoseUnavailable(f"depth registration: {exc.cause}", exc.may_arrive) from exc
        except InvalidInput as exc:
            raise PoseUnavailable(f"depth registration: {exc}", False) from exc
        self.registered_frames += 1
        return registered

    def _tf_source(self) -> TfPoseSource:
        if self._tf is None:
            self._tf = TfPoseSource(self._node, "", "")
        return self._tf
