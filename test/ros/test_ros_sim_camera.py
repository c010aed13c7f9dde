"""sim_camera as a real process: its topics reach a separate rclpy process; bad parameters stop it."""

import numpy as np
import pytest
from nav_msgs.msg import Odometry
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, Image

from mirage_ros.messages import convert
from mirage_ros.ros.recorder import Recorder
from mirage_ros.sim import SimConfig, Simulator
from mirage_ros.sim.bag import STAMP_OFFSET

RATE = 20.0


@pytest.mark.usefixtures("interfaces")
def test_node_topics_reach_another_process(ros_process):
    from tf2_msgs.msg import TFMessage

    node = ros_process(
        module="mirage_ros.ros.sim_camera",
        args=[
            "--ros-args",
            "-p",
            "scene:=office",
            "-p",
            "seed:=4",
            "-p",
            "width:=64",
            "-p",
            "height:=48",
            "-p",
            f"rate:={RATE}",
            "-p",
            "publish_clock:=true",
        ],
    )
    node.wait_for_output("publishing", timeout=30)
    latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL, reliability=ReliabilityPolicy.RELIABLE)
    with Recorder("sim_camera_probe") as rec:
        color = rec.record("/camera/color/image_raw", Image, qos_profile_sensor_data)
        depth = rec.record("/camera/depth/image_raw", Image, qos_profile_sensor_data)
        info = rec.record("/camera/color/camera_info", CameraInfo, qos_profile_sensor_data)
        mask = rec.record("/camera/motion_mask", Image, qos_profile_sensor_data)
        odom = rec.record("/odom", Odometry)
        tf = rec.record("/tf", TFMessage, 100)
        tf_static = rec.record("/tf_static", TFMessage, latched)
        clock = rec.record("/clock", Clock, best_effort=True)
        done = lambda: (
            min(len(color), len(depth), len(info), len(mask), len(odom), len(tf), len(clock)) >= 5 and tf_static
        )  # noqa: E731
        assert rec.spin_until(done, timeout=30), node.output()
    rgb = convert.rgb_from_image(color[-1].msg)
    assert rgb.shape == (48, 64, 3) and rgb.std() > 5
    assert convert.depth_from_image(depth[-1].msg).max() > 0.5
    assert convert.mask_from_image(mask[-1].msg).shape == (48, 64)
    assert convert.intrinsics_from_camera_info(info[-1].msg).width == 64
    frames = {t.child_frame_id for t in tf_static[0].msg.transforms}
    assert frames == {"odom", "camera_link", "camera_optical_frame"}
    # sim time: /clock ticks STAMP_OFFSET + i / rate, and images are stamped on that clock
    ticks = np.array([convert.time_to_sec(c.msg.clock) for c in clock]) - STAMP_OFFSET
    assert np.allclose(np.diff(ticks), 1.0 / RATE, atol=1e-6)
    t = convert.time_to_sec(color[-1].msg.header.stamp) - STAMP_OFFSET
    assert abs(t * RATE - round(t * RATE)) < 1e-4
    # the published odometry is the simulator's ground truth at that stamp
    last = odom[-1].msg
    t_odom = convert.time_to_sec(last.header.stamp) - STAMP_OFFSET
    sim = Simulator(SimConfig(scene="office", seed=4, width=64, height=48, rate_hz=RATE))
    assert np.allclose(convert.pose_to_matrix(last.pose.pose), sim.T_odom_base(t_odom), atol=1e-6)


@pytest.mark.usefixtures("interfaces")
def test_bad_parameter_stops_the_node_naming_it(ros_process):
    node = ros_process(module="mirage_ros.ros.sim_camera", args=["--ros-args", "-p", "scene:=castle"])
    node.wait_for_output(r"error: .*scene", timeout=30)
    assert node.popen.wait(10) == 2
