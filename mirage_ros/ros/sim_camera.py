"""``sim_camera``: the simulated RGB-D camera as a ROS 2 node (the demo's default source).

Publishes, at ``rate`` Hz of wall time, what ``mirage-ros sim record`` writes to bags
(``mirage_ros.sim.bag``): ``camera/color/image_raw`` (rgb8), ``camera/depth/image_raw`` (32FC1 m),
both ``camera_info``, ``camera/motion_mask`` (mono8) and ``camera/instance_ids`` (16UC1) ground
truth, ``odom`` (nav_msgs/Odometry), and TF map -> odom -> base_link -> camera_link ->
camera_optical_frame (``/tf_static`` latched, ``/tf`` per frame). Image topics use sensor-data
QoS; names are relative, so they follow the node's namespace and remappings.

Time: frame ``i`` shows the scene at ``t = i / rate`` s. With ``publish_clock`` the node also
publishes ``/clock`` = ``STAMP_OFFSET + t`` and stamps everything with it (sim time: run the
consumers with ``use_sim_time:=true``); otherwise messages carry the node's clock at publication.
Its timer always runs on the steady clock, so ``use_sim_time`` on this node cannot stall it.
"""

from __future__ import annotations

import numpy as np
from nav_msgs.msg import Odometry
from rclpy.clock import Clock, ClockType
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from rosgraph_msgs.msg import Clock as ClockMsg
from sensor_msgs.msg import CameraInfo, Image

from mirage_ros.messages.convert import (
    array_to_image,
    camera_info_from_intrinsics,
    matrix_to_pose,
    sec_to_time,
    transform_stamped,
)
from mirage_ros.ros.node_util import ContainedNode, run_node
from mirage_ros.ros.params import Param, declare
from mirage_ros.sim import PATHS, SCENES, SimConfig, Simulator
from mirage_ros.sim.bag import STAMP_OFFSET
from mirage_ros.sim.config import NOISE_MODELS
from mirage_ros.sim.simulator import BASE, ODOM, OPTICAL

try:  # tf2_ros when a ROS install provides it; else TFMessage on /tf and /tf_static ourselves
    from tf2_ros import StaticTransformBroadcaster, TransformBroadcaster
except ImportError:  # pragma: no cover - depends on the machine
    TransformBroadcaster = StaticTransformBroadcaster = None
try:
    from tf2_msgs.msg import TFMessage
except ImportError:  # pragma: no cover - depends on the machine
    TFMessage = None

PARAMS = [
    Param("scene", "corridor", "procedural scene family", choices=tuple(SCENES)),
    Param("seed", 0, "scene seed (layout, textures, people)", (0, 2**31 - 1)),
    Param("width", 320, "image width (pixels)", (16, 4096)),
    Param("height", 240, "image height (pixels)", (16, 4096)),
    Param("rate", 10.0, "frames per second", (0.1, 1000.0)),
    Param("path", "loop", "camera path", choices=PATHS),
    Param("actors", 5, "people walking about (0 = static scene)", (0, 64)),
    Param("speed", 0.8, "robot speed (m/s)", (0.01, 5.0)),
    Param("camera_height", 1.15, "camera height above the floor (m); the camera is level", (0.2, 2.0)),
    Param("max_range", 10.0, "depth range (m); farther surfaces read 0", (0.1, 100.0)),
    Param(
        "noise", "none", "sensor model: none = exact ground truth, kinect = Kinect-class noise", choices=NOISE_MODELS
    ),
    Param("publish_clock", False, "publish /clock (sim time = 1.7e9 s + frame index / rate) and stamp with it"),
]


