"""world_model + consistency_monitor on simulated time, for a recorded bag.

    ros2 launch mirage_ros replay.launch.py image_topic:=... depth_topic:=... camera_info_topic:=...
    ros2 bag play my_bag --clock          # in a second terminal; --loop is fine: a jump back in
                                          # time resets the memory with a warning

Same arguments as mirage.launch.py, with use_sim_time forced to true (the nodes follow the bag's
/clock; TF lookups happen at the recorded stamps).
"""

from launch import LaunchDescription
from launch.actions import IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import PathJoinSubstitution
from launch_ros.substitutions import FindPackageShare


def generate_launch_description():
    mirage = PathJoinSubstitution([FindPackageShare("mirage_ros"), "launch", "mirage.launch.py"])
    return LaunchDescription([
        IncludeLaunchDescription(PythonLaunchDescriptionSource(mirage),
                                 launch_arguments={"use_sim_time": "true"}.items()),
    ])
