"""The consistency monitor's core: live frame vs memory rendering -> moving-object mask + regions.

``MovingObjectDetector.update`` runs once per camera frame. It fuses the disagreement cues of
``cues.py`` (only where the memory is valid), extracts connected regions with spatial hysteresis,
follows them in 3D (``tracking.py``) to tell *moving* from *new static* structure, and returns

- ``Detection.mask``: pixels of moving regions (published),
- ``Detection.memory_mask``: what the world model must NOT write into memory (moving regions and
  undecided candidates, slightly dilated); feed it to ``WorldModel.observe(dynamic_mask=...)``,
- ``Detection.regions``: id, state, score, box, world centroid and velocity of each region.

Work per frame is bounded: images wider than ``work_width`` are subsampled by an integer step,
and at most ``max_regions`` regions are described and tracked.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from mirage_ros.dynamics.config import DetectorConfig
from mirage_ros.dynamics.cues import depth_cue, fuse_cues, latent_cue, photometric_cue, ramp
from mirage_ros.dynamics.regions import (
    depth_edges,
    extract_blobs,
    grow_into_unjudged,
    grow_regions,
    hysteresis_labels,
)
from mirage_ros.dynamics.tracking import (
    STATE_MOVING,
    STATE_NEW_STATIC,
    STATE_UNKNOWN,
    Tracker,
)
from mirage_ros.dynamics.warp import depth_bounds, depth_change
from mirage_ros.errors import InvalidInput
from mirage_ros.geometry import Intrinsics, check_pose, invert_pose, pool_mask, upsample_cells


@dataclass(frozen=True)
class Region:
    """One disagreement region (fields of ``mirage_ros_msgs/MovingRegion``).

    Attributes:
        id: track id, stable across frames (0 = untracked: no depth reading inside).
        state: ``STATE_MOVING`` / ``STATE_UNKNOWN`` / ``STATE_NEW_STATIC`` (``tracking.py``).
        score: confidence that the region moves, in ``[0, 1]``: its track's motion evidence
            (temporal average; ``MovingRegion.score``).
        disagreement: mean disagreement of its pixels with the memory, in ``[0, 1]``.
        box: ``(x_offset, y_offset, width, height)`` pixels, as ``sensor_msgs/RegionOfInterest``.
        mask_label: the region's value in ``Detection.labels``.
        pixel_count: pixels in ``Detection.labels == mask_label``.
        centroid_world: ``(3,) float64`` metres, world frame (NaN if untracked).
        velocity_world: ``(3,) float64`` m/s, world frame (zeros unless ``velocity_valid``).
        velocity_valid: enough history for a velocity estimate.
    """

    id: int
    state: int
    score: float
    disagreement: float
    box: tuple[int, int, int, int]
    mask_label: int
    pixel_count: int
    centroid_world: np.ndarray
    velocity_world: np.ndarray
    velocity_valid: bool


@dataclass(frozen=True)
class Detection:
    """Result of one frame, all images ``(H, W)`` like the input.

    Attributes:
        stamp: frame time, seconds.
        status: ``"ok"`` or ``"unknown"``: the memory cannot judge this frame (it is empty, the
            pose jumped, or the view disagrees both ways: pose error). Then ``mask`` is empty and
            no region is reported; ``memory_mask`` is the whole frame right after a reset or a
            jump (nothing to compare with: the next frame is written instead), the regions
            moving since the last frame while the memory is still empty, else empty.
        reason: why the status is unknown ("" when ok).
        mask: ``bool``, pixels of moving regions.
        memory_mask: ``bool``, pixels to keep out of memory (moving + candidates, dilated).
        labels: ``uint8``, 0 = background, else a region's ``mask_label``.
        regions: the regions, at most ``max_regions`` (+ untracked ones).
        coverage: share of pixels where the memory is valid.
        gain: estimated live / memory exposure gain (1 when not estimated).
    """

    stamp: float
    status: str
    reason: str
    mask: np.ndarray
    memory_mask: np.ndarray
    labels: np.ndarray
    regions: list[Region]
    coverage: float
    gain: float


@dataclass
class _PreviousFrame:
    depth: np.ndarray  # working resolution
    K: Intrinsics
    T_world_cam: np.ndarray
    stamp: float
    bounds: tuple[np.ndarray, np.ndarray] | None = None  # warp.depth_bounds, once it is a reference


class MovingObjectDetector:
    """Stateful per-camera detector; call :meth:`update` once per frame, in time order."""

    def __init__(self, config: DetectorConfig | None = None):
        self.config = config or DetectorConfig()
        self.tracker = Tracker(self.config.tracking)
        self._previous: _PreviousFrame | None = None
        self._recent: deque[_PreviousFrame] = deque(maxlen=32)  # for the frame-change cue
        self._track_ids: np.ndarray | None = None  # last frame's track id per working pixel

    def reset(self) -> None:
        """Forget tracks and the previous frame (e.g. the memory was cleared)."""
        self.tracker.reset()
        self._previous = None
        self._recent.clear()
        self._track_ids = None

    def update(
        self,
        live_rgb: np.ndarray,
        live_depth: np.ndarray,
        K: Intrinsics,
        T_world_cam: np.ndarray,
        stamp: float,
        rendered_rgb: np.ndarray | None,
        rendered_depth: np.ndarray,
        rendered_valid: np.ndarray,
        live_latent: np.ndarray | None = None,
        warped_latent: np.ndarray | None = None,
        warped_valid: np.ndarray | None = None,
    ) -> Detection:
        """Compare the live frame with the memory's rendering at the same pose.

        Args:
            live_rgb: ``(H, W, 3) uint8``.
            live_depth: ``(H, W) float32`` metres, 0/NaN = no reading (REP-118).
            K: intrinsics of both images, ``K.shape == (H, W)``.
            T_world_cam: ``(4, 4)`` live camera pose (optical frame).
            stamp: frame time in seconds.
            rendered_rgb: ``(H, W, 3) uint8`` memory prediction at this pose, or ``None`` to skip
                the photometric cue.
            rendered_depth: ``(H, W) float32`` predicted depth.
            rendered_valid: ``(H, W) bool`` where the memory covers the view.
            live_latent, warped_latent: optional ``(C, h, w)`` encoder features of the live frame
                and memory read-out at this pose (latent cue); both or neither.
            warped_valid: ``(h, w) bool`` read-out validity; default: pooled ``rendered_valid``.

        Returns:
            :class:`Detection`.

        Raises:
            InvalidInput: naming the argument whose shape or type is wrong.
        """
        cfg = self.config
        if not isinstance(K, Intrinsics):
            raise InvalidInput("K", f"must be a geometry.Intrinsics, got {type(K).__name__}")
        T_world_cam = check_pose(T_world_cam)
        shape = K.shape
        _check_image(live_rgb, shape + (3,), "live_rgb")
        _check_image(live_depth, shape, "live_depth")
        _check_image(rendered_depth, shape, "rendered_depth")
        _check_image(rendered_valid, shape, "rendered_valid")
        if rendered_rgb is not None:
            _check_image(rendered_rgb, shape + (3,), "rendered_rgb")
        if (live_latent is None) != (warped_latent is None):
            raise InvalidInput("warped_latent", "give live_latent and warped_latent together")
        stamp = float(stamp)

        jump = self._pose_jump(T_world_cam, stamp)
        step = math.ceil(K.width / cfg.work_width)
        Kw = Intrinsics(K.fx / step, K.fy / step, K.cx / step, K.cy / step,
                        math.ceil(K.width / step), math.ceil(K.height / step))
        sub = (slice(None, None, step), slice(None, None, step))
        depth = np.asarray(live_depth, np.float32)[sub]
        valid = np.asarray(rendered_valid, bool)[sub]
        previous = self._previous
        self._previous = _PreviousFrame(depth, Kw, T_world_cam, stamp)
        if jump:
            self._recent.clear()
        references = self._change_references(Kw, stamp)
        self._recent.append(self._previous)
        coverage = float(valid.mean())
        previous_track_ids, self._track_ids = self._track_ids, None
        memory_empty = coverage < cfg.min_memory_coverage
        if jump or (memory_empty and previous is None):
            # Nothing to compare with (first frame after a reset, or a pose jump): write nothing;
            # the next frame can be compared with this one.
            self.tracker.reset()
            reason = jump or f"memory covers {coverage:.0%} of the view and no previous frame"
            return _unknown(stamp, shape, reason, coverage, keep_out=np.ones(shape, bool))

        cue = depth_cue(depth, np.asarray(rendered_depth, np.float32)[sub], valid,
                        cfg.depth_window, cfg.depth_sigma, cfg.depth_sigmas)
        appearance, gain = [], 1.0
        if rendered_rgb is not None:
            photo, gain = photometric_cue(np.asarray(live_rgb)[sub], np.asarray(rendered_rgb)[sub],
                                          valid, cfg.photometric_window, cfg.photometric_levels,
                                          cfg.gain_limits)
            appearance.append(photo)
        if live_latent is not None:
            if warped_valid is None:
                stride = K.height // np.asarray(live_latent).shape[1]
                warped_valid = pool_mask(np.asarray(rendered_valid, bool), stride) > 0.5
            appearance.append(latent_cue(live_latent, warped_latent, warped_valid, depth.shape,
                                         cfg.latent_levels))
        score = fuse_cues(cue, np.mean(appearance, axis=0) if appearance else None, valid,
                          cfg.appearance_weight_on_depth_agree)

        covered = max(np.count_nonzero(valid), 1)
        nearer = np.count_nonzero(cue.nearer >= 0.5) / covered
        farther = np.count_nonzero(cue.farther) / covered
        if not memory_empty and min(nearer, farther) > cfg.pose_error_share:
            self.tracker.reset()
            reason = f"{nearer:.0%} of the view nearer and {farther:.0%} farther than memory (pose?)"
            return _unknown(stamp, shape, reason, coverage, keep_out=np.zeros(shape, bool))

        change = None
        for reference, recede in references:
            max_step = cfg.tracking.max_speed * (stamp - reference.stamp) if recede else 0.0
            if reference.bounds is None:  # a frame is a reference for several later ones
                reference.bounds = depth_bounds(reference.depth, cfg.change_window)
            changed, seen = depth_change(depth, Kw, T_world_cam, reference.depth, reference.K,
                                         reference.T_world_cam, cfg.change_window,
                                         cfg.change_sigma, cfg.depth_sigmas[1], max_step,
                                         reference.bounds)
            change = (changed, seen) if change is None else (change[0] | changed, change[1] | seen)
        if change is not None:
            # Motion since the last frame seeds a region wherever it is seen: where the memory
            # cannot judge, and where a person already leaked into it (walking inside their own
            # ghost, they would agree with the memory and keep leaking).
            score = np.maximum(score, change[0].astype(np.float32))

        min_pixels = max(4, int(cfg.min_region_fraction * depth.size))
        edges = depth_edges(depth, cfg.edge_rel_gap)
        labels, n = hysteresis_labels(score, cfg.score_low, cfg.score_high, min_pixels, cuts=edges)
        unjudged = ~valid & ~edges
        # Growth covers a mover whose only evidence is its changed edges, which is all there is
        # while the memory is empty. Once the memory covers the view, what lies next to a region
        # and is unjudged is mostly a static surface the memory holds sparsely (a near wall at a
        # grazing angle); kept out, it never fills in (docs/evaluation.md: gap and F1 both worse).
        grow = cfg.grow_pixels if memory_empty else 0
        if n and grow:
            labels = grow_regions(labels, n, depth, unjudged, grow, cfg.grow_band)
        blobs = extract_blobs(labels, n, score, depth, Kw, T_world_cam)
        blobs.sort(key=lambda b: b.pixel_count * b.score, reverse=True)
        kept, overflow = blobs[: cfg.max_regions], blobs[cfg.max_regions :]
        tracked = [b for b in kept if b.centroid_world is not None]
        tracks = self.tracker.update(
            [b.centroid_world for b in tracked],
            [_region_motion(change, labels, b, cfg.frame_change_levels) for b in tracked],
            stamp,
            [_seen_whole(b, depth.shape) for b in tracked],
        )
        track_of = {b.label: t for b, t in zip(tracked, tracks)}
        for blob in kept:
            if blob.centroid_world is None and previous_track_ids is not None:
                track = self._follow_by_overlap(blob, labels, previous_track_ids, stamp)
                if track is not None:
                    track_of[blob.label] = track
        track_ids = np.zeros(depth.shape, np.int32)

        out_labels = np.zeros(depth.shape, np.uint8)
        keep_out = np.isin(labels, [b.label for b in overflow])
        described = []
        for index, blob in enumerate(kept, start=1):
            track = track_of.get(blob.label)
            state = track.state(cfg.tracking) if track else STATE_UNKNOWN
            pixels = labels == blob.label
            out_labels[pixels] = index
            if track is not None:
                track_ids[pixels] = track.id
            if state != STATE_NEW_STATIC:
                keep_out |= pixels
            described.append((index, blob, track, state))
        if grow and keep_out.any():
            keep_out = grow_into_unjudged(keep_out, unjudged, grow)
        if cfg.feedback_dilation > 0 and keep_out.any():
            keep_out = ndimage.binary_dilation(keep_out, np.ones((3, 3), bool), cfg.feedback_dilation)

        self._track_ids = track_ids
        full_labels = upsample_cells(out_labels, step, shape)
        counts = np.bincount(full_labels.ravel(), minlength=len(kept) + 1)
        moving = [i for i, _, _, s in described if s == STATE_MOVING]
        regions = [
            _describe(index, blob, track, state, step, shape, int(counts[index]),
                      cfg.tracking.speed_window_s)
            for index, blob, track, state in described
        ]
        if memory_empty:
            # Only motion since the last frame protects the memory; nothing is reported.
            reason = f"memory covers {coverage:.0%} of the view"
            return _unknown(stamp, shape, reason, coverage, upsample_cells(keep_out, step, shape))
        return Detection(
            stamp=stamp,
            status="ok",
            reason="",
            mask=np.isin(full_labels, moving),
            memory_mask=upsample_cells(keep_out, step, shape),
            labels=full_labels,
            regions=regions,
            coverage=coverage,
            gain=gain,
        )

    def _follow_by_overlap(self, blob, labels, previous_track_ids, stamp):
        """The track whose last region covers most of this depthless region (>= 30 %), if any."""
        inside = labels[blob.slices] == blob.label
        ids = previous_track_ids[blob.slices][inside]
        counts = np.bincount(ids[ids > 0])
        if counts.size == 0 or counts.max() < 0.3 * blob.pixel_count:
            return None
        return self.tracker.follow_without_depth(int(np.argmax(counts)), stamp)

    def _change_references(self, K: Intrinsics, stamp: float) -> list[tuple[_PreviousFrame, bool]]:
        """Earlier frames to compare with, each with whether a receding surface counts: the
        latest one (within ``max_frame_gap_s``) and the oldest within ``change_lag_s`` (a walker
        moves ~0.3 m in 0.3 s, well above depth noise at 5 m; in one frame at 30 Hz only 4 cm),
        then the oldest within ``change_long_lag_s`` for "nearer" only (see the config). Empty
        without a usable frame."""
        cfg = self.config
        usable = [f for f in self._recent
                  if f.K == K and 0 < stamp - f.stamp <= cfg.max_frame_gap_s]
        chosen: list[tuple[_PreviousFrame, bool]] = []
        for lag, recede in ((math.inf, True), (cfg.change_lag_s, True), (cfg.change_long_lag_s, False)):
            within = [f for f in usable if stamp - f.stamp <= lag]
            frame = (within[-1] if lag == math.inf else within[0]) if within else None
            if frame is not None and all(frame is not f for f, _ in chosen):
                chosen.append((frame, recede))
        return chosen

    def _pose_jump(self, T_world_cam: np.ndarray, stamp: float) -> str:
        """Reason string if the pose jumped (or time ran backwards) since the last frame, else ""."""
        previous = self._previous
        if previous is None:
            return ""
        cfg = self.config
        dt = stamp - previous.stamp
        if dt < 0:
            self.reset()
            return f"time went backwards by {-dt:.3f} s"
        delta = invert_pose(previous.T_world_cam) @ T_world_cam
        moved = float(np.linalg.norm(delta[:3, 3]))
        turned = math.degrees(math.acos(np.clip((np.trace(delta[:3, :3]) - 1) / 2, -1.0, 1.0)))
        gap = min(dt, cfg.max_frame_gap_s)
        if moved > cfg.pose_jump_m + cfg.max_camera_speed * gap:
            return f"pose jumped {moved:.2f} m in {dt:.3f} s"
        if turned > cfg.pose_jump_deg + cfg.max_camera_turn * gap:
            return f"pose turned {turned:.1f} deg in {dt:.3f} s"
        return ""


def _region_motion(change, labels, blob, levels) -> float | None:
    """Frame-to-frame motion evidence of one region, or ``None`` if the last frame barely saw it."""
    if change is None:
        return None
    changed, covered = change
    inside = labels[blob.slices] == blob.label
    seen = np.count_nonzero(covered[blob.slices] & inside)
    if seen < 0.3 * blob.pixel_count:
        return None
    fraction = np.count_nonzero(changed[blob.slices] & inside) / seen
    return float(ramp(fraction, *levels))


def _seen_whole(blob, shape: tuple[int, int], max_share: float = 0.3) -> bool:
    """Region inside the image (1-pixel margin) and covering at most ``max_share`` of it."""
    rows, cols = blob.slices
    inside = rows.start > 0 and cols.start > 0 and rows.stop < shape[0] and cols.stop < shape[1]
    return inside and blob.pixel_count <= max_share * shape[0] * shape[1]


def _describe(index, blob, track, state, step, shape, pixel_count, window_s) -> Region:
    rows, cols = blob.slices
    y0, x0 = rows.start * step, cols.start * step
    y1, x1 = min(rows.stop * step, shape[0]), min(cols.stop * step, shape[1])
    if track is None:
        centroid, velocity, velocity_ok, motion, ident = np.full(3, np.nan), np.zeros(3), False, 0.0, 0
    else:
        centroid = track.history[-1][1].copy()
        velocity, velocity_ok = track.velocity(window_s)
        motion, ident = track.motion, track.id
    return Region(ident, state, motion, blob.score, (x0, y0, x1 - x0, y1 - y0), index,
                  pixel_count, centroid, velocity, velocity_ok)


def _unknown(stamp: float, shape: tuple[int, int], reason: str, coverage: float,
             keep_out: np.ndarray) -> Detection:
    return Detection(stamp, "unknown", reason, np.zeros(shape, bool), keep_out,
                     np.zeros(shape, np.uint8), [], coverage, 1.0)


def _check_image(image, shape: tuple[int, ...], name: str) -> None:
    array = np.asarray(image)
    if array.shape != shape:
        raise InvalidInput(name, f"must have shape {shape}, got {array.shape}")