class SimCameraNode(ContainedNode):
    """Renders frame ``i`` of the configured simulation on every tick and publishes it (see module doc)."""

    def __init__(self):
        super().__init__("sim_camera")
        p = declare(self, PARAMS)
        self.sim = Simulator(
            SimConfig(
                scene=p.scene,
                seed=p.seed,
                width=p.width,
                height=p.height,
                rate_hz=p.rate,
                path=p.path,
                actors=p.actors,
                speed=p.speed,
                camera_height=p.camera_height,
                max_range=p.max_range,
                noise=p.noise,
            )
        )
        self.publish_clock = p.publish_clock
        sensor = qos_profile_sensor_data
        self.pub = {
            "color": self.create_publisher(Image, "camera/color/image_raw", sensor),
            "color_info": self.create_publisher(CameraInfo, "camera/color/camera_info", sensor),
            "depth": self.create_publisher(Image, "camera/depth/image_raw", sensor),
            "depth_info": self.create_publisher(CameraInfo, "camera/depth/camera_info", sensor),
            "mask": self.create_publisher(Image, "camera/motion_mask", sensor),
            "instances": self.create_publisher(Image, "camera/instance_ids", sensor),
            "odom": self.create_publisher(Odometry, "odom", 10),
        }
        self.clock_pub = self.create_publisher(ClockMsg, "/clock", 10) if self.publish_clock else None
        self._setup_tf()
        self.index = 0
        self.timer = self.create_timer(1.0 / p.rate, self._tick, clock=Clock(clock_type=ClockType.STEADY_TIME))
        self.get_logger().info(
            f"publishing {p.scene} seed {p.seed} at {p.width}x{p.height}, {p.rate:g} Hz, path {p.path}, "
            f"{self.sim.walkers.count} people, noise {p.noise}, clock {'on' if self.publish_clock else 'off'}"
        )

    def _setup_tf(self) -> None:
        self.tf_pub = None
        if TransformBroadcaster is not None:
            self.tf_broadcaster = TransformBroadcaster(self)
            self.tf_static = StaticTransformBroadcaster(self)
        elif TFMessage is not None:
            self.tf_broadcaster = None
            self.tf_pub = self.create_publisher(TFMessage, "/tf", 100)
            latched = QoSProfile(
                depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL, reliability=ReliabilityPolicy.RELIABLE
            )
            self.tf_static_pub = self.create_publisher(TFMessage, "/tf_static", latched)
        else:
            self.tf_broadcaster = None
            self.get_logger().warning("neither tf2_ros nor tf2_msgs is importable: no /tf, poses only on odom")
            return
        self._send_tf(self._stamp(0.0), self.sim.static_transforms(), static=True)

    def _stamp(self, t: float):
        """Header stamp for simulation time ``t``."""
        if self.publish_clock:
            return sec_to_time(STAMP_OFFSET + t)
        return self.get_clock().now().to_msg()

    def _send_tf(self, stamp, transforms: list[tuple[str, str, np.ndarray]], static: bool = False) -> None:
        msgs = [transform_stamped(T, parent, child, stamp) for parent, child, T in transforms]
        if self.tf_broadcaster is not None:
            (self.tf_static if static else self.tf_broadcaster).sendTransform(msgs)
        elif self.tf_pub is not None:
            (self.tf_static_pub if static else self.tf_pub).publish(TFMessage(transforms=msgs))

    def _odometry(self, stamp, t: float) -> Odometry:
        msg = Odometry()
        msg.header.stamp, msg.header.frame_id, msg.child_frame_id = stamp, ODOM, BASE
        msg.pose.pose = matrix_to_pose(self.sim.T_odom_base(t))
        linear, angular = self.sim.twist_at(t)
        msg.twist.twist.linear.x, msg.twist.twist.linear.y, msg.twist.twist.linear.z = (float(v) for v in linear)
        msg.twist.twist.angular.x, msg.twist.twist.angular.y, msg.twist.twist.angular.z = (float(v) for v in angular)
        return msg

    def _tick(self) -> None:
        frame = self.sim.frame_at(self.index)
        self.index += 1
        self.sim.forget_before(frame.stamp - 1.0)  # a live camera never looks back: memory stays flat
        stamp = self._stamp(frame.stamp)
        if self.clock_pub is not None:
            self.clock_pub.publish(ClockMsg(clock=stamp))
        self._send_tf(stamp, self.sim.dynamic_transforms(frame.stamp))
        self.pub["odom"].publish(self._odometry(stamp, frame.stamp))
        info = camera_info_from_intrinsics(frame.K, stamp, OPTICAL)
        self.pub["color"].publish(array_to_image(frame.rgb, "rgb8", stamp, OPTICAL))
        self.pub["depth"].publish(array_to_image(frame.depth, "32FC1", stamp, OPTICAL))
        self.pub["color_info"].publish(info)
        self.pub["depth_info"].publish(info)
        self.pub["mask"].publish(array_to_image(frame.motion_mask, "mono8", stamp, OPTICAL))
        self.pub["instances"].publish(array_to_image(frame.instance_ids.astype(np.uint16), "16UC1", stamp, OPTICAL))


def main(args=None) -> None:
    run_node(SimCameraNode, args)


if __name__ == "__main__":
    main()
