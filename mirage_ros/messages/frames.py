"""Camera frame conventions: optical frames (REP-103 cameras) versus body/link frames (Gazebo).

Images should be stamped with an **optical** frame (x right, y down, z forward). Gazebo's camera
sensors bridged by ``ros_gz_bridge``, and many URDFs, stamp them with the camera *link* frame
instead (x forward, y left, z up). Feeding such a pose as if it were optical makes the camera look
at the floor or the sky. The world model therefore resolves a convention per frame:

- ``"optical"``: the frame is already optical;
- ``"body"``: apply the fixed rotation :data:`mirage_ros.geometry.T_LINK_OPTICAL`;
- ``"auto"``: ``body`` unless the frame name contains ``optical`` (``camera_color_optical_frame``,
  ``camera_depth_optical_frame``, ``*_optical``): the ROS naming habit for optical frames.
"""

from __future__ import annotations

import numpy as np

from mirage_ros.errors import InvalidInput
from mirage_ros.geometry import T_LINK_OPTICAL, invert_pose

CONVENTIONS = ("auto", "optical", "body")


def resolve_convention(setting: str, frame_id: str) -> str:
    """``"optical"`` or ``"body"`` for ``frame_id`` under the parameter ``setting``.

    Raises:
        InvalidInput: ``"camera_frame_convention"`` not one of :data:`CONVENTIONS`.
    """
    if setting not in CONVENTIONS:
        raise InvalidInput("camera_frame_convention", f"must be one of {CONVENTIONS}, got {setting!r}")
    if setting != "auto":
        return setting
    return "optical" if "optical" in frame_id.lower() else "body"


def to_optical(T_world_frame: np.ndarray, convention: str) -> np.ndarray:
    """``T_world_cam`` (optical) from the pose ``(4, 4)`` of the image's frame.

    Args:
        T_world_frame: pose of the frame named in the image header.
        convention: ``"optical"`` or ``"body"`` (see :func:`resolve_convention`).
    """
    if convention == "optical":
        return np.asarray(T_world_frame, dtype=np.float64)
    if convention == "body":
        return np.asarray(T_world_frame, dtype=np.float64) @ T_LINK_OPTICAL
    raise InvalidInput("camera_frame_convention", f"must be 'optical' or 'body', got {convention!r}")


def optical_between(T_a_b: np.ndarray, convention_a: str, convention_b: str) -> np.ndarray:
    """``T_aopt_bopt (4, 4)``: the optical frame of camera ``b`` in the optical frame of camera
    ``a``, from ``T_a_b``, the TF transform between the frames their images are stamped with.

    Args:
        convention_a, convention_b: ``"optical"`` or ``"body"`` for each frame.
    """
    return invert_pose(to_optical(np.eye(4), convention_a)) @ to_optical(T_a_b, convention_b)
