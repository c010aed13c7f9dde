"""Procedural, seeded, tileable textures (brick, wood, tiles, carpet, posters, clothing, ...).

Each generator takes a ``numpy.random.Generator`` and returns a ``(T, T, 3) float32`` image in
[0, 255], row 0 at the *bottom* of the surface (texture v grows with world z on walls).
:class:`AtlasBuilder` collects them with the metres each tile covers.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter

from mirage_ros.sim.scene import Atlas

T = 128  # texels per tile side (power of two: the renderer wraps with a bit mask)
_U = (np.arange(T) + 0.5) / T  # texel centres in [0, 1)


def noise(rng: np.random.Generator, sigma: float) -> np.ndarray:
    """Tileable smooth noise ``(T, T)`` with zero mean and unit std."""
    n = gaussian_filter(rng.standard_normal((T, T)), sigma, mode="wrap")
    return (n - n.mean()) / (n.std() + 1e-9)


def _colour(base, rng: np.random.Generator, jitter: float = 12.0) -> np.ndarray:
    return np.clip(np.asarray(base, np.float32) + rng.normal(0, jitter, 3), 0, 255)


def _grid_ids(rows: int, cols: int, stagger: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cell id, fractional position within the cell (fu, fv) for a ``rows x cols`` layout."""
    v = _U[:, None] * rows
    row = np.floor(v).astype(int)
    shift = np.where(stagger & (row % 2 == 1), 0.5, 0.0)
    u = _U[None, :] * cols + shift
    col = np.floor(u).astype(int) % cols
    return row * cols + col, u - np.floor(u), v - row


def plaster(rng, base) -> np.ndarray:
    c = _colour(base, rng)
    tone = 1 + 0.05 * noise(rng, 6) + 0.025 * noise(rng, 1)
    return c * tone[..., None]


def brick(rng, base) -> np.ndarray:
    rows, cols = 8, 4
    cell, fu, fv = _grid_ids(rows, cols, stagger=True)
    per = rng.normal(0, 0.09, rows * cols + cols)[cell]
    mortar = (fu < 0.04) | (fv < 0.1)
    c = _colour(base, rng, 8)
    img = c * (1 + per + 0.06 * noise(rng, 1.5))[..., None]
    return np.where(
        mortar[..., None], np.array([190, 185, 175], np.float32) * (1 + 0.05 * noise(rng, 1))[..., None], img
    )


def wood(rng, base, planks: int = 4) -> np.ndarray:
    cell, fu, fv = _grid_ids(1, planks)
    along = _U[:, None] * 6 + 0.4 * noise(rng, 8)
    grain = 0.08 * np.sin(2 * np.pi * (along * 3 + fu * 0.3)) + 0.05 * noise(rng, 1.0)
    per = rng.normal(0, 0.08, planks)[cell]
    gap = fu < 0.03
    c = _colour(base, rng, 10)
    img = c * (1 + grain + per)[..., None]
    return np.where(gap[..., None], img * 0.55, img)


