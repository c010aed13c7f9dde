"""Encoder (image -> latent) and renderer (warped latent + validity + depth -> image).

Both are plain conv nets without normalisation layers (nothing to fold at export, identical
behaviour at batch size 1) sized for real time: most work happens at latent resolution.

Tensors are ``(B, C, H, W) float32``; RGB in ``[0, 1]``. ``H`` and ``W`` must be multiples of the
stride ``s``; the latent grid is ``(H / s, W / s)`` and cell ``(i, j)`` covers pixels
``[s*j, s*j+s)`` as in ``geometry.Intrinsics.scaled``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

#: Inverse depth fed to the renderer is ``min(depth_scale / depth, 1)`` (metres): 1 up close,
#: falling off with distance, 0 in holes.
DEPTH_SCALE_M = 0.5


@dataclass(frozen=True)
class NetworkConfig:
    """Sizes of the two networks.

    Args:
        stride: latent stride, a power of two in {4, 8}.
        channels: latent channels ``C``.
        width: base feature width; deeper stages use multiples of it.
        renderer_levels: extra down-sampling levels of the renderer's U-Net below latent
            resolution (receptive field for filling holes).
        subcell_placement: train the renderer with its cells moved to where their memory points
            project (``memory_maths.subcell``); the manifest records it and the runtime then renders
            the same way. Off for the shipped networks (see ``docs/evaluation.md``).
    """

    stride: int = 8
    channels: int = 32
    width: int = 32
    renderer_levels: int = 2
    subcell_placement: bool = False

    def __post_init__(self) -> None:
        if self.stride not in (4, 8):
            raise ValueError(f"stride: must be 4 or 8, got {self.stride}")
        if self.channels < 1 or self.width < 4 or self.renderer_levels < 0:
            raise ValueError(f"network sizes must be positive: {self}")


def _conv(c_in: int, c_out: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1)


class ResBlock(nn.Module):
    """Two 3x3 convs with a skip: ``x + conv(relu(conv(x)))``, then ReLU."""

    def __init__(self, channels: int):
        super().__init__()
        self.a = _conv(channels, channels)
        self.b = _conv(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x + self.b(F.relu(self.a(x))))


class Encoder(nn.Module):
    """``(B, 3, H, W)`` RGB in ``[0, 1]`` -> ``(B, C, H/s, W/s)`` latent.

    ``log2(s)`` stride-2 convs (widths ``w, 2w, 3w``), one residual block, a 1x1 projection. The
    latent has no output nonlinearity: the memory fuses latents by weighted averaging, which a
    linear space keeps meaningful.
    """

    def __init__(self, cfg: NetworkConfig):
        super().__init__()
        n_down = int(math.log2(cfg.stride))
        widths = [cfg.width * (i + 1) for i in range(n_down)]
        layers: list[nn.Module] = []
        c_in = 3
        for w in widths:
            layers += [_conv(c_in, w, stride=2), nn.ReLU()]
            c_in = w
        layers += [ResBlock(c_in), nn.Conv2d(c_in, cfg.channels, 1)]
        self.body = nn.Sequential(*layers)
        init_weights(self)

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        return self.body(rgb * 2.0 - 1.0)


class Renderer(nn.Module):
    """Warped latent + validity + depth at latent resolution -> ``(B, 3, H, W)`` RGB in ``[0, 1]``.

    Inputs (latent grid ``h x w``, ``H = s*h``): ``latent (B, C, h, w)`` (values in holes are
    ignored), ``valid (B, 1, h, w)`` in ``[0, 1]`` and ``depth (B, 1, h, w)`` metres (0 in holes).
    A U-Net over the latent grid fills holes from their surroundings; ``log2(s)`` up-sampling
    stages (nearest x2 + conv, pixel shuffle at the last) bring it to image resolution.
    """

    def __init__(self, cfg: NetworkConfig):
        super().__init__()
        top = cfg.width * 3
        self.inp = _conv(cfg.channels + 2, top)
        self.down = nn.ModuleList()
        self.up = nn.ModuleList()
        c = top
        for _ in range(cfg.renderer_levels):
            self.down.append(nn.Sequential(_conv(c, c + cfg.width, stride=2), nn.ReLU(),
                                           ResBlock(c + cfg.width)))
            self.up.append(_conv(2 * c + cfg.width, c))
            c += cfg.width
        self.mid = ResBlock(top)
        n_up = int(math.log2(cfg.stride))
        widths = [max(cfg.width * (n_up - 1 - i), cfg.width // 2) for i in range(n_up - 1)]
        ups: list[nn.Module] = []
        c = top
        for w in widths:
            ups += [nn.Upsample(scale_factor=2, mode="nearest"), _conv(c, w), nn.ReLU()]
            c = w
        ups += [_conv(c, 12), nn.PixelShuffle(2)]
        self.to_rgb = nn.Sequential(*ups)
        init_weights(self)

    def forward(self, latent: torch.Tensor, valid: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
        inv_depth = torch.clamp(DEPTH_SCALE_M / torch.clamp(depth, min=1e-3), max=1.0) * valid
        x = F.relu(self.inp(torch.cat([latent * valid, valid, inv_depth], dim=1)))
        skips = []
        for down in self.down:
            skips.append(x)
            x = down(x)
        for up, skip in zip(reversed(self.up), reversed(skips)):
            x = F.interpolate(x, size=skip.shape[-2:], mode="nearest")
            x = F.relu(up(torch.cat([x, skip], dim=1)))
        x = self.mid(x)
        return torch.sigmoid(self.to_rgb(x))


def init_weights(module: nn.Module) -> None:
    """He (fan-in, ReLU) init for every conv, zero biases, and the second conv of each residual
    block zeroed so blocks start as identities: without normalisation layers PyTorch's default
    init shrinks activations layer by layer and training starts slowly."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            nn.init.zeros_(m.bias)
    for m in module.modules():
        if isinstance(m, ResBlock):
            nn.init.zeros_(m.b.weight)


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters of ``module``."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
