"""A Kinect-class sensor model applied to exact renders (``SimConfig(noise="kinect")``).

Real RGB-D cameras are not clean: depth noise grows with range (Nguyen et al. 2012 for the
Kinect: sigma = 1.2 mm + 1.9 mm * (z - 0.4)^2), depth is quantised in disparity, there are holes at
depth edges (with an IR shadow on one side), on dark surfaces and below the minimum range, depth is
slightly misregistered with colour, auto-exposure drifts and motion blurs the colour image.
Everything is drawn from a generator seeded by (scene seed, time), so noisy runs stay repeatable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class KinectModel:
    """Parameters of the sensor model (defaults: a Kinect v1 / Xtion-class camera at 640x480).

    Pixel quantities scale with the image width relative to 640.
    """

    min_range: float = 0.5  # metres: closer returns are holes
    edge_jump: float = 0.05  # relative depth jump that makes an edge hole
    shadow_px: float = 4.0  # IR shadow width left of foreground edges (at 640 px wide)
    dark_luma: float = 0.12  # albedo below this starts losing returns
    speckle: float = 0.003  # random dropout fraction
    misregistration_px: float = 2.0  # max depth-to-colour shift (at 640 px wide)
    exposure_drift: float = 0.08  # relative auto-exposure wobble
    read_noise: float = 2.0  # colour noise std (8-bit levels), plus shot noise
    exposure_s: float = 0.03  # colour exposure time for motion blur

    def shift(self, seed: int, width: int) -> tuple[int, int]:
        """Fixed depth-to-colour misregistration of one camera (pixels, (du, dv))."""
        rng = np.random.default_rng(np.random.SeedSequence([seed, 11]))
        px = self.misregistration_px * width / 640.0
        return int(round(rng.uniform(-px, px))), int(round(rng.uniform(-px / 2, px / 2)))

    def apply(self, rgb, depth, albedo_luma, seed: int, t: float, blur_px: tuple[float, float] = (0.0, 0.0)):
        """Noisy ``(rgb (H, W, 3) uint8, depth (H, W) float32)`` from exact ones at time ``t``.

        ``blur_px`` is the colour image's motion during the exposure, in pixels (du, dv).
        """
        rng = np.random.default_rng(np.random.SeedSequence([seed, 13, int(round(t * 1e6))]))
        H, W = depth.shape
        scale = W / 640.0
        img = _motion_blur(rgb.astype(np.float32), blur_px)
        phase = np.random.default_rng(np.random.SeedSequence([seed, 12])).uniform(0, 2 * math.pi, 2)
        luma = float(img.mean()) + 1.0
        gain = min(max((110.0 / luma) ** 0.5, 0.75), 1.5)
        gain *= 1 + self.exposure_drift * (
            math.sin(2 * math.pi * t / 7.0 + phase[0]) + 0.5 * math.sin(2 * math.pi * t / 2.3 + phase[1])
        )
        img = img * gain
        img += rng.standard_normal(img.shape, dtype=np.float32) * (self.read_noise + 0.03 * img)
        rgb_out = np.clip(img, 0, 255).astype(np.uint8)

        z = depth.astype(np.float32)
        valid = z > 0
        sigma = 0.0012 + 0.0019 * (z - 0.4) ** 2
        z = z + rng.standard_normal(z.shape, dtype=np.float32) * sigma
        step = 0.00285 * z * z  # disparity quantisation of a Kinect v1 (1/8 px at 640 px)
        z = np.round(z / np.maximum(step, 1e-6)) * step
        hole = ~valid | (z < self.min_range)
        jump = np.zeros_like(hole)
        dz = np.abs(np.diff(depth, axis=1)) > self.edge_jump * np.maximum(depth[:, 1:], depth[:, :-1])
        jump[:, 1:] |= dz
        jump[:, :-1] |= dz
        dv = np.abs(np.diff(depth, axis=0)) > self.edge_jump * np.maximum(depth[1:], depth[:-1])
        jump[1:] |= dv
        # IR shadow: background just left of a nearer surface gets no return
        fg_right = np.zeros_like(hole)
        fg_right[:, :-1] = depth[:, 1:] < depth[:, :-1] * (1 - self.edge_jump)
        for k in range(1, max(int(round(self.shadow_px * scale)), 1)):
            fg_right[:, :-k] |= fg_right[:, k:]
        p_lost = np.clip((self.dark_luma - albedo_luma) / self.dark_luma, 0, 1) * 0.7 + self.speckle
        hole |= jump | fg_right | (rng.random(z.shape, dtype=np.float32) < p_lost)  # dark surfaces, speckle
        z = np.where(hole, 0.0, z).astype(np.float32)
        du, dv_ = self.shift(seed, W)
        return rgb_out, _shift(z, du, dv_, fill=0.0)


def _shift(img: np.ndarray, du: int, dv: int, fill: float) -> np.ndarray:
    """Translate an image by whole pixels; uncovered borders get ``fill``."""
    out = np.full_like(img, fill)
    H, W = img.shape[:2]
    out[max(dv, 0) : H + min(dv, 0), max(du, 0) : W + min(du, 0)] = img[
        max(-dv, 0) : H - max(dv, 0), max(-du, 0) : W - max(du, 0)
    ]
    return out


def _motion_blur(img: np.ndarray, blur_px: tuple[float, float]) -> np.ndarray:
    """Average of copies shifted along the motion (edges replicated)."""
    length = math.hypot(*blur_px)
    if length < 0.75:
        return img
    n = min(int(math.ceil(length)) + 1, 9)
    H, W = img.shape[:2]
    pad = int(math.ceil(length)) + 1
    padded = np.pad(img, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
    acc = np.zeros_like(img)
    for f in np.linspace(-0.5, 0.5, n):
        du, dv = int(round(f * blur_px[0])), int(round(f * blur_px[1]))
        acc += padded[pad + dv : pad + dv + H, pad + du : pad + du + W]
    return acc / n
