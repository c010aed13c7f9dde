"""Colours for memory points, decoded linearly from their latent vectors.

The memory stores latents, not colours. Running the convolutional renderer on single points is not
possible (its output depends on neighbouring cells), so RViz colours come from a linear probe
fitted online: each observed frame pairs every latent cell with the mean colour of the pixels it
covers, and a ridge regression ``rgb ~ latent @ W + b`` is re-solved from accumulated normal
equations (``(C+1) x (C+1)``: a few microseconds). Pure numpy.
"""

from __future__ import annotations

import numpy as np


class LinearColourProbe:
    """Online ridge regression from latent vectors ``(C,)`` to RGB.

    Args:
        channels: latent channels ``C``.
        ridge: regularisation added to the diagonal of the normal equations.
    """

    def __init__(self, channels: int, ridge: float = 1e-3):
        self._xtx = np.zeros((channels + 1, channels + 1))
        self._xty = np.zeros((channels + 1, 3))
        self._ridge = ridge
        self._weights: np.ndarray | None = None

    @property
    def fitted(self) -> bool:
        return self._xtx[-1, -1] > 0

    def update(self, latent: np.ndarray, rgb: np.ndarray, stride: int) -> None:
        """Add one frame: ``latent (C, h, w)``, ``rgb (H, W, 3) uint8`` with ``h = H // stride``."""
        C, h, w = latent.shape
        blocks = rgb[: h * stride, : w * stride].reshape(h, stride, w, stride, 3).mean(axis=(1, 3))
        x = np.concatenate([latent.reshape(C, -1).T, np.ones((h * w, 1))], axis=1)
        self._xtx += x.T @ x
        self._xty += x.T @ (blocks.reshape(-1, 3) / 255.0)
        self._weights = None

    def colours(self, latents: np.ndarray) -> np.ndarray:
        """``(P, C)`` latents -> ``(P, 3) uint8`` RGB (mid grey before any :meth:`update`)."""
        latents = np.asarray(latents, dtype=np.float64)
        if not self.fitted:
            return np.full((len(latents), 3), 128, np.uint8)
        if self._weights is None:
            reg = self._ridge * np.trace(self._xtx) / len(self._xtx) * np.eye(len(self._xtx))
            self._weights = np.linalg.solve(self._xtx + reg, self._xty)
        rgb = latents @ self._weights[:-1] + self._weights[-1]
        return np.clip(rgb * 255.0 + 0.5, 0, 255).astype(np.uint8)
