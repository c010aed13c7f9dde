"""Connected disagreement regions ("blobs") from a score map: spatial hysteresis and 3D centroids.

Pure functions; a blob is one frame's observation, a track (``tracking.py``) links blobs over time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from mirage_ros.geometry import Intrinsics, transform_points, valid_depth


@dataclass(frozen=True)
class Blob:
    """One connected region of a single frame, at working resolution.

    Attributes:
        label: its value in the label image returned with it (1..n).
        slices: ``(rows, cols)`` slices of its bounding box.
        pixel_count: number of pixels.
        score: mean disagreement score over its pixels, in ``[0, 1]``.
        centroid_world: ``(3,) float64`` median of its live 3D points in the world frame, or
            ``None`` when none of its pixels has a depth reading.
    """

    label: int
    slices: tuple[slice, slice]
    pixel_count: int
    score: float
    centroid_world: np.ndarray | None


def hysteresis_labels(
    score: np.ndarray, low: float, high: float, min_pixels: int
) -> tuple[np.ndarray, int]:
    """Spatial hysteresis: components of ``score >= low`` holding a pixel ``>= high`` (Canny-style).

    Weak evidence next to strong evidence (a person's legs near the floor, a shirt of wall colour)
    joins the region; weak evidence alone is dropped. A 3x3 opening first removes one-pixel speckle
    (depth noise, misregistered edges).

    Args:
        score: ``(H, W) float32`` in ``[0, 1]``.
        low, high: thresholds, ``0 < low <= high``.
        min_pixels: components smaller than this are dropped.

    Returns:
        ``(H, W) int32`` labels ``0..n`` (0 = background) and ``n``.
    """
    weak = ndimage.binary_opening(score >= low, structure=np.ones((3, 3), bool))
    labels, n = ndimage.label(weak)
    if n == 0:
        return labels, 0
    index = np.arange(1, n + 1)
    peak = ndimage.maximum(score, labels, index)
    size = ndimage.sum_labels(np.ones_like(score), labels, index)
    keep = (np.asarray(peak) >= high) & (np.asarray(size) >= min_pixels)
    remap = np.zeros(n + 1, np.int32)
    remap[1:][keep] = np.arange(1, int(keep.sum()) + 1)
    return remap[labels], int(keep.sum())


def extract_blobs(
    labels: np.ndarray,
    n: int,
    score: np.ndarray,
    live_depth: np.ndarray,
    K: Intrinsics,
    T_world_cam: np.ndarray,
) -> list[Blob]:
    """Describe each labelled region: box, size, mean score and world centroid.

    Args:
        labels: ``(H, W) int32`` from :func:`hysteresis_labels`.
        n: number of labels.
        score: ``(H, W) float32``.
        live_depth: ``(H, W)`` metres (0/NaN = none), intrinsics ``K`` (``K.shape == (H, W)``).
        T_world_cam: ``(4, 4)`` live camera pose.

    Returns:
        one :class:`Blob` per label, in label order.
    """
    blobs = []
    depth_ok = valid_depth(live_depth)
    for label, slices in enumerate(ndimage.find_objects(labels, max_label=n), start=1):
        inside = labels[slices] == label
        count = int(inside.sum())
        with_depth = inside & depth_ok[slices]
        centroid = None
        if with_depth.any():
            rows, cols = np.nonzero(with_depth)
            z = np.asarray(live_depth[slices][rows, cols], np.float64)
            u = cols + slices[1].start
            v = rows + slices[0].start
            points = np.stack([(u - K.cx) / K.fx * z, (v - K.cy) / K.fy * z, z], axis=-1)
            centroid = np.median(transform_points(T_world_cam, points), axis=0)
        blobs.append(
            Blob(label, slices, count, float(score[slices][inside].mean()), centroid)
        )
    return blobs

