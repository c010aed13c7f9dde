"""Camera poses to predict views for: extrapolated recent motion, and samples of a planned path.

Pure numpy maths, no ROS (kept next to the node that uses it). World frame is REP-103 (z up):
"yaw" is rotation about the world z axis, whatever the camera frame convention.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.spatial.transform import Rotation

from mirage_ros.errors import InvalidInput


def extrapolate(stamps: np.ndarray, poses: np.ndarray, horizon: float, window: float = 0.5) -> np.ndarray:
    """Pose ``horizon`` seconds after the newest one, at constant speed and yaw rate.

    The linear velocity and the yaw rate are averaged over the poses of the last ``window``
    seconds. The horizontal velocity turns with the yaw (a circular arc, as a robot driving and
    turning at a constant rate does); the vertical speed is kept; roll and pitch are kept.

    Args:
        stamps: ``(N,)`` seconds, increasing.
        poses: ``(N, 4, 4)`` ``T_world_cam`` at those stamps.
        horizon: seconds ahead of ``stamps[-1]`` (>= 0).
        window: seconds of history the motion is estimated from (> 0).

    Returns:
        ``(4, 4) float64`` ``T_world_cam`` at ``stamps[-1] + horizon`` (the newest pose when
        there is a single pose or no time span).

    Raises:
        InvalidInput: empty or mismatched inputs, negative horizon, non-positive window.
    """
    stamps = np.asarray(stamps, dtype=np.float64)
    poses = np.asarray(poses, dtype=np.float64)
    if stamps.ndim != 1 or len(stamps) == 0 or poses.shape != (len(stamps), 4, 4):
        raise InvalidInput("poses", f"need N >= 1 stamps (N,) and poses (N, 4, 4), got {stamps.shape}, {poses.shape}")
    if not horizon >= 0.0:
        raise InvalidInput("horizon", f"must be >= 0 seconds, got {horizon}")
    if not window > 0.0:
        raise InvalidInput("window", f"must be > 0 seconds, got {window}")
    first = int(np.searchsorted(stamps, stamps[-1] - window, side="left"))
    first = min(first, len(stamps) - 2) if len(stamps) >= 2 else 0
    dt = stamps[-1] - stamps[first]
    newest = poses[-1].copy()
    if dt <= 1e-6:
        return newest
    relative = Rotation.from_matrix(poses[-1, :3, :3] @ poses[first, :3, :3].T)
    yaw_rate = relative.as_rotvec()[2] / dt
    velocity = (poses[-1, :3, 3] - poses[first, :3, 3]) / dt
    # On an arc, the chord velocity points along the mid-window heading and is shorter than the
    # arc by sin(a)/a: turn it to the newest heading and restore the speed along the arc.
    half_turn = yaw_rate * dt / 2.0
    chord_ratio = math.sin(half_turn) / half_turn if abs(half_turn) > 1e-9 else 1.0
    velocity[:2] = _rot2(half_turn) @ velocity[:2] / chord_ratio
    out = newest
    out[:3, :3] = Rotation.from_rotvec([0.0, 0.0, yaw_rate * horizon]).as_matrix() @ newest[:3, :3]
    out[:2, 3] += _arc_integral(yaw_rate, horizon) @ velocity[:2]
    out[2, 3] += velocity[2] * horizon
    return out


def _rot2(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, -s], [s, c]])


def _arc_integral(rate: float, horizon: float) -> np.ndarray:
    """``(2, 2)`` integral of the planar rotation ``R(rate * tau)`` over ``tau`` in ``[0, horizon]``."""
    angle = rate * horizon
    if abs(angle) < 1e-9:
        return np.eye(2) * horizon
    s, c = math.sin(angle) / rate, (1.0 - math.cos(angle)) / rate
    return np.array([[s, -c], [c, s]])


def path_poses(positions: np.ndarray, quats_wxyz: np.ndarray, indices: np.ndarray | None = None) -> np.ndarray:
    """``(M, 4, 4)`` poses of a planned path; missing orientations follow the path's direction.

    Planners often leave orientations unset (zero quaternion) except at the goal: those poses get
    the yaw of the segment to the next pose (the previous one for the last pose), roll = pitch = 0.

    Args:
        positions: ``(N, 3)`` metres, finite (:func:`check_path`).
        quats_wxyz: ``(N, 4)`` quaternions ``(w, x, y, z)``; zero / with a non-finite part = unset.
        indices: ``(M,)`` the poses wanted (:func:`sample_path`); None: all N.

    Raises:
        InvalidInput: ``"path"`` with mismatched shapes or non-finite positions.
    """
    positions = np.asarray(positions, dtype=np.float64)
    quats = np.asarray(quats_wxyz, dtype=np.float64)
    n = len(positions)
    if positions.shape != (n, 3) or quats.shape != (n, 4):
        raise InvalidInput("path", f"positions (N, 3) and quaternions (N, 4) expected, got {positions.shape}, {quats.shape}")
    if not np.all(np.isfinite(positions)):
        raise InvalidInput("path", "positions must be finite")
    wanted = np.arange(n) if indices is None else np.asarray(indices, dtype=np.int64)
    poses = np.tile(np.eye(4), (len(wanted), 1, 1))
    poses[:, :3, 3] = positions[wanted]
    q = quats[wanted]
    with np.errstate(over="ignore", invalid="ignore"):
        norms = np.linalg.norm(q, axis=1)
    given = np.isfinite(norms) & (norms > 1e-6)
    if given.any():
        unit = q[given] / norms[given, None]
        poses[given, :3, :3] = Rotation.from_quat(unit[:, [1, 2, 3, 0]]).as_matrix()
    unset = wanted[~given]
    if len(unset):  # heading of the segment to the next pose (from the previous one at the end)
        last = unset + 1 >= n
        step = positions[np.where(last, unset, unset + 1)] - positions[np.where(last, unset - 1, unset)]
        yaw = np.arctan2(step[:, 1], step[:, 0])  # a single pose: a zero step, yaw 0
        poses[~given, :3, :3] = Rotation.from_euler("z", yaw[:, None]).as_matrix()
    return poses


def check_path(positions: np.ndarray, max_coordinate: float) -> np.ndarray:
    """``(N, 3) float64`` path positions, checked to be finite and within ``max_coordinate``
    metres of the world origin on every axis (before any work depends on the path's length).

    Raises:
        InvalidInput: ``"path"`` naming the first bad pose.
    """
    positions = np.asarray(positions, dtype=np.float64).reshape(-1, 3)
    bad = ~np.isfinite(positions).all(axis=1)
    if bad.any():
        raise InvalidInput("path", f"pose {int(np.argmax(bad))} of {len(positions)} has a non-finite position")
    far = np.abs(positions).max(axis=1, initial=0.0) > max_coordinate
    if far.any():
        i = int(np.argmax(far))
        raise InvalidInput("path", f"pose {i} at {positions[i].tolist()} m is beyond max_coordinate={max_coordinate:g} m")
    return positions


def sample_path(positions: np.ndarray, spacing: float, max_count: int) -> np.ndarray:
    """Indices of the path poses to predict views for, about ``spacing`` metres apart.

    The first pose is always taken; then the first pose at or beyond each further multiple of
    ``spacing`` along the path's length (every pose when ``spacing`` is 0); at most ``max_count``.
    Work and memory are O(N), however long the path is in metres.

    Args:
        positions: ``(N, 3)`` metres, N >= 0, finite.
        spacing: metres along the path (>= 0).
        max_count: largest number of indices (>= 1).

    Returns:
        ``(M,) int64`` increasing indices into the path, ``M <= max_count``.
    """
    positions = np.asarray(positions, dtype=np.float64).reshape(-1, 3)
    if not spacing >= 0.0:
        raise InvalidInput("path_spacing", f"must be >= 0 metres, got {spacing}")
    if max_count < 1:
        raise InvalidInput("path_max_views", f"must be >= 1, got {max_count}")
    if not np.isfinite(positions).all():
        raise InvalidInput("path", "positions must be finite")
    if len(positions) == 0:
        return np.zeros(0, dtype=np.int64)
    if spacing == 0.0:
        return np.arange(min(len(positions), max_count), dtype=np.int64)
    with np.errstate(over="ignore"):  # a length past float range is inf: one more view at most
        arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(positions, axis=0), axis=1))])
    # pose i is the first at or beyond a multiple of spacing when one lies in (arc[i-1], arc[i]]
    mark = np.floor((arc + 1e-9) / spacing)
    taken = np.flatnonzero(np.concatenate([[True], mark[1:] > mark[:-1]]))
    return taken[:max_count].astype(np.int64)
