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


def depth_edges(depth: np.ndarray, rel_gap: float) -> np.ndarray:
    """``(H, W) bool``: pixels whose 3x3 neighbourhood spans a depth jump larger than ``rel_gap``
    times its nearest depth, or that touch a pixel without a reading (silhouettes, holes)."""
    ok = valid_depth(depth)
    d = np.where(ok, depth, 0.0).astype(np.float32)
    near = ndimage.minimum_filter(np.where(ok, d, np.inf), size=3, mode="nearest")
    far = ndimage.maximum_filter(d, size=3, mode="nearest")
    return ~ok | ~ndimage.binary_erosion(ok, np.ones((3, 3), bool), border_value=1) | (
        far - near > rel_gap * near
    )


def grow_into_unjudged(
    labels: np.ndarray, unjudged: np.ndarray, max_pixels: int
) -> tuple[np.ndarray, int]:
    """Extend regions into adjacent pixels the memory cannot judge (it does not cover them).

    Part of a person in front of something the memory never saw (past its depth range, a new
    room) gives no disagreement; without this it would be written into memory and then match the
    person next frame. Growth is geodesic (only through ``unjudged``), at most ``max_pixels``
    steps, so a region cannot flood a large unseen area such as a newly visible floor.

    Args:
        labels: ``(H, W) int32`` region labels (0 = none).
        unjudged: ``(H, W) bool`` memory invalid, live depth valid and not on a depth edge (so a
            region does not leak across a silhouette onto the background).
        max_pixels: growth radius in pixels.

    Returns:
        relabelled ``(H, W) int32`` regions and their count (regions joined by growth merge).
    """
    seeds = labels > 0
    grown = ndimage.binary_dilation(
        seeds, np.ones((3, 3), bool), iterations=max_pixels, mask=seeds | unjudged
    )
    return ndimage.label(grown)


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

