"""ROS 2 side of mirage_ros: nodes, message conversions, synchronisation, camera poses.

Everything here is thin: nodes hold parameters, topics and timing, and call pure functions
(``convert``, ``sync``, ``pose_source``, ``prediction_poses``) and the ROS-free engine.
"""
