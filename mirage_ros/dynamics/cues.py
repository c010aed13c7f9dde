"""Per-pixel disagreement cues between a live RGB-D frame and the memory's rendering of it.

Every cue is an evidence map in ``[0, 1]`` (0 = agrees, 1 = clearly different) defined only where
the memory is valid. They are built to survive real Kinect-class data, not only the simulator:

- **Depth** tests "something is now *nearer* than the memory" against the *nearest* rendered depth
  in a small window, so depth/colour misregistration and blurred silhouettes at edges do not fire,
  and the tolerance grows with range like structured-light / ToF noise
  (``sigma(z) = base + quadratic * z**2 + relative * z``).
- **Photometric** compares grey levels after dividing out a global gain (auto-exposure), against
  the min/max of the rendering in a window (misregistration, decoder blur).
- **Latent** is the cosine distance between the encoder features of the live frame and the warped
  memory latents, at latent resolution.

All functions are pure; shapes are stated in each docstring.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from mirage_ros.errors import InvalidInput
from mirage_ros.geometry import upsample_cells, valid_depth

#: Rec. 601 luma weights for RGB -> grey.
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def ramp(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Linear evidence ``0`` at ``x <= lo`` to ``1`` at ``x >= hi``; ``(...) -> (...) float32``."""
    return np.clip((np.asarray(x, np.float32) - lo) / max(hi - lo, 1e-9), 0.0, 1.0)


def depth_sigma(depth: np.ndarray, base: float, quadratic: float, relative: float) -> np.ndarray:
    """Depth noise ``(H, W) float32`` metres at range ``depth``: ``base + quadratic*z^2 + relative*z``."""
    z = np.asarray(depth, np.float32)
    return base + quadratic * z * z + relative * z


@dataclass(frozen=True)
class DepthCue:
    """Depth comparison of a live frame against the rendered memory, all ``(H, W)``.

    Attributes:
        nearer: ``float32`` evidence in ``[0, 1]`` that a new surface is in front of the memory.
        farther: ``bool``, live clearly *behind* the memory (something the memory holds has left,
            or a disocclusion): never a moving-object cue at this pixel.
        available: ``bool``, both the live depth and the rendered depth are valid.
    """

    nearer: np.ndarray
    farther: np.ndarray
    available: np.ndarray


def depth_cue(
    live_depth: np.ndarray,
    rendered_depth: np.ndarray,
    rendered_valid: np.ndarray,
    window: int,
    sigma: tuple[float, float, float],
    sigmas: tuple[float, float],
) -> DepthCue:
    """Where is the live surface nearer (or farther) than everything the memory shows nearby?

    Args:
        live_depth: ``(H, W)`` metres, 0/NaN = no reading.
        rendered_depth: ``(H, W)`` metres, the memory's depth at the live pose.
        rendered_valid: ``(H, W) bool`` where the memory covers the pixel.
        window: odd side of the square window searched for the nearest/farthest rendered depth
            (absorbs misregistration and coarse latent-resolution renderings).
        sigma: ``(base, quadratic, relative)`` of :func:`depth_sigma`.
        sigmas: ``(lo, hi)`` in units of sigma: evidence ramps from 0 at ``lo`` to 1 at ``hi``.

    Returns:
        :class:`DepthCue`.
    """
    live_ok = valid_depth(live_depth)
    mem_ok = np.asarray(rendered_valid, bool) & valid_depth(rendered_depth)
    live = np.where(live_ok, live_depth, 0.0).astype(np.float32)
    mem = np.where(mem_ok, rendered_depth, np.inf).astype(np.float32)
    nearest = ndimage.minimum_filter(mem, size=window, mode="nearest")
    farthest = ndimage.maximum_filter(np.where(mem_ok, mem, 0.0), size=window, mode="nearest")
    available = live_ok & mem_ok
    with np.errstate(invalid="ignore", over="ignore"):
        nearer_sig = (nearest - live) / depth_sigma(nearest, *sigma)
        farther_sig = (live - farthest) / depth_sigma(farthest, *sigma)
    nearer = np.where(available, ramp(np.nan_to_num(nearer_sig, posinf=0.0), *sigmas), 0.0)
    farther = available & (np.nan_to_num(farther_sig) > sigmas[0])
    return DepthCue(nearer.astype(np.float32), farther, available)


def to_grey(rgb: np.ndarray, name: str = "rgb") -> np.ndarray:
    """``(H, W, 3) uint8`` RGB -> ``(H, W) float32`` grey in ``[0, 1]``."""
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise InvalidInput(name, f"must be (H, W, 3) RGB, got shape {rgb.shape}")
    return (rgb.astype(np.float32) @ _LUMA) / 255.0


def estimate_gain(
    live_grey: np.ndarray, rendered_grey: np.ndarray, mask: np.ndarray, limits: tuple[float, float]
) -> float:
    """Global exposure gain ``g`` with ``live ~ g * rendered``: median ratio over ``mask``.

    Dark and saturated pixels are ignored (ratios there are noise or clipped); the median makes
    the estimate robust to the very objects being detected. Clipped to ``limits``; 1 when fewer
    than 100 usable pixels.

    Args:
        live_grey, rendered_grey: ``(H, W) float32`` in ``[0, 1]``.
        mask: ``(H, W) bool`` pixels allowed in the estimate.
        limits: ``(min_gain, max_gain)``.
    """
    usable = mask & (rendered_grey > 0.05) & (live_grey > 0.05) & (live_grey < 0.98)
    if np.count_nonzero(usable) < 100:
        return 1.0
    gain = float(np.median(live_grey[usable] / rendered_grey[usable]))
    return float(np.clip(gain, *limits))


