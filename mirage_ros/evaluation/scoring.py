"""Score world models on a sequence of RGB-D frames: future views at horizons and revisits.

The one sequence scorer of the project: ``mirage-ros eval`` (recorded bags / TUM folders) and
``eval-sim`` (simulator frames) both call :func:`score_sequence`, so a bag written by the simulator
scores exactly like the same frames fed from memory.

Protocol (offline and deterministic; frames are taken in stamp order, each method sees the same
frames and the same dynamic masks):

- **future view** at horizon ``h``: at an anchor frame ``i`` (one every ``query_every`` seconds) the
  memory holds frames ``0..i``; each method predicts the view at the real pose of the frame ``j``
  whose stamp is nearest ``t_i + h`` (within ``target_tolerance``), scored against frame ``j``'s
  real image when it arrives;
- **revisit**: frame ``j`` whose camera comes back within ``revisit_distance`` metres and
  ``revisit_angle_deg`` of viewing direction of an earlier frame ``k``, after at least
  ``revisit_min_path`` metres of travel and ``revisit_min_time`` seconds; predicted from frames
  ``0..j-1`` and scored against frame ``j`` (revisits at least ``query_every`` apart);
- each prediction is scored with :mod:`mirage_ros.evaluation.metrics` on the whole frame and on the
  region the method's memory covers (its ``valid`` mask).

Frames are any objects with ``stamp, rgb, depth, K, T_world_cam`` (and optional
``motion_mask``): :class:`mirage_ros.evaluation.sources.Observation` or the simulator's ``Frame``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Protocol

import numpy as np

from mirage_ros.errors import InvalidInput
from mirage_ros.evaluation.recall import ViewCoverage
from mirage_ros.evaluation.metrics import psnr, ssim_and_covered
from mirage_ros.geometry import Intrinsics


class Method(Protocol):
    """A world model under evaluation (our latent memory or a baseline)."""

    name: str

    def observe(self, frame, dynamic_mask: np.ndarray | None) -> None:
        """Add ``frame`` to the memory, leaving out ``dynamic_mask`` ``(H, W) bool`` pixels."""

    def predict(self, T_world_cam: np.ndarray, K: Intrinsics) -> tuple[np.ndarray, np.ndarray]:
        """``(rgb (H', W', 3) uint8, valid (H', W') bool)`` seen from ``T_world_cam``; ``H' <= H``."""

    def memory_bytes(self) -> int:
        """Bytes the memory holds now."""


@dataclass(frozen=True)
class ScoreConfig:
    """What to score. Seconds, metres, degrees.

    Attributes:
        horizons: future-view horizons (> 0).
        query_every: spacing of anchor frames and of scored revisits.
        target_tolerance: largest ``|stamp_j - (t_i + h)|`` accepted for a future target; None =
            0.6 x the median frame period.
        revisit_distance, revisit_angle_deg: how near (position, view direction) a revisit is.
        revisit_min_path, revisit_min_time: the detour needed between the two visits.
        max_revisits: cap on scored revisits (the earliest are kept).
        recall_window: out-of-view recall targets (``evaluation.recall``): future targets whose
            view the frames of this many seconds before the anchor saw less than
            ``recall_recent_max`` of, while one older frame saw more than ``recall_old_min``; at
            most one per anchor spacing ``query_every``, ``max_recalls`` in all.
        warmup: seconds of frames observed before the first anchor.
        examples: number of observed / predicted / error examples kept for the report: per target
            group (revisit, each horizon), the target in the second half of the run that the first
            method's memory covers most.
    """

    horizons: tuple[float, ...] = (0.5, 1.0, 2.0)
    query_every: float = 0.5
    target_tolerance: float | None = None
    revisit_distance: float = 0.5
    revisit_angle_deg: float = 20.0
    revisit_min_path: float = 3.0
    revisit_min_time: float = 5.0
    max_revisits: int = 50
    recall_window: float = 3.0
    recall_recent_max: float = 0.1
    recall_old_min: float = 0.5
    max_recalls: int = 50
    warmup: float = 0.0
    examples: int = 4

    def __post_init__(self) -> None:
        if not self.horizons or any(not (h > 0 and math.isfinite(h)) for h in self.horizons):
            raise InvalidInput("--horizons", f"must be finite numbers > 0, got {self.horizons}")
        for name in ("query_every", "revisit_distance", "revisit_angle_deg"):
            if not getattr(self, name) > 0:
                raise InvalidInput(f"--{name.replace('_', '-')}", f"must be > 0, got {getattr(self, name)}")
        if not 0 <= self.recall_recent_max < self.recall_old_min <= 1:
            raise InvalidInput("recall_recent_max", "recall shares must satisfy 0 <= recent_max < old_min <= 1, got "
                                                    f"{self.recall_recent_max} and {self.recall_old_min}")
        for name in ("revisit_min_path", "revisit_min_time", "warmup", "recall_window"):
            if not getattr(self, name) >= 0:
                raise InvalidInput(f"--{name.replace('_', '-')}", f"must be >= 0, got {getattr(self, name)}")
        if self.target_tolerance is not None and not self.target_tolerance > 0:
            raise InvalidInput("--target-tolerance", f"must be > 0, got {self.target_tolerance}")


