"""Image fidelity metrics: PSNR and SSIM, whole frame and covered-region (masked).

This is the project's one copy of metric code. The SSIM formula (:func:`ssim_map`) is written with
arithmetic only, so the same function serves numpy arrays here and torch tensors in the training
loss (``mirage_ros.model.losses`` passes a torch blur); only the Gaussian window differs in how it
is applied.

Images are compared in ``[0, 1]``: ``(H, W, 3) uint8`` inputs are divided by 255. SSIM follows
Wang et al. 2004: Gaussian window sigma 1.5, 11 taps, ``K1 = 0.01``, ``K2 = 0.03``, mirror padding.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
from scipy.ndimage import gaussian_filter

from mirage_ros.errors import InvalidInput

SSIM_SIGMA = 1.5
SSIM_RADIUS = 5  # 11 taps
SSIM_C1 = 0.01**2
SSIM_C2 = 0.03**2
#: PSNR is capped here (an exact match has infinite PSNR, which would swamp any average).
PSNR_MAX_DB = 100.0


def gaussian_window() -> np.ndarray:
    """The normalised 1-D SSIM window, ``(2 * SSIM_RADIUS + 1,) float64``."""
    x = np.arange(-SSIM_RADIUS, SSIM_RADIUS + 1, dtype=np.float64)
    w = np.exp(-0.5 * (x / SSIM_SIGMA) ** 2)
    return w / w.sum()


def ssim_map(x, y, blur: Callable):
    """Per-pixel SSIM of two same-shaped images in ``[0, 1]`` (numpy arrays or torch tensors).

    Args:
        x, y: images of identical shape; any layout that ``blur`` understands.
        blur: applies the Gaussian window over the two spatial axes, keeping the shape.

    Returns:
        SSIM map of the same shape and type as ``x`` (1 = identical neighbourhoods).
    """
    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x * mu_x
    var_y = blur(y * y) - mu_y * mu_y
    cov = blur(x * y) - mu_x * mu_y
    num = (2 * mu_x * mu_y + SSIM_C1) * (2 * cov + SSIM_C2)
    den = (mu_x * mu_x + mu_y * mu_y + SSIM_C1) * (var_x + var_y + SSIM_C2)
    return num / den


def _blur_hwc(image: np.ndarray) -> np.ndarray:
    """Gaussian window over the first two axes of an ``(H, W, C)`` array (mirror padding)."""
    return gaussian_filter(
        image, sigma=(SSIM_SIGMA, SSIM_SIGMA, 0), mode="mirror", truncate=SSIM_RADIUS / SSIM_SIGMA
    )


def _as_unit_float(image: np.ndarray, name: str) -> np.ndarray:
    """``(H, W, 3)`` uint8 or float image -> ``(H, W, 3) float64`` in ``[0, 1]``."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise InvalidInput(name, f"must be (H, W, 3), got shape {image.shape}")
    if image.dtype == np.uint8:
        return image.astype(np.float64) / 255.0
    return image.astype(np.float64)


def _check_pair(pred, target, mask):
    p = _as_unit_float(pred, "pred")
    t = _as_unit_float(target, "target")
    if p.shape != t.shape:
        raise InvalidInput("pred", f"shape {p.shape} differs from target {t.shape}")
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != p.shape[:2]:
            raise InvalidInput("mask", f"must be (H, W) = {p.shape[:2]}, got {mask.shape}")
    return p, t, mask


