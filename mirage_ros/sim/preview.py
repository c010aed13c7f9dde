"""Contact sheet of a simulated run: a top-down map with the camera path, then frames, depth and
ground-truth masks side by side (PNG via matplotlib)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from mirage_ros.errors import InvalidInput
from mirage_ros.sim.simulator import Simulator


def _draw_map(ax, sim: Simulator, times: np.ndarray) -> None:
    from matplotlib.patches import Circle, Polygon

    scene = sim.scene
    for prisms, colour in ((scene.walls, "0.15"), (scene.objects, "tab:brown")):
        for k in range(len(prisms)):
            if prisms.cyl[k]:
                ax.add_patch(Circle((prisms.cx[k], prisms.cy[k]), prisms.hx[k], color="tab:green"))
                continue
            c, s = np.cos(prisms.yaw[k]), np.sin(prisms.yaw[k])
            corners = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * [prisms.hx[k], prisms.hy[k]]
            xy = corners @ np.array([[c, s], [-s, c]]) + [prisms.cx[k], prisms.cy[k]]
            ax.add_patch(Polygon(xy, closed=True, color=colour, lw=0))
    period = sim.period if np.isfinite(sim.period) else 10.0
    track = np.array([sim.pose_at(t)[:2, 3] for t in np.linspace(0, period, 400)])
    ax.plot(track[:, 0], track[:, 1], "-", color="tab:blue", lw=1, label="camera path")
    for i, t in enumerate(times):
        T = sim.pose_at(t)
        ax.annotate(
            "", xy=T[:2, 3] + 1.2 * T[:2, 2], xytext=T[:2, 3], arrowprops={"arrowstyle": "->", "color": "tab:red"}
        )
        ax.text(*T[:2, 3], str(i), color="tab:red", fontsize=8)
    if sim.walkers.count:
        pos = sim.walkers.state(float(times[0]))[0]
        ax.plot(pos[:, 0], pos[:, 1], "o", color="tab:purple", ms=4, label="people at frame 0")
    x0, y0, x1, y1 = scene.bounds
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_aspect("equal")
    ax.legend(loc="upper right", fontsize=7)
    ax.set_title(f"{scene.family} seed {scene.seed}: top view (map frame, metres)", fontsize=9)


def contact_sheet(sim: Simulator, out: str | os.PathLike, count: int = 6, span: float | None = None) -> Path:
    """Write a PNG with ``count`` frames spread over ``span`` seconds (default: one path period)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    if out.suffix.lower() != ".png":
        raise InvalidInput("--out", f"the contact sheet is a PNG; got {str(out)!r}")
    if not out.parent.is_dir() or not os.access(out.parent, os.W_OK):
        raise InvalidInput("--out", f"folder {str(out.parent)!r} does not exist or is not writable")
    if not isinstance(count, int) or not 1 <= count <= 48:
        raise InvalidInput("--count", f"must be an integer in 1..48, got {count!r}")
    span = span if span is not None else (sim.period if np.isfinite(sim.period) else 30.0)
    times = np.round(np.linspace(0, span, count, endpoint=False) * sim.config.rate_hz) / sim.config.rate_hz
    frames = [sim.frame_at(int(round(t * sim.config.rate_hz))) for t in times]
    fig = plt.figure(figsize=(12, 3.0 * count + 6))
    grid = fig.add_gridspec(count + 2, 3)
    _draw_map(fig.add_subplot(grid[:2, :]), sim, times)
    vmax = sim.config.max_range
    for i, frame in enumerate(frames):
        axes = [fig.add_subplot(grid[i + 2, j]) for j in range(3)]
        axes[0].imshow(frame.rgb)
        axes[0].set_title(f"[{i}] rgb  t={frame.stamp:.1f}s", fontsize=8)
        im = axes[1].imshow(np.where(frame.depth > 0, frame.depth, np.nan), cmap="turbo", vmin=0, vmax=vmax)
        axes[1].set_title("depth (m; blank = no return)", fontsize=8)
        fig.colorbar(im, ax=axes[1], fraction=0.035)
        overlay = frame.rgb.astype(np.float32) * 0.35
        overlay[frame.instance_ids > 0] = [60, 60, 220]
        overlay[frame.motion_mask] = [255, 40, 40]
        axes[2].imshow(overlay.astype(np.uint8))
        axes[2].set_title("red: moving (motion_mask), blue: person standing", fontsize=8)
        for ax in axes:
            ax.set_xticks([])
            ax.set_yticks([])
    fig.tight_layout()
    tmp = out.with_name(f".{out.name}.partial.png")
    fig.savefig(tmp, dpi=80)
    plt.close(fig)
    os.replace(tmp, out)
    return out