@dataclass(frozen=True)
class Score:
    """One prediction scored against the real frame.

    Attributes:
        kind: ``"future"``, ``"revisit"`` or ``"recall"``.
        method: method name.
        horizon: seconds ahead (future) or None (revisit).
        anchor_stamp: stamp of the last frame in memory when the prediction was made.
        target_stamp: stamp of the real frame it is compared with.
        psnr, ssim: whole frame.
        psnr_covered, ssim_covered: where the method's memory covers the view (NaN if nowhere).
        coverage: covered share of the frame.
        psnr_static: whole frame except the target's moving pixels (its ``motion_mask``; NaN
            without one). No world model predicts where people walk next, so this separates the
            scene's fidelity from the people: one walking close by fills a fifth of the view.
        predict_ms: time of the prediction.
        seen: for recall targets, the share of the view's points with depth that any frame up to
            the anchor saw (``ViewCoverage.seen_share``): what a memory of everything seen could
            cover at most; NaN for other targets.
    """

    kind: str
    method: str
    horizon: float | None
    anchor_stamp: float
    target_stamp: float
    psnr: float
    ssim: float
    psnr_covered: float
    ssim_covered: float
    coverage: float
    psnr_static: float
    predict_ms: float
    seen: float = float("nan")


@dataclass
class Example:
    """Observed vs predicted images of one target, for figures."""

    kind: str
    horizon: float | None
    target_stamp: float
    observed: np.ndarray  # (H, W, 3) uint8
    predictions: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)  # method -> (rgb, valid)
    moving: np.ndarray | None = None  # (H, W) bool: the target's walking people, when known


@dataclass
class SequenceResult:
    """Everything :func:`score_sequence` measured.

    Attributes:
        scores: every scored prediction.
        timeline: per observed frame and method: ``stamp, method, memory_bytes, update_ms``.
        examples: a few targets with every method's prediction.
        planned: number of future / revisit targets found from the poses.
        frames: frames observed.
    """

    scores: list[Score] = field(default_factory=list)
    timeline: list[dict] = field(default_factory=list)
    examples: list[Example] = field(default_factory=list)
    planned: dict[str, int] = field(default_factory=dict)
    frames: int = 0

    def scores_as_dicts(self) -> list[dict]:
        return [asdict(s) for s in self.scores]


def view_directions(poses: np.ndarray) -> np.ndarray:
    """Optical axes (camera +z) in the world, ``(N, 4, 4) -> (N, 3)`` unit vectors."""
    return np.asarray(poses)[:, :3, 2]


def find_revisits(stamps: np.ndarray, poses: np.ndarray, config: ScoreConfig) -> list[tuple[int, int]]:
    """``[(j, k)]``: frame ``j`` revisits the earlier frame ``k`` (see module doc), ``j`` ascending.

    Args:
        stamps: ``(N,)`` seconds, increasing.
        poses: ``(N, 4, 4)`` ``T_world_cam``.
    """
    positions = poses[:, :3, 3]
    directions = view_directions(poses)
    travelled = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(positions, axis=0), axis=1))])
    cos_limit = math.cos(math.radians(config.revisit_angle_deg))
    found: list[tuple[int, int]] = []
    last_stamp = -math.inf
    for j in range(len(stamps)):
        if stamps[j] - last_stamp < config.query_every:
            continue
        earlier = (stamps[j] - stamps[:j] >= config.revisit_min_time) & (
            travelled[j] - travelled[:j] >= config.revisit_min_path)
        if not earlier.any():
            continue
        near = np.linalg.norm(positions[:j] - positions[j], axis=1) <= config.revisit_distance
        aligned = directions[:j] @ directions[j] >= cos_limit
        candidates = np.flatnonzero(earlier & near & aligned)
        if candidates.size:
            k = candidates[np.argmin(np.linalg.norm(positions[candidates] - positions[j], axis=1))]
            found.append((j, int(k)))
            last_stamp = stamps[j]
            if len(found) == config.max_revisits:
                break
    return found


