"""world_model + consistency_monitor for a real RGB-D camera.

    ros2 launch mirage_ros mirage.launch.py \
        image_topic:=/camera/color/image_raw depth_topic:=/camera/aligned_depth_to_color/image_raw \
        camera_info_topic:=/camera/color/camera_info world_frame:=map provider:=auto

Depth registered to the colour image is used as it is; depth from a camera of its own (its
CameraInfo beside it, e.g. /camera/depth/camera_info, and its transform on /tf_static) is
re-projected into the colour camera (depth_registration). Outputs are in the namespace
``namespace`` (default ``mirage``): /mirage/predicted/..., /mirage/moving/...
Every node parameter is in config/world_model.yaml and config/consistency_monitor.yaml
(pass your own copies with world_model_config:= / monitor_config:=); the launch arguments below
override the few that differ per robot. docs/nodes.md lists topics and parameters.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, SetEnvironmentVariable
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from mirage_ros.ros.dds import large_message_env

ARGUMENTS = [
    ("namespace", "mirage", "namespace of both nodes and of their outputs"),
    ("image_topic", "/camera/color/image_raw", "colour image (rgb8, bgr8, mono8, rgba8, bgra8)"),
    ("depth_topic", "/camera/depth/image_raw", "depth (32FC1 metres or 16UC1 millimetres), registered to the "
     "colour image or with its own camera_info beside it"),
    ("depth_registration", "auto", "auto | disabled: re-project depth from a camera of its own into the colour camera "
     "(its camera_info beside depth_topic, the transform from TF)"),
    ("camera_info_topic", "/camera/color/camera_info", "camera_info of the colour image"),
    ("image_transport", "raw", "raw | compressed: subscribe <image_topic>/compressed and "
     "<depth_topic>/compressedDepth instead (a camera streaming over a network)"),
    ("path_topic", "/plan", "nav_msgs/Path to predict views along (Nav2 publishes /plan)"),
    ("pose_topic", "/odom", "pose or odometry topic when pose_source is pose or odometry"),
    ("pose_source", "tf", "tf | pose | odometry"),
    ("world_frame", "map", "fixed frame of the memory (REP-105 map or odom)"),
    ("base_frame", "base_link", "robot base frame (planned paths are poses of it)"),
    ("camera_frame_convention", "auto", "auto | optical | body (Gazebo link frames are body)"),
    ("provider", "auto", "ONNX Runtime provider: auto | cuda | cpu"),
    ("use_sim_time", "false", "true for Gazebo or `ros2 bag play --clock`"),
    ("use_monitor", "true", "run the consistency monitor (moving-object flags)"),
    ("world_model_config", PathJoinSubstitution([FindPackageShare("mirage_ros"), "config", "world_model.yaml"]),
     "parameter file of world_model"),
    ("monitor_config", PathJoinSubstitution([FindPackageShare("mirage_ros"), "config", "consistency_monitor.yaml"]),
     "parameter file of consistency_monitor"),
    ("log_level", "info", "log level of both nodes"),
]


def generate_launch_description():
    arg = LaunchConfiguration
    camera = [("image", arg("image_topic")), ("depth", arg("depth_topic"))]
    world_model = Node(
        package="mirage_ros", executable="world_model", name="world_model", namespace=arg("namespace"),
        output="screen", emulate_tty=True, arguments=["--ros-args", "--log-level", arg("log_level")],
        parameters=[arg("world_model_config"), {
            "use_sim_time": arg("use_sim_time"),
            "world_frame": arg("world_frame"),
            "base_frame": arg("base_frame"),
            "camera_frame_convention": arg("camera_frame_convention"),
            "pose_source": arg("pose_source"),
            "provider": arg("provider"),
            "use_moving_mask": arg("use_monitor"),
            "image_transport": arg("image_transport"),
            "depth_registration": arg("depth_registration"),
        }],
        remappings=camera + [("camera_info", arg("camera_info_topic")), ("path", arg("path_topic")),
                             ("pose", arg("pose_topic"))],
    )
    monitor = Node(
        package="mirage_ros", executable="consistency_monitor", name="consistency_monitor",
        namespace=arg("namespace"), output="screen", emulate_tty=True,
        arguments=["--ros-args", "--log-level", arg("log_level")],
        parameters=[arg("monitor_config"), {"use_sim_time": arg("use_sim_time"),
                                            "image_transport": arg("image_transport"),
                                            "depth_registration": arg("depth_registration"),
                                            "camera_frame_convention": arg("camera_frame_convention")}],
        remappings=camera, condition=IfCondition(arg("use_monitor")),
    )
    # Fast DDS drops camera-sized best-effort messages with its default 512 KiB shared memory
    # segment: a larger one for these processes (unless a profile is set; see mirage_ros/ros/dds.py)
    dds = [SetEnvironmentVariable(name, value) for name, value in large_message_env().items()]
    return LaunchDescription(
        [DeclareLaunchArgument(name, default_value=default, description=text) for name, default, text in ARGUMENTS]
        + dds + [world_model, monitor]
    )