def mse(pred: np.ndarray, target: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean squared error of ``pred`` vs ``target``, both ``(H, W, 3)``, colours in ``[0, 1]``
    (``uint8`` inputs are scaled); over ``mask`` ``(H, W) bool`` pixels when given (NaN if none)."""
    p, t, mask = _check_pair(pred, target, mask)
    err = (p - t) ** 2
    if mask is not None:
        if not mask.any():
            return float("nan")
        err = err[mask]
    return float(err.mean())


def psnr(pred: np.ndarray, target: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Peak signal-to-noise ratio in dB of ``pred`` vs ``target``, both ``(H, W, 3)``.

    Args:
        pred, target: ``uint8`` (0..255) or float (0..1) images of the same shape.
        mask: ``(H, W) bool``; when given only those pixels count (covered-region PSNR).

    Returns:
        PSNR in dB, capped at ``PSNR_MAX_DB``; NaN when ``mask`` selects no pixel.
    """
    err = mse(pred, target, mask)
    if math.isnan(err):
        return err
    return PSNR_MAX_DB if err <= 10 ** (-PSNR_MAX_DB / 10) else -10.0 * math.log10(err)


def psnr_bound(people_mse: np.ndarray, scene_psnr_db: float) -> float:
    """Best mean per-frame PSNR (dB) of a model whose error is ``scene_psnr_db`` everywhere but
    where people it cannot predict stand: the frame mean of ``-10 log10(m + 10^(-scene/10))``.

    Args:
        people_mse: ``(N,)`` per target frame, the mean squared error (colours in ``[0, 1]``) of
            the people-free view against the observed one: what the people alone cost.
        scene_psnr_db: the model's PSNR on everything else.
    """
    m = np.asarray(people_mse, dtype=np.float64) + 10.0 ** (-scene_psnr_db / 10.0)
    return float(np.mean(np.minimum(-10.0 * np.log10(m), PSNR_MAX_DB))) if m.size else float("nan")


def ssim(pred: np.ndarray, target: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean SSIM of ``pred`` vs ``target``, both ``(H, W, 3)``, averaged over channels.

    Args:
        pred, target: ``uint8`` (0..255) or float (0..1) images of the same shape.
        mask: ``(H, W) bool``; when given, the SSIM map is averaged over those pixels only (the
            windows still see their neighbours: the score of the covered region in context).

    Returns:
        SSIM in ``[-1, 1]``; NaN when ``mask`` selects no pixel.
    """
    p, t, mask = _check_pair(pred, target, mask)
    return _mean_over(ssim_map(p, t, _blur_hwc).mean(axis=2), mask)


def ssim_and_covered(pred: np.ndarray, target: np.ndarray, mask: np.ndarray) -> tuple[float, float]:
    """``(ssim(pred, target), ssim(pred, target, mask))`` from one SSIM map (computed once)."""
    p, t, mask = _check_pair(pred, target, mask)
    smap = ssim_map(p, t, _blur_hwc).mean(axis=2)
    return _mean_over(smap, None), _mean_over(smap, mask)


def _mean_over(smap: np.ndarray, mask: np.ndarray | None) -> float:
    """Mean of ``smap`` over ``mask`` (all of it when None); NaN when ``mask`` selects no pixel."""
    if mask is not None:
        if not mask.any():
            return float("nan")
        return float(smap[mask].mean())
    return float(smap.mean())


# --- Binary masks (moving-object flags vs ground-truth motion masks) ---------------------------


def _check_masks(pred: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred = np.asarray(pred, dtype=bool)
    truth = np.asarray(truth, dtype=bool)
    if pred.shape != truth.shape:
        raise InvalidInput("pred", f"shape {pred.shape} differs from truth {truth.shape}")
    return pred, truth


def mask_counts(pred: np.ndarray, truth: np.ndarray) -> tuple[int, int, int]:
    """True positives, false positives and false negatives of two ``(H, W) bool`` masks.

    Sum them over a sequence and score with :func:`iou_from_counts` / :func:`f1_from_counts`
    (pixel-level micro average: frames with large objects weigh more, empty frames still count
    their false positives).
    """
    pred, truth = _check_masks(pred, truth)
    tp = int(np.count_nonzero(pred & truth))
    return tp, int(np.count_nonzero(pred)) - tp, int(np.count_nonzero(truth)) - tp


def iou_from_counts(tp: int, fp: int, fn: int) -> float:
    """Intersection over union ``tp / (tp + fp + fn)``; NaN when both masks are empty."""
    total = tp + fp + fn
    return float("nan") if total == 0 else tp / total


def f1_from_counts(tp: int, fp: int, fn: int) -> float:
    """F1 (Dice) ``2 tp / (2 tp + fp + fn)``; NaN when both masks are empty."""
    total = 2 * tp + fp + fn
    return float("nan") if total == 0 else 2 * tp / total


def mask_iou(pred: np.ndarray, truth: np.ndarray) -> float:
    """Per-pixel IoU of ``(H, W) bool`` masks; NaN when both are empty."""
    return iou_from_counts(*mask_counts(pred, truth))


def mask_f1(pred: np.ndarray, truth: np.ndarray) -> float:
    """Per-pixel F1 of ``(H, W) bool`` masks; NaN when both are empty."""
    return f1_from_counts(*mask_counts(pred, truth))


def region_recall_counts(
    pred: np.ndarray, instance_ids: np.ndarray, min_coverage: float = 0.5, min_pixels: int = 1
) -> tuple[int, int]:
    """How many ground-truth regions the predicted mask finds.

    Args:
        pred: ``(H, W) bool`` predicted mask.
        instance_ids: ``(H, W)`` integer ground-truth region ids, 0 = none.
        min_coverage: a region counts as found when at least this share of its pixels is flagged.
        min_pixels: regions smaller than this (barely visible) are not counted.

    Returns:
        ``(found, total)``; recall is ``found / total``.
    """
    pred, _ = _check_masks(pred, np.asarray(instance_ids) != 0)
    ids = np.asarray(instance_ids).ravel()
    size = np.bincount(ids)
    hit = np.bincount(ids, weights=pred.ravel(), minlength=size.size)
    counted = size[1:] >= max(min_pixels, 1)
    found = counted & (hit[1:] >= min_coverage * size[1:])
    return int(found.sum()), int(counted.sum())