def plan_future(stamps: np.ndarray, config: ScoreConfig) -> dict[int, list[tuple[float, int]]]:
    """Anchor frame ``i`` -> ``[(horizon, target j)]`` for the future-view targets."""
    tolerance = config.target_tolerance
    if tolerance is None:
        tolerance = 0.6 * float(np.median(np.diff(stamps))) if len(stamps) > 1 else 0.0
    plan: dict[int, list[tuple[float, int]]] = {}
    next_anchor = stamps[0] + config.warmup
    for i, t in enumerate(stamps):
        if t < next_anchor - 1e-9:
            continue
        next_anchor = t + config.query_every
        for h in config.horizons:
            j = int(np.argmin(np.abs(stamps - (t + h))))
            if j > i and abs(stamps[j] - (t + h)) <= tolerance:
                plan.setdefault(i, []).append((h, j))
    return plan


def score_sequence(
    frames: Iterable,
    stamps: np.ndarray,
    poses: np.ndarray,
    methods: Sequence[Method],
    config: ScoreConfig = ScoreConfig(),
    dynamic_mask: Callable | None = None,
    progress: Callable[[int], None] | None = None,
) -> SequenceResult:
    """Replay ``frames`` through every method and score future views, revisits and recall targets.

    Args:
        frames: the frames in stamp order (an iterator is consumed once).
        stamps: ``(N,)`` their stamps, increasing; ``poses``: ``(N, 4, 4)`` their ``T_world_cam``.
            Targets are planned from these before the first frame is read.
        methods: the world models, fed identical inputs.
        config: what to score.
        dynamic_mask: ``f(frame) -> (H, W) bool | None``, pixels kept out of every memory
            (called once per frame before the frame is observed).
        progress: called with 1 after each frame.

    Returns:
        :class:`SequenceResult`.
    """
    stamps = np.asarray(stamps, dtype=np.float64)
    poses = np.asarray(poses, dtype=np.float64)
    if len(stamps) != len(poses) or len(stamps) < 2:
        raise InvalidInput("stamps", f"need >= 2 stamps and one pose each, got {len(stamps)} and {len(poses)}")
    if np.any(np.diff(stamps) <= 0):
        raise InvalidInput("stamps", "must be strictly increasing")
    future = plan_future(stamps, config)
    revisits = dict(find_revisits(stamps, poses, config))
    result = SequenceResult(planned={"future": sum(map(len, future.values())), "revisit": len(revisits), "recall": 0})
    coverage = ViewCoverage(config.recall_window, config.recall_recent_max, config.recall_old_min)
    last_recall = -math.inf
    pending: dict[int, list[tuple[float, int, dict]]] = {}  # target j -> [(horizon, anchor, {method: pred})]
    best: dict[tuple, tuple[float, Example]] = {}  # target group -> (coverage, example)
    halfway = len(stamps) // 2

    for i, frame in enumerate(frames):
        if i >= len(stamps):
            break
        if i in revisits:
            predictions = {m.name: _timed_predict(m, poses[i], frame.K) for m in methods}
            _score(result, "revisit", None, stamps[i - 1], frame, predictions, best)
        for horizon, anchor, predictions in pending.pop(i, []):
            _score(result, "future", horizon, stamps[anchor], frame, predictions, best if i >= halfway else None)
            if (result.planned["recall"] < config.max_recalls and stamps[anchor] - last_recall >= config.query_every
                    and coverage.is_recall(stamps[anchor], frame.depth, frame.K, poses[i])):
                seen = coverage.seen_share(stamps[anchor], frame.depth, frame.K, poses[i])
                _score(result, "recall", None, stamps[anchor], frame, predictions, best, seen)
                result.planned["recall"] += 1
                last_recall = stamps[anchor]
        mask = dynamic_mask(frame) if dynamic_mask is not None else None
        for method in methods:
            start = time.perf_counter()
            method.observe(frame, mask)
            update_ms = (time.perf_counter() - start) * 1e3
            result.timeline.append({"stamp": float(frame.stamp), "method": method.name,
                                    "memory_bytes": int(method.memory_bytes()), "update_ms": update_ms})
        coverage.add(stamps[i], frame.depth, frame.K, poses[i])
        for horizon, j in future.get(i, []):
            predictions = {m.name: _timed_predict(m, poses[j], frame.K) for m in methods}
            pending.setdefault(j, []).append((horizon, i, predictions))
        result.frames += 1
        if progress is not None:
            progress(1)
    groups = sorted(best, key=lambda g: (KIND_ORDER.index(g[0]), g[1] or 0.0))[: config.examples]
    result.examples = [best[g][1] for g in groups]
    return result


