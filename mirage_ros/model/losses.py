"""Training losses: L1 + SSIM (+ optional image-gradient L1), optionally restricted to a mask.

SSIM comes from ``mirage_ros.evaluation.metrics.ssim_map`` (the project's one SSIM formula); this
module only supplies the torch Gaussian blur it needs.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from mirage_ros.evaluation.metrics import SSIM_RADIUS, gaussian_window, ssim_map


class GaussianBlur(torch.nn.Module):
    """Separable SSIM window over ``(B, C, H, W)`` with mirror padding (as the numpy metric)."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("window", torch.as_tensor(gaussian_window(), dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        r = SSIM_RADIUS
        kx = self.window.view(1, 1, 1, -1).expand(c, 1, 1, -1)
        ky = self.window.view(1, 1, -1, 1).expand(c, 1, -1, 1)
        x = F.conv2d(F.pad(x, (r, r, 0, 0), mode="reflect"), kx, groups=c)
        return F.conv2d(F.pad(x, (0, 0, r, r), mode="reflect"), ky, groups=c)


class ImageLoss(torch.nn.Module):
    """``l1 * |pred - target| + ssim * (1 - SSIM) / 2 + gradient * |grad pred - grad target|``.

    Args:
        l1, ssim, gradient: term weights (>= 0).

    ``forward(pred, target, mask=None)``: ``(B, 3, H, W)`` images in ``[0, 1]``, optional
    ``(B, 1, H, W)`` weight mask; returns a scalar (mean over pixels weighted by ``mask``).
    """

    def __init__(self, l1: float = 1.0, ssim: float = 0.2, gradient: float = 0.0):
        super().__init__()
        self.w_l1, self.w_ssim, self.w_grad = float(l1), float(ssim), float(gradient)
        self.blur = GaussianBlur()

    def forward(self, pred: torch.Tensor, target: torch.Tensor,
                mask: torch.Tensor | None = None) -> torch.Tensor:
        per_pixel = self.w_l1 * (pred - target).abs().mean(1, keepdim=True)
        if self.w_ssim:
            smap = ssim_map(pred, target, self.blur).mean(1, keepdim=True)
            per_pixel = per_pixel + self.w_ssim * (1.0 - smap) * 0.5
        if self.w_grad:
            per_pixel = per_pixel + self.w_grad * _gradient_l1(pred, target)
        if mask is None:
            return per_pixel.mean()
        return (per_pixel * mask).sum() / mask.sum().clamp(min=1.0)


def _gradient_l1(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``(B, 1, H, W)`` L1 distance of horizontal + vertical finite differences (zero-padded)."""
    def grads(x):
        gx = F.pad(x[..., :, 1:] - x[..., :, :-1], (0, 1, 0, 0))
        gy = F.pad(x[..., 1:, :] - x[..., :-1, :], (0, 0, 0, 1))
        return gx, gy

    (px, py), (tx, ty) = grads(pred), grads(target)
    return ((px - tx).abs() + (py - ty).abs()).mean(1, keepdim=True)