def tiles(rng, base, n: int = 4, checker: bool = False) -> np.ndarray:
    cell, fu, fv = _grid_ids(n, n)
    per = rng.normal(0, 0.04, n * n)[cell]
    c1 = _colour(base, rng, 6)
    c2 = np.clip(c1 * (0.55 if checker else 1.0), 0, 255)
    parity = ((cell // n + cell % n) % 2 == 1)[..., None]
    img = np.where(parity, c2, c1) * (1 + per + 0.03 * noise(rng, 1))[..., None]
    grout = (fu < 0.04) | (fv < 0.04)
    return np.where(grout[..., None], np.float32(0.6) * c1, img)


def carpet(rng, base) -> np.ndarray:
    c = _colour(base, rng, 15)
    pattern = 0.06 * np.sign(np.sin(2 * np.pi * 8 * (_U[:, None] + _U[None, :])))
    return c * (1 + 0.12 * noise(rng, 0.7) + 0.05 * noise(rng, 5) + pattern)[..., None]


def concrete(rng, base) -> np.ndarray:
    c = _colour(base, rng, 6)
    stains = 0.1 * noise(rng, 10) + 0.05 * noise(rng, 2) + 0.04 * noise(rng, 0.6)
    return c * (1 + stains)[..., None]


def stripes(rng, base, n: int = 8) -> np.ndarray:
    c1 = _colour(base, rng)
    c2 = _colour(base, rng, 40)
    band = (np.floor(_U[None, :] * n) % 2 == 1) & np.ones((T, 1), bool)
    img = np.where(band[..., None], c1, c2)
    return img * (1 + 0.03 * noise(rng, 1))[..., None]


def ceiling_tiles(rng, base) -> np.ndarray:
    img = tiles(rng, base, n=2)
    return img * (1 + 0.05 * (rng.random((T, T)) > 0.85))[..., None]


def light_panel(rng, base=(250, 248, 238)) -> np.ndarray:
    img = np.broadcast_to(np.asarray(base, np.float32), (T, T, 3)).copy()
    edge = (_U[:, None] < 0.06) | (_U[:, None] > 0.94) | (_U[None, :] < 0.06) | (_U[None, :] > 0.94)
    return np.where(edge[..., None], 160.0, img)


def poster(rng, _base=None) -> np.ndarray:
    """Background colour, a few shapes and text-like bars: unique per seed."""
    yy, xx = np.meshgrid(_U, _U, indexing="ij")
    img = np.broadcast_to(_colour(rng.uniform(40, 230, 3), rng, 0), (T, T, 3)).copy()
    for _ in range(rng.integers(2, 5)):
        col = rng.uniform(0, 255, 3)
        cx, cy, r = rng.uniform(0.2, 0.8), rng.uniform(0.35, 0.85), rng.uniform(0.08, 0.3)
        if rng.random() < 0.5:
            m = (xx - cx) ** 2 + (yy - cy) ** 2 < r * r
        else:
            m = (np.abs(xx - cx) < r) & (np.abs(yy - cy) < r * rng.uniform(0.3, 1.0))
        img[m] = col
    for line in range(rng.integers(2, 6)):
        y0 = 0.08 + 0.06 * line
        m = (yy > y0) & (yy < y0 + 0.03) & (xx > 0.1) & (xx < rng.uniform(0.4, 0.9))
        img[m] = 20 if img[..., :].mean() > 110 else 235
    frame = (xx < 0.03) | (xx > 0.97) | (yy < 0.03) | (yy > 0.97)
    img[frame] = 235
    return img


def books(rng, base=None) -> np.ndarray:
    """Shelf front: rows of book spines of random colours and widths, dark shelf boards."""
    img = np.zeros((T, T, 3), np.float32)
    rows = 4
    for r in range(rows):
        v0, v1 = r * T // rows, (r + 1) * T // rows
        u = 0
        while u < T:
            w = int(rng.integers(3, 9))
            top = v0 + int((v1 - v0) * rng.uniform(0.6, 0.95))
            img[v0 + 3 : top, u : u + w - 1] = rng.uniform(30, 220, 3)
            u += w
        img[v0 : v0 + 3] = (90, 60, 35)
    return img * (1 + 0.04 * noise(rng, 1))[..., None]


def cabinet(rng, base) -> np.ndarray:
    c = _colour(base, rng, 10)
    img = np.broadcast_to(c, (T, T, 3)).copy() * (1 + 0.03 * noise(rng, 2))[..., None]
    seam = (np.abs(_U[None, :] - 0.5) < 0.01) | (_U[None, :] < 0.01) | (_U[:, None] < 0.03)
    img[np.broadcast_to(seam, (T, T))] *= 0.5
    handle = (np.abs(_U[:, None] - 0.8) < 0.05) & (np.abs(np.abs(_U[None, :] - 0.5) - 0.07) < 0.015)
    img[handle] = 60
    return img


def cardboard(rng, base=(170, 130, 85)) -> np.ndarray:
    """Warehouse rack front: stacked cardboard boxes between orange beams."""
    cell, fu, fv = _grid_ids(3, 3, stagger=True)
    per = rng.normal(0, 0.1, 12)[cell]
    c = _colour(base, rng, 10)
    img = c * (1 + per + 0.05 * noise(rng, 1))[..., None]
    tape = np.abs(fu - 0.5) < 0.05
    img = np.where(tape[..., None], img * 1.2, img)
    gap = (fu < 0.03) | (fv < 0.04)
    img = np.where(gap[..., None], 35.0, img)
    beam = (_U[:, None] % (1 / 3)) < 0.05
    return np.where(np.broadcast_to(beam, (T, T))[..., None], np.array([230, 110, 20], np.float32), img)


def metal(rng, base) -> np.ndarray:
    c = _colour(base, rng, 6)
    brushed = gaussian_filter(rng.standard_normal((T, T)), (0.3, 8), mode="wrap")
    return c * (1 + 0.08 * brushed / (brushed.std() + 1e-9))[..., None]


def cloth(rng, base=None) -> np.ndarray:
    """Clothing: solid, striped or plaid in a random colour."""
    c = rng.uniform(20, 220, 3)
    kind = rng.integers(0, 3)
    tone = 1 + 0.06 * noise(rng, 1)
    if kind == 1:
        tone = tone + 0.25 * (np.floor(_U[:, None] * 10) % 2)
    elif kind == 2:
        tone = tone + 0.18 * ((np.floor(_U[:, None] * 8) % 2) + (np.floor(_U[None, :] * 8) % 2))
    return c * tone[..., None]


class AtlasBuilder:
    """Collects material tiles; ``build()`` freezes them into an :class:`Atlas`."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.images: list[np.ndarray] = []
        self.scales: list[tuple[float, float]] = []
        self.names: list[str] = []

    def add(self, name: str, generator, base=None, scale=(1.0, 1.0)) -> int:
        """Add one tile made by ``generator(rng, base)`` covering ``scale`` metres; returns its id."""
        image = generator(self.rng, base) if base is not None else generator(self.rng)
        self.images.append(np.clip(image, 0, 255).astype(np.uint8))
        self.scales.append((float(scale[0]), float(scale[1])))
        self.names.append(name)
        return len(self.images) - 1

    def build(self) -> Atlas:
        tiles_ = np.stack(self.images)  # (M, T, T, 3)
        luma = (tiles_ @ np.array([0.299, 0.587, 0.114], np.float32)) / 255.0
        return Atlas(
            texels=np.ascontiguousarray(tiles_.reshape(-1, 3)),
            scale=np.asarray(self.scales, np.float32),
            luma=luma.astype(np.float32),
            size=T,
            names=list(self.names),
        )