def _timed_predict(method: Method, T_world_cam: np.ndarray, K: Intrinsics):
    start = time.perf_counter()
    rgb, valid = method.predict(T_world_cam, K)
    return rgb, np.asarray(valid, dtype=bool), (time.perf_counter() - start) * 1e3


def _score(result: SequenceResult, kind: str, horizon, anchor_stamp: float, frame, predictions,
           best: dict | None, seen: float | None = None) -> None:
    """Score every method's prediction of ``frame``.

    ``best`` (target group -> (coverage, Example)) keeps, per group, the target the first method's
    memory covers most: an example that shows the memory rather than the renderer's hole filling.
    """
    moving = getattr(frame, "motion_mask", None)
    for name, (rgb, valid, predict_ms) in predictions.items():
        height, width = rgb.shape[:2]  # renderers may crop a ragged edge of whole latent cells
        observed = frame.rgb[:height, :width]
        whole_ssim, covered_ssim = ssim_and_covered(rgb, observed, valid)
        static = psnr(rgb, observed, ~moving[:height, :width]) if moving is not None else float("nan")
        result.scores.append(Score(
            kind=kind, method=name, horizon=horizon, anchor_stamp=float(anchor_stamp),
            target_stamp=float(frame.stamp), psnr=psnr(rgb, observed), ssim=whole_ssim,
            psnr_covered=psnr(rgb, observed, valid), ssim_covered=covered_ssim,
            coverage=float(valid.mean()), psnr_static=static, predict_ms=predict_ms,
            seen=float("nan") if seen is None else seen))
    if best is None:
        return
    coverage = float(next(iter(predictions.values()))[1].mean())
    group = (kind, horizon)
    if group not in best or coverage > best[group][0]:
        example = Example(kind, horizon, float(frame.stamp), frame.rgb,
                          {name: (rgb, valid) for name, (rgb, valid, _) in predictions.items()}, moving)
        best[group] = (coverage, example)


KIND_ORDER = ("future", "revisit", "recall")  # target kinds in reports and examples


def target_group(kind: str, horizon: float | None) -> str:
    """Name of a target group in summaries: ``"revisit"``, ``"recall"`` or ``"future@<h>s"``."""
    return kind if kind in ("revisit", "recall") else f"future@{horizon:g}s"


def target_title(kind: str, horizon: float | None) -> str:
    """A target group in words, for figures."""
    return {"revisit": "revisit", "recall": "out-of-view recall"}.get(kind) or f"future view {horizon:g} s ahead"


def summarise(scores: Sequence[Score], methods: Sequence[str], horizons: Sequence[float]) -> list[dict]:
    """One row per method: mean PSNR / SSIM (whole, covered) per horizon and for revisits.

    Keys: ``method``, then for each target group ``g`` in ``future@<h>s`` and ``revisit``:
    ``<g>.psnr``, ``<g>.ssim``, ``<g>.psnr_covered``, ``<g>.ssim_covered``, ``<g>.coverage``,
    ``<g>.psnr_static``, ``<g>.n`` (and ``recall.seen``: the share any earlier frame saw); and
    ``predict_ms`` (median). Means skip NaN (no covered pixel).
    """
    rows = []
    for name in methods:
        row: dict = {"method": name}
        mine = [s for s in scores if s.method == name]
        groups = [(target_group("future", h), [s for s in mine if s.kind == "future" and s.horizon == h])
                  for h in horizons]
        for kind in ("revisit", "recall"):
            groups.append((target_group(kind, None), [s for s in mine if s.kind == kind]))
        for group, items in groups:
            row[f"{group}.n"] = len(items)
            keys = ("psnr", "ssim", "psnr_covered", "ssim_covered", "coverage", "psnr_static")
            for key in keys + (("seen",) if group == "recall" else ()):
                values = np.array([getattr(s, key) for s in items], dtype=np.float64)
                finite = values[np.isfinite(values)]
                row[f"{group}.{key}"] = float(finite.mean()) if finite.size else float("nan")
        times = [s.predict_ms for s in mine]
        row["predict_ms"] = float(np.median(times)) if times else float("nan")
        rows.append(row)
    return rows
