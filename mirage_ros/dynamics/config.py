"""Parameters of the moving-object detector (``MovingObjectDetector``), validated on construction."""

from __future__ import annotations

from dataclasses import dataclass, field

from mirage_ros.dynamics.tracking import TrackingConfig
from mirage_ros.errors import InvalidInput


@dataclass(frozen=True)
class DetectorConfig:
    """Parameters of :class:`MovingObjectDetector`; windows are in working-resolution pixels.

    Attributes:
        work_width: images wider than this are subsampled by ``ceil(W / work_width)``.
        depth_window: window (odd) over which the nearest memory depth is taken. 9 pixels span
            about two latent cells each way (stride 4, images at most ``work_width`` wide; more
            for wider ones): near walls seen at a grazing angle are held sparsely, and a smaller
            window finds only farther points seen through them.
        depth_sigma: ``(base m, quadratic 1/m, relative)`` depth noise model (Kinect-class + the
            memory's coarse latent-resolution depth).
        depth_sigmas: ``(lo, hi)`` disagreement, in sigmas, mapped to evidence 0..1.
        photometric_window: window (odd) of the rendering's local min/max.
        photometric_levels: ``(lo, hi)`` gain-normalised grey residual mapped to evidence 0..1.
        gain_limits: allowed global exposure gain.
        latent_levels: ``(lo, hi)`` cosine distance of encoder features mapped to evidence 0..1.
        appearance_weight_on_depth_agree: weight of appearance evidence where depth agrees.
        score_low, score_high: spatial hysteresis thresholds on the fused score.
        min_region_fraction: regions smaller than this share of the image are dropped.
        grow_pixels: while the memory is empty (coverage below ``min_memory_coverage``), regions
            and ``memory_mask`` extend at most this far into adjacent pixels the memory does not
            cover (same surface: no depth edge of more than ``edge_rel_gap`` in between); regions
            only at their own depth (``grow_band``), the keep-out mask at any.
        grow_band: relative depth margin around a region's depth range for its growth.
        edge_rel_gap: relative depth jump that separates two surfaces.
        max_regions: at most this many regions (largest first) are described and tracked; the
            rest still go into ``memory_mask``.
        change_window: window (odd) of the frame-to-frame depth comparison (the previous frame
            is the same sensor with a known relative pose: less slack than the memory needs).
        change_lag_s: the frame-change cue compares with the oldest frame at most this old
            (larger displacement than one frame; also the lag after a person stops).
        change_long_lag_s: also compare with the oldest frame at most this old (<=
            ``max_frame_gap_s``; 0 = off), for "something is now nearer" only. Depth noise grows
            with range (~0.08 m at 6 m) while a walker covers only ~0.35 m in ``change_lag_s``:
            far people need a longer time baseline. A surface *receding* that far is mostly
            background revealed behind someone who left, so it does not count here.
        change_sigma: ``(base, quadratic, relative)`` depth noise of the frame-to-frame comparison
            (sensor noise only: both frames are live readings).
        frame_change_levels: ``(lo, hi)`` share of a region's pixels whose depth changed in the
            warped previous frame, mapped to motion evidence 0..1.
        min_memory_coverage: below this share of valid rendered pixels the frame is "unknown".
        pose_error_share: when more than this share of the covered view is clearly nearer AND
            more than this share clearly farther than the memory, the frame is "unknown": the pose
            (or the memory) is wrong. A person filling the view is only nearer.
        pose_jump_m, pose_jump_deg: slack of the pose-jump test, on top of
            ``max_camera_speed`` (m/s) and ``max_camera_turn`` (deg/s) times the frame gap.
        max_frame_gap_s: no frame-to-frame cue across a longer gap.
        feedback_dilation: ``memory_mask`` is dilated by this many working pixels (silhouettes
            smear over latent cells).
        tracking: :class:`TrackingConfig`.
    """

    work_width: int = 320
    depth_window: int = 9
    depth_sigma: tuple[float, float, float] = (0.01, 0.002, 0.01)
    depth_sigmas: tuple[float, float] = (2.0, 4.0)
    photometric_window: int = 3
    photometric_levels: tuple[float, float] = (0.08, 0.2)
    gain_limits: tuple[float, float] = (0.5, 2.0)
    latent_levels: tuple[float, float] = (0.3, 0.6)
    appearance_weight_on_depth_agree: float = 0.5
    score_low: float = 0.3
    score_high: float = 0.6
    min_region_fraction: float = 0.002
    grow_pixels: int = 32
    grow_band: float = 0.1
    edge_rel_gap: float = 0.05
    max_regions: int = 16
    change_window: int = 3
    change_lag_s: float = 0.3
    change_long_lag_s: float = 0.8
    change_sigma: tuple[float, float, float] = (0.005, 0.002, 0.0)
    frame_change_levels: tuple[float, float] = (0.05, 0.2)
    min_memory_coverage: float = 0.15
    pose_error_share: float = 0.1
    pose_jump_m: float = 0.3
    pose_jump_deg: float = 15.0
    max_camera_speed: float = 2.0
    max_camera_turn: float = 120.0
    max_frame_gap_s: float = 1.0
    feedback_dilation: int = 3
    tracking: TrackingConfig = field(default_factory=TrackingConfig)

    def __post_init__(self) -> None:
        if self.work_width < 16:
            raise InvalidInput("work_width", f"must be >= 16, got {self.work_width}")
        for name in ("depth_window", "photometric_window", "change_window"):
            value = getattr(self, name)
            if value < 1 or value % 2 == 0:
                raise InvalidInput(name, f"must be a positive odd integer, got {value}")
        for name in ("depth_sigmas", "photometric_levels", "latent_levels", "frame_change_levels"):
            lo, hi = getattr(self, name)
            if not 0 <= lo < hi:
                raise InvalidInput(name, f"must be (lo, hi) with 0 <= lo < hi, got {(lo, hi)}")
        if not 0 < self.score_low <= self.score_high <= 1:
            raise InvalidInput("score_low", "need 0 < score_low <= score_high <= 1")
        if not 0 <= self.change_long_lag_s <= self.max_frame_gap_s:
            raise InvalidInput("change_long_lag_s", f"must be in [0, max_frame_gap_s "
                                                    f"{self.max_frame_gap_s}], got {self.change_long_lag_s}")
        if self.max_regions < 1:
            raise InvalidInput("max_regions", f"must be >= 1, got {self.max_regions}")
