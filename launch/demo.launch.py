"""The demo as a launch file: simulated RGB-D camera + world_model + consistency_monitor (+ RViz).

    ros2 launch mirage_ros demo.launch.py                 # add rviz:=true to watch
    ros2 launch mirage_ros demo.launch.py scene:=office actors:=8 provider:=cuda

`mirage-ros demo` (`make demo`) runs the same three nodes without ros2 launch and writes a
contact sheet; this file is for watching live. Arguments of mirage.launch.py are accepted too.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription, SetEnvironmentVariable
from launch.conditions import IfCondition
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from mirage_ros.ros.dds import large_message_env

ARGUMENTS = [
    ("rviz", "false", "start RViz with config/mirage.rviz"),
    ("scene", "corridor", "simulated scene: corridor | office | warehouse"),
    ("seed", "0", "scene seed"),
    ("actors", "5", "people walking (0 = static scene)"),
    ("width", "320", "image width"),
    ("height", "240", "image height"),
    ("rate", "10.0", "camera frames per second"),
    ("noise", "none", "sensor model: none | kinect"),
]


def generate_launch_description():
    arg = LaunchConfiguration
    share = FindPackageShare("mirage_ros")
    sim = Node(
        package="mirage_ros", executable="sim_camera", name="sim_camera", output="screen", emulate_tty=True,
        parameters=[{name: arg(name) for name in ("scene", "seed", "actors", "width", "height", "rate", "noise")}],
    )
    nodes = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(PathJoinSubstitution([share, "launch", "mirage.launch.py"])),
        launch_arguments={
            "image_topic": "/camera/color/image_raw",
            "depth_topic": "/camera/depth/image_raw",
            "camera_info_topic": "/camera/color/camera_info",
            "world_frame": "map",
        }.items(),
    )
    rviz = Node(package="rviz2", executable="rviz2", name="rviz", output="log",
                arguments=["-d", PathJoinSubstitution([share, "config", "mirage.rviz"])],
                condition=IfCondition(arg("rviz")))
    return LaunchDescription(
        [DeclareLaunchArgument(name, default_value=default, description=text) for name, default, text in ARGUMENTS]
        + [SetEnvironmentVariable(name, value) for name, value in large_message_env().items()]
        + [sim, nodes, rviz]
    )