def photometric_cue(
    live_rgb: np.ndarray,
    rendered_rgb: np.ndarray,
    rendered_valid: np.ndarray,
    window: int,
    levels: tuple[float, float],
    gain_limits: tuple[float, float],
) -> tuple[np.ndarray, float]:
    """Gain-normalised colour residual against the rendering's local min/max.

    The gain ``g`` is estimated on grey levels (one exposure for all channels). Per channel, the
    residual is how far ``live / g`` falls outside ``[min, max]`` of the rendering in a ``window``
    neighbourhood, so a one-pixel shift or a blurred edge gives ~0; the largest channel counts
    (a red shirt on a grey wall of the same brightness still differs).

    Args:
        live_rgb, rendered_rgb: ``(H, W, 3) uint8``.
        rendered_valid: ``(H, W) bool``.
        window: odd window side in pixels.
        levels: ``(lo, hi)`` residual in intensity units ``[0, 1]`` mapped to evidence 0..1.
        gain_limits: allowed range of the exposure gain.

    Returns:
        evidence ``(H, W) float32`` in ``[0, 1]`` (0 where the memory is invalid), and the gain.
    """
    valid = np.asarray(rendered_valid, bool)
    gain = estimate_gain(to_grey(live_rgb, "live_rgb"), to_grey(rendered_rgb, "rendered_rgb"),
                         valid, gain_limits)
    live = np.asarray(live_rgb, np.float32) / gain
    rendered = np.asarray(rendered_rgb, np.uint8)  # filters run on bytes: 4x less memory traffic
    size = (window, window, 1)
    lo = ndimage.minimum_filter(np.where(valid[..., None], rendered, 255), size=size, mode="nearest")
    hi = ndimage.maximum_filter(np.where(valid[..., None], rendered, 0), size=size, mode="nearest")
    residual = np.maximum(np.maximum(live - hi, lo - live), 0.0).max(axis=2) / 255.0
    return np.where(valid, ramp(residual, *levels), 0.0).astype(np.float32), gain


def latent_cue(
    live_latent: np.ndarray,
    warped_latent: np.ndarray,
    warped_valid: np.ndarray,
    shape: tuple[int, int],
    levels: tuple[float, float],
) -> np.ndarray:
    """Cosine distance of encoder features, live vs memory, upsampled to pixels.

    Args:
        live_latent: ``(C, h, w) float32`` encoder output for the live frame.
        warped_latent: ``(C, h, w) float32`` memory read-out at the live pose.
        warped_valid: ``(h, w) bool`` cells the memory covers.
        shape: ``(H, W)`` of the output; cell ``(i, j)`` covers pixels ``[s*i, s*i+s)`` with
            ``s = H // h`` (ragged border pixels copy the last cell).
        levels: ``(lo, hi)`` cosine distance (in ``[0, 2]``) mapped to evidence 0..1.

    Returns:
        ``(H, W) float32`` evidence in ``[0, 1]``; 0 where the memory is invalid.
    """
    live = np.asarray(live_latent, np.float32)
    mem = np.asarray(warped_latent, np.float32)
    if live.ndim != 3 or live.shape != mem.shape:
        raise InvalidInput(
            "warped_latent", f"must match live_latent (C, h, w) {live.shape}, got {mem.shape}"
        )
    valid = np.asarray(warped_valid, bool)
    if valid.shape != live.shape[1:]:
        raise InvalidInput("warped_valid", f"must be (h, w) {live.shape[1:]}, got {valid.shape}")
    dot = np.einsum("chw,chw->hw", live, mem)
    norms = np.linalg.norm(live, axis=0) * np.linalg.norm(mem, axis=0)
    distance = 1.0 - dot / np.maximum(norms, 1e-6)
    evidence = np.where(valid, ramp(distance, *levels), 0.0)
    stride = max(shape[0] // evidence.shape[0], 1)
    return upsample_cells(evidence, stride, shape, repeat_edge=True).astype(np.float32)


def fuse_cues(
    depth: DepthCue,
    appearance: np.ndarray | None,
    memory_valid: np.ndarray,
    appearance_weight_on_depth_agree: float,
) -> np.ndarray:
    """Combine cues into one ``(H, W) float32`` score in ``[0, 1]`` (0 where the memory is invalid).

    - Depth is trusted first: clearly nearer -> its evidence; clearly farther (something left the
      memory's view, a disocclusion) -> 0.
    - Where depth agrees, an appearance change alone is down-weighted by
      ``appearance_weight_on_depth_agree`` (a flat poster or a lighting change is not an occluder),
      so it can only *extend* a region seeded by strong evidence (spatial hysteresis).
    - Where depth is missing (no live return), appearance decides.

    Args:
        depth: :class:`DepthCue`.
        appearance: ``(H, W)`` evidence (photometric and/or latent) or ``None``.
        memory_valid: ``(H, W) bool``.
        appearance_weight_on_depth_agree: in ``[0, 1]``.
    """
    app = np.zeros_like(depth.nearer) if appearance is None else appearance
    score = np.where(
        depth.available,
        np.maximum(depth.nearer, appearance_weight_on_depth_agree * app),
        app,
    )
    score = np.where(depth.farther | ~np.asarray(memory_valid, bool), 0.0, score)
    return score.astype(np.float32)
