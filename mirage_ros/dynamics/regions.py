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
    score: np.ndarray,
    low: float,
    high: float,
    min_pixels: int,
    cuts: np.ndarray | None = None,
    fill_pixels: int = 8,
) -> tuple[np.ndarray, int]:
    """Spatial hysteresis: components of ``score >= low`` holding a pixel ``>= high`` (Canny-style).

    Weak evidence next to strong evidence (a person's legs near the floor, a shirt of wall colour)
    joins the region; weak evidence alone is dropped. A 3x3 opening first removes one-pixel speckle
    (depth noise, misregistered edges). ``cuts`` (depth jumps) separate components, so a person in
    front of a wall the memory never saw are two regions (one moves, the other does not); weak cut
    pixels within ``fill_pixels`` of a region then join the nearest one.

    Args:
        score: ``(H, W) float32`` in ``[0, 1]``.
        low, high: thresholds, ``0 < low <= high``.
        min_pixels: components smaller than this are dropped.
        cuts: optional ``(H, W) bool`` pixels that do not connect regions.
        fill_pixels: reach of the cut-pixel assignment.

    Returns:
        ``(H, W) int32`` labels ``0..n`` (0 = background) and ``n``.
    """
    weak = ndimage.binary_opening(score >= low, structure=np.ones((3, 3), bool))
    labels, n = ndimage.label(weak if cuts is None else weak & ~cuts)
    if n == 0:
        return labels, 0
    index = np.arange(1, n + 1)
    peak = ndimage.maximum(score, labels, index)
    size = ndimage.sum_labels(np.ones_like(score), labels, index)
    keep = (np.asarray(peak) >= high) & (np.asarray(size) >= min_pixels)
    remap = np.zeros(n + 1, np.int32)
    remap[1:][keep] = np.arange(1, int(keep.sum()) + 1)
    labels = remap[labels]
    if cuts is not None and keep.any():
        # weak cut pixels (silhouette bands, depth holes inside a person) join the nearest region
        distance, (rows, cols) = ndimage.distance_transform_edt(labels == 0, return_indices=True)
        border = weak & cuts & (labels == 0) & (distance <= fill_pixels)
        labels = np.where(border, labels[rows, cols], labels)
    return labels, int(keep.sum())


def depth_jumps(depth: np.ndarray, rel_gap: float) -> np.ndarray:
    """``(H, W) bool``: pixels whose 3x3 neighbourhood spans a depth jump larger than ``rel_gap``
    times its nearest depth (silhouettes; pixels without a reading are ignored)."""
    ok = valid_depth(depth)
    d = np.where(ok, depth, 0.0).astype(np.float32)
    near = ndimage.minimum_filter(np.where(ok, d, np.inf), size=3, mode="nearest")
    far = ndimage.maximum_filter(d, size=3, mode="nearest")
    return ok & (far - near > rel_gap * near)


def depth_edges(depth: np.ndarray, rel_gap: float) -> np.ndarray:
    """``(H, W) bool``: :func:`depth_jumps` or touching a pixel without a reading (holes)."""
    ok = valid_depth(depth)
    holes = ~ndimage.binary_erosion(ok, np.ones((3, 3), bool), border_value=1)
    return holes | depth_jumps(depth, rel_gap)


def grow_into_unjudged(mask: np.ndarray, unjudged: np.ndarray, max_pixels: int) -> np.ndarray:
    """Extend a keep-out mask into adjacent pixels the memory cannot judge (it does not cover them).

    Part of a person in front of something the memory never saw (past its depth range, a new
    room) gives no disagreement; without this it would be written into memory and then match the
    person next frame. Growth is geodesic (only through ``unjudged``), at most ``max_pixels``
    steps, so it cannot flood a large unseen area such as a newly visible floor. Only the memory
    feedback grows: the grown pixels are not claimed to be moving.

    Args:
        mask: ``(H, W) bool`` pixels kept out of memory.
        unjudged: ``(H, W) bool`` memory invalid, live depth valid and not on a depth edge (so the
            mask does not leak across a silhouette onto the background).
        max_pixels: growth radius in pixels.

    Returns:
        the grown ``(H, W) bool`` mask.
    """
    return ndimage.binary_dilation(
        mask, np.ones((3, 3), bool), iterations=max_pixels, mask=mask | unjudged
    )


def grow_regions(
    labels: np.ndarray,
    n: int,
    depth: np.ndarray,
    unjudged: np.ndarray,
    max_pixels: int,
    band: float,
) -> np.ndarray:
    """Extend each region into adjacent unjudged pixels at the region's own depth.

    Like :func:`grow_into_unjudged`, but a pixel joins a region only if its depth lies within the
    region's depth range (5th..95th percentile) widened by ``band`` times that depth: the head of
    a person in front of an unseen far wall joins, the floor a metre behind the feet does not.

    Args:
        labels: ``(H, W) int32`` regions ``1..n``.
        n: number of regions.
        depth: ``(H, W)`` live depth, metres.
        unjudged: ``(H, W) bool`` (see :func:`grow_into_unjudged`).
        max_pixels: growth radius in pixels.
        band: relative depth margin.

    Returns:
        ``(H, W) int32`` labels, regions grown (where two compete, the lower label wins).
    """
    out = labels.copy()
    ok = valid_depth(depth)
    for label, slices in enumerate(ndimage.find_objects(labels, max_label=n), start=1):
        if slices is None:
            continue
        rows = slice(max(slices[0].start - max_pixels, 0), slices[0].stop + max_pixels)
        cols = slice(max(slices[1].start - max_pixels, 0), slices[1].stop + max_pixels)
        region = labels[rows, cols] == label
        z = depth[rows, cols][region & ok[rows, cols]]
        if z.size == 0:
            continue
        lo, hi = np.percentile(z, [5, 95])
        window = depth[rows, cols]
        allowed = unjudged[rows, cols] & (window >= lo * (1 - band)) & (window <= hi * (1 + band))
        grown = ndimage.binary_dilation(region, np.ones((3, 3), bool), iterations=max_pixels,
                                        mask=region | (allowed & (out[rows, cols] == 0)))
        out[rows, cols][grown & (out[rows, cols] == 0)] = label
    return out


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

