"""mirage_ros_msgs over DDS: a publisher in another process, a subscriber in this one.

Every field of every message is set to a distinct value (float32 fields to values exact in
float32) and the received message must equal the sent one, so a field lost or mistyped in a
.msg file, a stale build or a type-support mismatch between processes fails here.
Run as a script (``python test_messages.py``), this module is that publisher.
"""

from __future__ import annotations

import sys
from pathlib import Path

TOPICS = {"PredictedView": "/mirage_test/predicted_view",
          "MovingRegions": "/mirage_test/moving_regions"}


def _image(height: int, width: int, encoding: str, step: int, seed: int):
    from sensor_msgs.msg import Image
    size = height * step
    return Image(height=height, width=width, encoding=encoding, is_bigendian=0, step=step,
                 data=bytes((seed + 7 * i) % 256 for i in range(size)))


def sample_messages() -> dict:
    """One fully populated message of each type, keyed like ``TOPICS``. Deterministic."""
    from builtin_interfaces.msg import Time
    from geometry_msgs.msg import Point, Pose, Quaternion, Vector3
    from mirage_ros_msgs.msg import MovingRegion, MovingRegions, PredictedView
    from sensor_msgs.msg import CameraInfo, RegionOfInterest
    from std_msgs.msg import Header

    header = Header(stamp=Time(sec=1700000123, nanosec=450000000), frame_id="camera_optical_frame")
    info = CameraInfo(header=header, height=6, width=8, distortion_model="plumb_bob",
                      d=[0.0, 0.0, 0.0, 0.0, 0.0],
                      k=[4.0, 0.0, 3.5, 0.0, 4.0, 2.5, 0.0, 0.0, 1.0],
                      r=[1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
                      p=[4.0, 0.0, 3.5, 0.0, 0.0, 4.0, 2.5, 0.0, 0.0, 0.0, 1.0, 0.0])
    view = PredictedView(
        header=header, source=PredictedView.SOURCE_PATH, horizon=1.25, path_index=7,
        world_frame_id="map",
        camera_pose=Pose(position=Point(x=1.5, y=-2.0, z=0.75),
                         orientation=Quaternion(x=0.5, y=-0.5, z=0.5, w=-0.5)),
        camera_info=info,
        image=_image(6, 8, "rgb8", 24, seed=1),
        depth=_image(6, 8, "32FC1", 32, seed=2),
        confidence=_image(6, 8, "32FC1", 32, seed=3),
        coverage=0.625)
    regions = [
        MovingRegion(id=41, state=MovingRegion.STATE_MOVING, score=0.875,
                     box=RegionOfInterest(x_offset=1, y_offset=2, width=3, height=4, do_rectify=False),
                     mask_label=1, pixel_count=9, centroid=Point(x=2.0, y=0.5, z=1.25),
                     velocity=Vector3(x=0.5, y=-0.25, z=0.0), velocity_valid=True),
        MovingRegion(id=42, state=MovingRegion.STATE_NEW_STATIC, score=0.5,
                     box=RegionOfInterest(x_offset=5, y_offset=0, width=2, height=2),
                     mask_label=2, pixel_count=4, centroid=Point(x=-1.0, y=3.0, z=0.5),
                     velocity_valid=False),
    ]
    moving = MovingRegions(header=header, world_frame_id="odom",
                           mask=_image(6, 8, "mono8", 8, seed=4), regions=regions)
    return {"PredictedView": view, "MovingRegions": moving}


def publish_forever() -> None:
    """Publish ``sample_messages()`` on ``TOPICS`` every 0.1 s until interrupted."""
    import rclpy
    from rclpy.executors import ExternalShutdownException

    rclpy.init()
    node = rclpy.create_node("mirage_msgs_test_publisher")
    messages = sample_messages()
    publishers = {name: node.create_publisher(type(msg), TOPICS[name], 10)
                  for name, msg in messages.items()}

    def tick():
        for name, msg in messages.items():
            publishers[name].publish(msg)

    node.create_timer(0.1, tick)
    print("PUBLISHER READY", flush=True)
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass


def test_constants_match_the_documented_values(interfaces):
    from mirage_ros_msgs.msg import MovingRegion, PredictedView
    assert (PredictedView.SOURCE_HORIZON, PredictedView.SOURCE_PATH, PredictedView.SOURCE_LIVE) == (0, 1, 2)
    assert (MovingRegion.STATE_UNKNOWN, MovingRegion.STATE_MOVING, MovingRegion.STATE_NEW_STATIC) == (0, 1, 2)


def test_field_types_are_the_agreed_ones(interfaces):
    from mirage_ros_msgs.msg import MovingRegion, MovingRegions, PredictedView
    assert PredictedView.get_fields_and_field_types() == {
        "header": "std_msgs/Header", "source": "uint8", "horizon": "double",
        "path_index": "uint32", "world_frame_id": "string", "camera_pose": "geometry_msgs/Pose",
        "camera_info": "sensor_msgs/CameraInfo", "image": "sensor_msgs/Image",
        "depth": "sensor_msgs/Image", "confidence": "sensor_msgs/Image", "coverage": "float"}
    assert MovingRegion.get_fields_and_field_types() == {
        "id": "uint32", "state": "uint8", "score": "float", "box": "sensor_msgs/RegionOfInterest",
        "mask_label": "uint8", "pixel_count": "uint32", "centroid": "geometry_msgs/Point",
        "velocity": "geometry_msgs/Vector3", "velocity_valid": "boolean"}
    assert MovingRegions.get_fields_and_field_types() == {
        "header": "std_msgs/Header", "world_frame_id": "string", "mask": "sensor_msgs/Image",
        "regions": "sequence<mirage_ros_msgs/MovingRegion>"}


def test_messages_cross_processes_intact(interfaces, ros_process):
    import rclpy
    from rclpy.executors import SingleThreadedExecutor

    publisher = ros_process(argv=[sys.executable, "-u", str(Path(__file__).resolve())])
    expected = sample_messages()
    received: dict = {}
    context = rclpy.Context()  # own context: independent of rclpy use elsewhere in the session
    rclpy.init(context=context)
    try:
        node = rclpy.create_node("mirage_msgs_test_subscriber", context=context)
        for name, msg in expected.items():
            node.create_subscription(type(msg), TOPICS[name],
                                     lambda m, name=name: received.setdefault(name, m), 10)
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        publisher.wait_for_output("PUBLISHER READY", timeout=30)
        for _ in range(300):  # at most 30 s: discovery on a loaded 2-core machine
            if len(received) == len(expected) or not publisher.running():
                break
            executor.spin_once(timeout_sec=0.1)
        node.destroy_node()
    finally:
        rclpy.shutdown(context=context)

    assert received.keys() == expected.keys(), (
        f"received only {sorted(received)}; publisher output:\n{publisher.output()}")
    view, moving = received["PredictedView"], received["MovingRegions"]
    assert view.source == view.SOURCE_PATH and view.path_index == 7 and view.horizon == 1.25
    assert view.camera_pose.orientation.w == -0.5 and view.coverage == 0.625
    assert view.depth.encoding == "32FC1" and bytes(view.depth.data) == bytes(expected["PredictedView"].depth.data)
    assert [r.id for r in moving.regions] == [41, 42]
    assert moving.regions[0].velocity_valid and not moving.regions[1].velocity_valid
    assert moving.regions[1].state == moving.regions[1].STATE_NEW_STATIC
    for name in expected:  # every other field as well
        assert received[name] == expected[name], name


if __name__ == "__main__":
    publish_forever()
