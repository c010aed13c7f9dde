"""Hide what a read-out shows *through* gaps in a nearer surface.

The memory stores one point per latent cell of each frame it saw. Seen from nearer than it was
observed, a surface's points land more than a cell apart, and the z-buffer of the read-out
(``memory_maths.readout``) lets farther points show through the gaps: a wall seen through the
floor, the far end of a corridor through a door frame. The renderer then paints them where the
near surface should be (measured on validation seed 1000, corridor, 1 s ahead: 5.2 % of covered
cells showed a point more than 30 % + 0.2 m behind the true surface).

A cell is *hidden* when, along one of four lines through it (row, column, both diagonals), the
read-out holds a clearly nearer point on **both** sides within ``radius`` cells: the near surface
surrounds it. A depth edge (near on one side only) is not hidden, so the background beside an
object stays. A hidden cell takes the latent and depth of the nearest point in its
``(2 radius + 1)^2`` window: the surface in front, as a splat of that point's size would have drawn
it.

Measured (shipped networks; ``WorldModel(see_through_fill=True)`` against ``False``):

- ``eval-sim``, people kept out of memory by their true masks: validation seed 1000, corridor,
  future views +0.33 to +0.57 dB, revisits +0.15 dB, office within +-0.06 dB; held-out seeds
  2000-2001, all scenes, +0.08 to +0.16 dB.
- ``eval-dynamics``, the moving-object detector in the loop (seeds 1000, 5-8, 1001): revisit PSNR
  -0.09 dB on average (-0.53 to +0.13), and the gap to the people-free run grows on four of six
  seeds (seed 1000: 0.36 to 0.71 dB): the points of a person the detector let in are scattered,
  and the fill joins them into a solid ghost.

Hence ``WorldModel`` leaves it off by default: turn it on for static scenes or reliable masks.
Those runs drew every stored point. With the read-out of points seen at least twice
(``MemoryConfig.readout_min_count`` 2), fewer scattered points remain to be joined: on the six
tuning seeds the fill then gave ours -0.02 to +0.60 dB at revisits (mean +0.13), the same mean gap
(0.418 -> 0.416 dB) and F1 0.838 -> 0.841. With the detector that no longer keeps sparsely held
walls out of memory it widens the gap again: six tuning seeds 0.33 -> 0.40 dB, held-out seeds
2000-2002 0.55 / 0.41 / 0.52 -> 0.65 / 0.60 / 0.87 dB. So it stays off.
"""

from __future__ import annotations

import numpy as np

from mirage_ros.memory.config import Readout

#: Lines through a cell tested for a nearer surface on both sides: (row step, column step).
_LINES = ((0, 1), (1, 0), (1, 1), (1, -1))


def hidden_cells(valid: np.ndarray, depth: np.ndarray, radius: int = 2, rel_gap: float = 0.3,
                 abs_gap: float = 0.2) -> np.ndarray:
    """Cells whose point lies behind a surface that surrounds it.

    Args:
        valid: ``(h, w) bool`` read-out cells holding a point.
        depth: ``(h, w) float32`` z-depth of each cell's point, metres.
        radius: cells searched on each side of a cell along each line (>= 1).
        rel_gap, abs_gap: a neighbour is *clearly nearer* when its depth is below
            ``(z - abs_gap) / (1 + rel_gap)`` for the cell's depth ``z``.

    Returns:
        ``(h, w) bool``, True on valid cells hidden by a nearer surface.
    """
    valid = np.asarray(valid, bool)
    z = np.where(valid, np.asarray(depth, np.float32), np.inf)
    limit = (z - abs_gap) / (1.0 + rel_gap)
    padded = np.pad(z, radius, constant_values=np.inf)
    h, w = z.shape

    def nearer_towards(dy: int, dx: int) -> np.ndarray:
        nearest = np.full_like(z, np.inf)
        for k in range(1, radius + 1):
            y, x = radius + k * dy, radius + k * dx
            nearest = np.minimum(nearest, padded[y: y + h, x: x + w])
        return nearest < limit

    hidden = np.zeros_like(valid)
    for dy, dx in _LINES:
        hidden |= nearer_towards(dy, dx) & nearer_towards(-dy, -dx)
    return hidden & valid


def fill_see_through(readout: Readout, radius: int = 2, rel_gap: float = 0.3,
                     abs_gap: float = 0.2) -> Readout:
    """``readout`` with every :func:`hidden_cells` cell replaced by the nearest point of its
    ``(2 radius + 1)^2`` window (latent and depth); other cells unchanged.

    Args:
        readout: a read-out, ``latent (C, h, w)``, ``valid`` and ``depth (h, w)``, ``offset (2, h, w)``
            or None (filled cells get offset 0).
        radius, rel_gap, abs_gap: as :func:`hidden_cells`.
    """
    hidden = hidden_cells(readout.valid, readout.depth, radius, rel_gap, abs_gap)
    if not hidden.any():
        return readout
    z = np.where(readout.valid & ~hidden, readout.depth, np.inf).astype(np.float32)
    h, w = z.shape
    padded = np.pad(z, radius, constant_values=np.inf)
    rows, cols = np.mgrid[0:h, 0:w]
    best = np.full_like(z, np.inf)
    source_row, source_col = rows.copy(), cols.copy()
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            candidate = padded[radius + dy: radius + dy + h, radius + dx: radius + dx + w]
            better = candidate < best
            best = np.where(better, candidate, best)
            source_row = np.where(better, rows + dy, source_row)
            source_col = np.where(better, cols + dx, source_col)
    # a hidden cell whose nearer neighbours are all hidden too keeps its own point
    sy, sx = source_row[hidden], source_col[hidden]
    latent = readout.latent.copy()
    latent[:, hidden] = readout.latent[:, sy, sx]
    depth = readout.depth.copy()
    depth[hidden] = readout.depth[sy, sx]
    offset = readout.offset
    if offset is not None:  # a borrowed point is drawn on the cell it fills
        offset = np.where(hidden[None], np.float32(0.0), offset)
    return Readout(latent, readout.valid, depth, offset)
