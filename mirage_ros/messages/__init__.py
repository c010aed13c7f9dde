"""Message adapters: ROS messages <-> the package's numpy conventions, with no rclpy.

Nodes (``mirage_ros.ros``), evaluation (bag replay) and the benches share them: image, depth and
CameraInfo conversion (``convert``), image_transport's compressed images (``compressed``), camera
frame conventions (``frames``) and the nodes' output messages (``outputs``).
"""
