"""Output messages of the nodes, built from numpy results (no node state here).

- :func:`predicted_view`: ``mirage_ros_msgs/PredictedView`` (+ its plain Image / CameraInfo parts);
- :func:`point_cloud`: ``sensor_msgs/PointCloud2`` with ``x y z rgb`` (RViz's packed colour);
- :func:`diagnostic_array`: one ``diagnostic_msgs/DiagnosticStatus`` of key/values;
- :func:`region_markers`, :func:`overlay`: what the consistency monitor shows in RViz.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mirage_ros.geometry import Intrinsics, valid_depth
from mirage_ros.messages.convert import array_to_image, byte_array, camera_info_from_intrinsics, matrix_to_pose


@dataclass(frozen=True)
class ViewRequest:
    """Where and why a view is predicted.

    Attributes:
        T_world_cam: ``(4, 4)`` optical camera pose in the world frame.
        stamp: the time the view is for (``builtin_interfaces/Time``).
        horizon: seconds between the live frame and ``stamp``.
        source: ``PredictedView.SOURCE_*``.
        path_index: index into the planned path (path views only).
    """

    T_world_cam: np.ndarray
    stamp: object
    horizon: float
    source: int
    path_index: int = 0


def predicted_view(request: ViewRequest, rgb: np.ndarray, depth: np.ndarray, confidence: np.ndarray,
                   K: Intrinsics, frame_id: str, world_frame: str):
    """``mirage_ros_msgs/PredictedView`` of one prediction.

    Args:
        request: pose, stamp and origin of the view.
        rgb: ``(H, W, 3) uint8`` predicted colour.
        depth: ``(H, W) float32`` metres, 0 / NaN = unknown (published as NaN, REP 118).
        confidence: ``(H, W) float32`` in ``[0, 1]``: 1 where memory covers the pixel, 0 where
            the renderer filled a hole.
        K: intrinsics of the view (``(H, W) == K.shape``).
        frame_id: optical frame name of the camera.
        world_frame: fixed frame of ``camera_pose``.
    """
    from mirage_ros_msgs.msg import PredictedView

    msg = PredictedView()
    msg.header.stamp = request.stamp
    msg.header.frame_id = frame_id
    msg.source = request.source
    msg.horizon = float(request.horizon)
    msg.path_index = int(request.path_index)
    msg.world_frame_id = world_frame
    msg.camera_pose = matrix_to_pose(request.T_world_cam)
    msg.camera_info = camera_info_from_intrinsics(K, request.stamp, frame_id)
    msg.image = array_to_image(rgb, "rgb8", request.stamp, frame_id)
    clean_depth = np.where(valid_depth(depth), depth, np.nan).astype(np.float32)  # REP 118: NaN = no value
    msg.depth = array_to_image(clean_depth, "32FC1", request.stamp, frame_id)
    msg.confidence = array_to_image(np.asarray(confidence, np.float32), "32FC1", request.stamp, frame_id)
    msg.coverage = float(np.mean(confidence > 0.5)) if confidence.size else 0.0
    return msg


def point_cloud(points: np.ndarray, colors: np.ndarray, stamp, frame_id: str):
    """``sensor_msgs/PointCloud2`` of ``(N, 3)`` points (metres) with ``(N, 3) uint8`` RGB colours.

    Fields ``x y z`` float32 and ``rgb`` (float32 holding ``0x00RRGGBB``, what RViz decodes).
    """
    from sensor_msgs.msg import PointCloud2, PointField

    points = np.asarray(points, dtype=np.float32).reshape(-1, 3)
    colors = np.asarray(colors, dtype=np.uint8).reshape(-1, 3)
    packed = (colors[:, 0].astype(np.uint32) << 16) | (colors[:, 1].astype(np.uint32) << 8) | colors[:, 2]
    record = np.empty(len(points), dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("rgb", "<u4")])
    record["x"], record["y"], record["z"], record["rgb"] = points[:, 0], points[:, 1], points[:, 2], packed
    msg = PointCloud2()
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.height, msg.width = 1, len(points)
    msg.fields = [PointField(name=n, offset=4 * i, datatype=PointField.FLOAT32, count=1)
                  for i, n in enumerate(("x", "y", "z", "rgb"))]
    msg.is_bigendian = False
    msg.point_step, msg.row_step = 16, 16 * len(points)
    msg.is_dense = True
    msg.data = byte_array(record.tobytes())
    return msg


def diagnostic_array(stamp, name: str, hardware_id: str, level: int, message: str, values: dict):
    """``diagnostic_msgs/DiagnosticArray`` with one status of ``values`` (rendered as strings).

    ``level``: ``DiagnosticStatus.OK`` / ``WARN`` / ``ERROR`` (bytes 0/1/2).
    """
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

    status = DiagnosticStatus(level=bytes([level]), name=name, message=message, hardware_id=hardware_id)
    status.values = [KeyValue(key=str(k), value=_fmt(v)) for k, v in values.items()]
    array = DiagnosticArray()
    array.header.stamp = stamp
    array.status = [status]
    return array


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


#: Region colours (RGB), cycled by track id.
PALETTE = np.array([[230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200], [245, 130, 48],
                    [145, 30, 180], [70, 240, 240], [240, 50, 230]], np.uint8)


def overlay(rgb: np.ndarray, labels: np.ndarray, track_ids: dict[int, int], alpha: float = 0.5) -> np.ndarray:
    """Live image with moving regions tinted by track colour: ``(H, W, 3) uint8``.

    Args:
        rgb: ``(H, W, 3) uint8``.
        labels: ``(H, W) uint8`` region labels (0 = static).
        track_ids: mask label -> track id (picks the colour).
    """
    out = rgb.astype(np.float32)
    for label, track in track_ids.items():
        sel = labels == label
        out[sel] = (1.0 - alpha) * out[sel] + alpha * PALETTE[track % len(PALETTE)]
    return out.clip(0, 255).astype(np.uint8)


def region_markers(regions, stamp, world_frame: str, lifetime_s: float = 0.5):
    """``visualization_msgs/MarkerArray``: a sphere and a velocity arrow per moving region.

    ``regions``: ``mirage_ros_msgs/MovingRegion`` list (centroids in ``world_frame``). A
    ``DELETEALL`` marker first clears regions that are gone.
    """
    from builtin_interfaces.msg import Duration
    from geometry_msgs.msg import Point
    from visualization_msgs.msg import Marker, MarkerArray

    lifetime = Duration(sec=int(lifetime_s), nanosec=int((lifetime_s % 1.0) * 1e9))
    markers = [Marker(action=Marker.DELETEALL)]
    for region in regions:
        r, g, b = (PALETTE[region.id % len(PALETTE)] / 255.0).tolist()
        sphere = Marker(ns="moving", id=2 * region.id, type=Marker.SPHERE, action=Marker.ADD, lifetime=lifetime)
        sphere.header.stamp, sphere.header.frame_id = stamp, world_frame
        sphere.pose.position = region.centroid
        sphere.pose.orientation.w = 1.0
        sphere.scale.x = sphere.scale.y = sphere.scale.z = 0.3
        sphere.color.r, sphere.color.g, sphere.color.b, sphere.color.a = r, g, b, 0.8
        markers.append(sphere)
        if region.velocity_valid:
            arrow = Marker(ns="velocity", id=2 * region.id + 1, type=Marker.ARROW, action=Marker.ADD,
                           lifetime=lifetime)
            arrow.header = sphere.header
            arrow.pose.orientation.w = 1.0
            start = region.centroid
            end = Point(x=start.x + region.velocity.x, y=start.y + region.velocity.y, z=start.z + region.velocity.z)
            arrow.points = [start, end]
            arrow.scale.x, arrow.scale.y, arrow.scale.z = 0.05, 0.1, 0.1
            arrow.color = sphere.color
            markers.append(arrow)
    return MarkerArray(markers=markers)
