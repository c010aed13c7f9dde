"""Sensor realism for memory-conditioned training batches: how real cameras differ from clean frames.

Colour goes through an exposure / white balance / gamma shared by a sample's context and target
(real cameras differ in their look, and the renderer must draw the colours it is given), then each
context frame gets what a real sensor adds and the target must not show: exposure flicker, read and
shot noise, motion blur, rolling-shutter shear, JPEG, 8-bit quantisation. The context cells' depth
gets the quantisation of Kinect-class and RealSense sensors, holes and flying pixels at depth edges;
their world points move along their rays with it.

All draws come from the numpy ``rng`` of the step (the pixel noise from a device generator seeded
by it), so a batch stays a pure function of ``(seed, rank, step)`` on a given device type; the work
runs on the batch's device.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from mirage_ros.model.config import AugmentConfig

#: Depth step per metre squared (``step = c * z**2``) of the quantisation drawn from: Kinect v1
#: (disparity in 1/8 pixel, 7.5 cm baseline, f 580 px) and a RealSense D4xx at 640x480
#: (1/12 pixel sub-pixel, 5 cm baseline, f 383 px).
DEPTH_STEP_PER_M2 = (2.85e-3, 4.35e-3)
#: A cell is on a depth edge when its 3x3 neighbourhood's depths differ by more than this ratio.
EDGE_RATIO = 1.1

# JPEG's example quantisation tables (ITU-T T.81, Annex K), luminance and chrominance.
_JPEG_LUMA = np.array([
    [16, 11, 10, 16, 24, 40, 51, 61], [12, 12, 14, 19, 26, 58, 60, 55],
    [14, 13, 16, 24, 40, 57, 69, 56], [14, 17, 22, 29, 51, 87, 80, 62],
    [18, 22, 37, 56, 68, 109, 103, 77], [24, 35, 55, 64, 81, 104, 113, 92],
    [49, 64, 78, 87, 103, 121, 120, 101], [72, 92, 95, 98, 112, 100, 103, 99]], np.float32)
_JPEG_CHROMA = np.full((8, 8), 99, np.float32)
_JPEG_CHROMA[:4, :4] = [[17, 18, 24, 47], [18, 21, 26, 66], [24, 26, 56, 99], [47, 66, 99, 99]]
_RGB_TO_YCBCR = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]],
                         np.float32)


def _uniform(rng: np.random.Generator, low: float, high: float, shape, device) -> torch.Tensor:
    return torch.from_numpy(rng.uniform(low, high, shape).astype(np.float32)).to(device)


def sensor_batch(batch: dict, cfg: AugmentConfig, h: int, w: int, rng: np.random.Generator) -> None:
    """Augment a ``memory_data`` batch in place: ``context_rgb (B, K, 3, H, W)``, ``target_rgb
    (B, 3, H, W)`` in ``[0, 1]``; ``context_points (B, K, M, 3)``, ``context_ok``,
    ``context_depth (B, K, M)`` with ``M = h * w`` latent cells, ``context_origin (B, K, 3)``,
    ``context_far_depth (B, K)``."""
    ctx, target = batch["context_rgb"], batch["target_rgb"]
    b, k = ctx.shape[:2]
    dev = ctx.device
    gain = (2.0 ** _uniform(rng, -cfg.exposure_stops, cfg.exposure_stops, (b, 1, 1, 1), dev)
            * (1.0 + _uniform(rng, -cfg.white_balance, cfg.white_balance, (b, 3, 1, 1), dev)))
    gamma = 1.0 + _uniform(rng, -cfg.gamma, cfg.gamma, (b, 1, 1, 1), dev)

    def look(x, gain, gamma):
        return (x * gain).clamp(1e-6, 1.0) ** gamma

    batch["target_rgb"] = look(target, gain, gamma)
    frames = look(ctx, gain[:, None], gamma[:, None]).flatten(0, 1)  # (B*K, 3, H, W)
    n = frames.shape[0]
    # the sensor's effects reach the context of a share of the samples only: the others keep
    # clean frames, so the networks still learn to reproduce what they are given exactly
    sensed = np.repeat(rng.random(b) < cfg.probability, k)  # (B*K,)
    on = torch.from_numpy(sensed.astype(np.float32)).to(dev).view(n, 1, 1, 1)
    frames = frames * 2.0 ** (on * _uniform(rng, -cfg.flicker_stops, cfg.flicker_stops, (n, 1, 1, 1), dev))
    frames = motion_blur(frames, sensed & (rng.random(n) < cfg.blur_probability), cfg.blur_max_px, rng)
    frames = rolling_shear(frames, sensed & (rng.random(n) < cfg.shear_probability), cfg.shear_max, rng)
    read = on * _uniform(rng, 0.0, cfg.noise, (n, 1, 1, 1), dev)
    shot = on * _uniform(rng, 0.0, cfg.noise, (n, 1, 1, 1), dev)
    # tens of millions of normals per step: drawn on the device (from the step's generator) since
    # drawing them with numpy on the host took most of a training step on a GPU
    generator = torch.Generator(device=dev).manual_seed(int(rng.integers(1 << 62)))
    noise = torch.randn(frames.shape, generator=generator, device=dev)
    frames = (frames + noise * (read + shot * frames.clamp(0, 1).sqrt())).clamp(0, 1)
    chosen = sensed & (rng.random(n) < cfg.jpeg_probability)
    if chosen.any() and frames.shape[-1] % 16 == 0 and frames.shape[-2] % 16 == 0:  # JPEG's 16x16 macroblocks
        quality = rng.uniform(*cfg.jpeg_quality, int(chosen.sum()))
        index = torch.from_numpy(np.flatnonzero(chosen)).to(dev)
        frames[index] = jpeg(frames[index], quality)
    batch["context_rgb"] = (torch.round(frames.clamp(0, 1) * 255.0) / 255.0).view_as(ctx)
    _sensor_depth(batch, cfg, h, w, sensed, rng)


def motion_blur(frames: torch.Tensor, chosen: np.ndarray, max_px: int, rng: np.random.Generator) -> torch.Tensor:
    """``(N, 3, H, W)``: the ``chosen`` frames blurred along a line of random angle and length
    (3 to ``max_px`` pixels), the others unchanged."""
    if not chosen.any() or max_px < 3:
        return frames
    size = max_px | 1
    centre = size // 2
    out = frames.clone()
    index = np.flatnonzero(chosen)
    kernels = np.zeros((len(index), 1, size, size), np.float32)
    steps = np.linspace(-0.5, 0.5, 4 * size)
    for j in range(len(index)):
        length, angle = rng.uniform(3, max_px), rng.uniform(0, np.pi)
        x = np.rint(centre + steps * length * np.cos(angle)).astype(int)
        y = np.rint(centre + steps * length * np.sin(angle)).astype(int)
        kernels[j, 0, y, x] = 1.0
        kernels[j] /= kernels[j].sum()
    picked = frames[torch.from_numpy(index).to(frames.device)]  # (n, 3, H, W)
    weight = torch.from_numpy(np.repeat(kernels, 3, axis=0)).to(frames.device)  # (3n, 1, s, s)
    blurred = F.conv2d(F.pad(picked.reshape(1, -1, *picked.shape[2:]), [centre] * 4, mode="replicate"),
                       weight, groups=weight.shape[0])
    out[torch.from_numpy(index).to(frames.device)] = blurred.view_as(picked)
    return out


def rolling_shear(frames: torch.Tensor, chosen: np.ndarray, max_shear: float, rng: np.random.Generator
                  ) -> torch.Tensor:
    """``(N, 3, H, W)``: the ``chosen`` frames' rows shifted sideways in proportion to their height
    (a rolling shutter under a panning camera: up to ``max_shear`` pixel per row)."""
    if not chosen.any():
        return frames
    index = torch.from_numpy(np.flatnonzero(chosen)).to(frames.device)
    picked = frames[index]
    n, _, h, w = picked.shape
    theta = np.zeros((n, 2, 3), np.float32)
    theta[:, 0, 0] = theta[:, 1, 1] = 1.0
    theta[:, 0, 1] = rng.uniform(-max_shear, max_shear, n) * h / w  # normalised: x' = x + shear * y * H / W
    grid = F.affine_grid(torch.from_numpy(theta).to(frames.device), list(picked.shape), align_corners=False)
    out = frames.clone()
    out[index] = F.grid_sample(picked, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return out


def _dct_matrix(device) -> torch.Tensor:
    k, x = np.meshgrid(np.arange(8), np.arange(8), indexing="ij")
    d = np.cos((2 * x + 1) * k * np.pi / 16) * np.where(k == 0, math.sqrt(1 / 8), math.sqrt(2 / 8))
    return torch.from_numpy(d.astype(np.float32)).to(device)


def _quant_table(base: np.ndarray, quality: np.ndarray) -> np.ndarray:
    """``(N, 8, 8)`` tables of the libjpeg quality scaling of ``base`` for each ``quality`` (1-100)."""
    scale = np.where(quality < 50, 5000.0 / quality, 200.0 - 2.0 * quality)[:, None, None]
    return np.clip(np.floor((base[None] * scale + 50.0) / 100.0), 1, 255).astype(np.float32)


def jpeg(frames: torch.Tensor, quality: np.ndarray) -> torch.Tensor:
    """``(N, 3, H, W)`` in ``[0, 1]`` through JPEG's loss at ``quality (N,)``: YCbCr, chroma 2x2
    subsampled, 8x8 block DCT quantised by the scaled example tables. ``H``, ``W`` multiples of 16."""
    n, _, h, w = frames.shape
    dev = frames.device
    ycc = torch.einsum("ij,njhw->nihw", torch.from_numpy(_RGB_TO_YCBCR).to(dev), frames * 255.0)
    ycc[:, 0] -= 128.0
    chroma = F.interpolate(F.avg_pool2d(ycc[:, 1:], 2), scale_factor=2, mode="nearest")
    ycc = torch.cat([ycc[:, :1], chroma], 1)
    d = _dct_matrix(dev)
    blocks = ycc.view(n, 3, h // 8, 8, w // 8, 8).permute(0, 1, 2, 4, 3, 5)  # (N, 3, by, bx, 8, 8)
    coeff = d @ blocks @ d.T
    tables = torch.from_numpy(np.stack([_quant_table(_JPEG_LUMA, quality)] + [_quant_table(_JPEG_CHROMA, quality)] * 2,
                                       axis=1)).to(dev)[:, :, None, None]  # (N, 3, 1, 1, 8, 8)
    blocks = d.T @ (torch.round(coeff / tables) * tables) @ d
    ycc = blocks.permute(0, 1, 2, 4, 3, 5).reshape(n, 3, h, w)
    ycc[:, 0] += 128.0
    rgb = torch.einsum("ij,njhw->nihw", torch.linalg.inv(torch.from_numpy(_RGB_TO_YCBCR).to(dev)), ycc)
    return (rgb / 255.0).clamp(0, 1)


def _sensor_depth(batch: dict, cfg: AugmentConfig, h: int, w: int, sensed: np.ndarray,
                  rng: np.random.Generator) -> None:
    """The depth effects on the context cells of the ``sensed (B*K,)`` frames."""
    depth, ok = batch["context_depth"], batch["context_ok"]
    b, k, m = depth.shape
    dev = depth.device
    z = depth.view(b * k, h, w)
    valid = ok.view(b * k, h, w).clone()
    new = z.clone()
    # flying pixels: a cell on a depth edge takes a depth between its neighbours'
    near = torch.where(valid, z, torch.inf)
    far = torch.where(valid, z, 0.0)
    low = -F.max_pool2d(-near[:, None], 3, 1, 1)[:, 0]
    high = F.max_pool2d(far[:, None], 3, 1, 1)[:, 0]
    edge = valid & torch.isfinite(low) & (high > EDGE_RATIO * low)
    per_frame = torch.from_numpy(sensed).to(dev).view(b * k, 1, 1)
    fly = (edge & per_frame & torch.from_numpy(rng.random((b * k, 1, 1)) < cfg.flying_pixel_probability).to(dev)
           & torch.from_numpy(rng.random((b * k, h, w)) < 0.5).to(dev))
    mix = _uniform(rng, 0.0, 1.0, (b * k, h, w), dev)
    new = torch.where(fly, low + mix * (high - low), new)
    # quantisation of structured-light / stereo depth: the depth step grows with z**2
    step = torch.from_numpy(rng.choice(DEPTH_STEP_PER_M2, (b * k, 1, 1)).astype(np.float32)).to(dev)
    quantise = per_frame & torch.from_numpy(rng.random((b * k, 1, 1)) < cfg.depth_quantisation_probability).to(dev)
    disparity = torch.round(1.0 / (step * new.clamp(min=1e-3)))
    new = torch.where(quantise & valid, 1.0 / (step * disparity.clamp(min=1.0)), new)
    # holes: rectangles of cells without a reading (absorbing or shiny surfaces, shadows)
    holes = np.zeros((b * k, h, w), bool)
    for j in np.flatnonzero(sensed):
        budget = rng.uniform(0.0, cfg.depth_hole_fraction) * h * w
        for _ in range(rng.integers(1, 4)):
            rh = int(np.clip(np.sqrt(budget / 3 * rng.uniform(0.3, 3.0)), 1, h))
            rw = int(np.clip(budget / 3 / rh, 1, w))
            y, x = rng.integers(h - rh + 1), rng.integers(w - rw + 1)
            holes[j, y: y + rh, x: x + rw] = True
    holes = valid & torch.from_numpy(holes).to(dev)
    valid &= ~holes
    # a cell that loses its reading goes where the runtime puts a frame's cells without one: to
    # the frame's far depth (the newest-frame overlay's points), out of the fused memory
    far = batch["context_far_depth"].view(b * k, 1, 1)
    ratio = torch.where(valid | holes, torch.where(holes, far, new) / z.clamp(min=1e-6), 1.0).view(b, k, m)
    origin = batch["context_origin"][:, :, None]  # (B, K, 1, 3)
    batch["context_points"] = origin + (batch["context_points"] - origin) * ratio[..., None]
    batch["context_depth"] = torch.where(valid, new, 0.0).view(b, k, m)
    batch["context_ok"] = valid.view(b, k, m)
