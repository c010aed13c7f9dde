"""Baseline: plain frame differencing after ego-motion compensation (no memory).

Each current pixel is re-projected into the previous camera with its depth and the relative pose
(``warp.reproject``), the previous grey image is sampled there, and pixels whose grey level differs
by more than a threshold are flagged.
It is what the memory-based detector must beat on the same sequences.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from mirage_ros.dynamics.cues import to_grey
from mirage_ros.dynamics.warp import reproject
from mirage_ros.errors import InvalidInput
from mirage_ros.geometry import Intrinsics, check_pose


class FrameDifferencing:
    """Ego-motion-compensated frame differencing.

    Args:
        threshold: absolute grey difference in ``[0, 1]`` that flags a pixel.
        opening: iterations of a 3x3 binary opening removing speckle (0 = none).
    """

    def __init__(self, threshold: float = 0.1, opening: int = 0):
        if not 0 < threshold < 1:
            raise InvalidInput("threshold", f"must be in (0, 1), got {threshold}")
        self.threshold = threshold
        self.opening = opening
        self._previous: tuple[np.ndarray, Intrinsics, np.ndarray] | None = None

    def difference(
        self, rgb: np.ndarray, depth: np.ndarray, K: Intrinsics, T_world_cam: np.ndarray
    ) -> np.ndarray:
        """Absolute grey difference to the previous call's frame after ego-motion warp.

        Args:
            rgb: ``(H, W, 3) uint8``; depth: ``(H, W)`` metres (0/NaN = none); ``K.shape == (H, W)``.
            T_world_cam: ``(4, 4)`` camera pose (optical frame).

        Returns:
            ``(H, W) float32`` in ``[0, 1]``; 0 on the first frame, where the current depth has no
            reading and where the pixel was outside the previous view.
        """
        T_world_cam = check_pose(T_world_cam)
        grey = to_grey(rgb)
        if np.asarray(depth).shape != K.shape:
            raise InvalidInput("depth", f"must have shape {K.shape}, got {np.asarray(depth).shape}")
        previous, self._previous = self._previous, (grey, K, T_world_cam)
        if previous is None:
            return np.zeros(K.shape, np.float32)
        prev_grey, prev_K, prev_T = previous
        seen = reproject(depth, K, T_world_cam, prev_K, prev_T)
        return np.where(seen.valid, np.abs(grey - seen.sample(prev_grey)), 0.0).astype(np.float32)

    def threshold_mask(self, difference: np.ndarray, threshold: float | None = None) -> np.ndarray:
        """``(H, W) bool``: ``difference > threshold`` (default ``self.threshold``), opened."""
        changed = difference > (self.threshold if threshold is None else threshold)
        if self.opening:
            changed = ndimage.binary_opening(changed, iterations=self.opening)
        return changed

    def update(
        self, rgb: np.ndarray, depth: np.ndarray, K: Intrinsics, T_world_cam: np.ndarray
    ) -> np.ndarray:
        """Flag pixels that changed since the previous call: ``(H, W) bool`` (see :meth:`difference`)."""
        return self.threshold_mask(self.difference(rgb, depth, K, T_world_cam))
