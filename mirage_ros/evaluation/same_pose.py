"""Same pose after one frame: how much of one real frame the memory keeps and the renderer draws.

For every n-th frame of a recording, the world model starts empty, observes that frame alone and
predicts the view at the frame's own pose. PSNR and SSIM against the frame show the encoder and
renderer's fidelity with nothing to guess (``psnr_covered``: on the cells the memory drew;
``psnr``: the whole frame, holes filled by the renderer); ``coverage`` is the fraction of the cells
with a depth reading that the memory drew (what the voxel policy keeps of one frame).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

from mirage_ros import geometry as g
from mirage_ros.evaluation import metrics
from mirage_ros.evaluation.sources import Observation


def score_same_pose(frames: Iterable[Observation], model, every: int,
                    progress: Callable[[int], None] = lambda n: None) -> dict:
    """Mean ``psnr``, ``psnr_covered``, ``ssim``, ``coverage`` and count ``n`` over every
    ``every``-th frame; ``model`` is a ``pipeline.WorldModel`` (reset before each frame, and left
    reset)."""
    rows = []
    for n, frame in enumerate(frames):
        progress(1)
        if n % every:
            continue
        model.reset()
        model.observe(frame.rgb, frame.depth, frame.K, frame.T_world_cam, frame.stamp, frame.motion_mask)
        pred = model.predict(frame.T_world_cam, frame.K)
        reading = g.valid_depth(frame.depth, model.memory_config.min_depth, model.memory_config.max_depth)
        s = model.stride
        cells = g.pool_mask(reading, s) > 0  # a cell with at least one reading
        drawn = pred.cell_valid
        rows.append({"psnr": metrics.psnr(pred.rgb, frame.rgb),
                     "psnr_covered": metrics.psnr(pred.rgb, frame.rgb, pred.valid),
                     "ssim": metrics.ssim(pred.rgb, frame.rgb),
                     "coverage": float((drawn & cells).sum() / max(cells.sum(), 1))})
    model.reset()
    if not rows:
        return {"n": 0}
    return {"n": len(rows), "every": every,
            **{k: float(np.nanmean([r[k] for r in rows])) for k in ("psnr", "psnr_covered", "ssim", "coverage")}}
