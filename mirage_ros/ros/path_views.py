"""Views along a planned ``nav_msgs/Path``: which of its poses, where the camera is at each, and
for which stamp. Message in, :class:`~mirage_ros.messages.outputs.ViewRequest` out; no node state."""

from __future__ import annotations

import numpy as np

from mirage_ros.messages import convert
from mirage_ros.messages.outputs import ViewRequest
from mirage_ros.ros.prediction_poses import check_path, path_poses, sample_path


def path_view_requests(msg, T_world_path: np.ndarray, T_base_cam: np.ndarray, frame_stamp: float, spacing: float,
                       max_views: int, max_coordinate: float, source: int) -> list[ViewRequest]:
    """One request per sampled pose of a Path (:func:`sample_path`), checked first (:func:`check_path`).

    Args:
        msg: ``nav_msgs/Path`` of robot base poses in its header's frame.
        T_world_path: ``(4, 4)`` the path's frame in the world frame.
        T_base_cam: ``(4, 4)`` the optical camera on the robot base.
        frame_stamp: seconds of the newest integrated frame (a view's horizon is counted from it).
        spacing, max_views: metres between views, most views.
        max_coordinate: metres from the path frame's origin a pose may lie.
        source: ``PredictedView.SOURCE_PATH``.

    Returns:
        Requests with the camera pose ``T_world_path @ T_path_base @ T_base_cam`` and the pose's
        stamp (the path's where the pose has none), ``path_index`` into ``msg.poses``.

    Raises:
        InvalidInput: ``"path"`` naming the first non-finite or far pose.
    """
    positions, quats = convert.path_arrays(msg)
    positions = check_path(positions, max_coordinate)
    picks = sample_path(positions, spacing, max_views)
    requests = []
    for i, T_world_base in zip(picks, T_world_path @ path_poses(positions, quats, picks)):
        stamp = msg.poses[i].header.stamp
        if stamp.sec == 0 and stamp.nanosec == 0:
            stamp = msg.header.stamp
        requests.append(ViewRequest(T_world_base @ T_base_cam, stamp, convert.time_to_sec(stamp) - frame_stamp, source,
                                    int(i)))
    return requests
