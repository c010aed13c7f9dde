"""Renderer benchmark: simulated frames per second at 320x240 and 640x480.

    python -m mirage_ros.bench.sim --json

Times :meth:`Simulator.frame_at` (render + actors, no sensor noise) over frames spread along the
loop path (wall-clock frames/s, and frames per CPU-second of this process: the renderer is
single-threaded, so the latter is what a free core gives), against the baseline of the same run: the per-pixel 3D reference ray caster
(``mirage_ros.sim.raycast``, depth only). Also reports how many renderer depth pixels agree with
the reference within 1 cm, the CPU count and the load average (the machine may be shared).
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

from mirage_ros.sim import SimConfig, Simulator
from mirage_ros.sim.raycast import raycast_depth


def bench(width: int, height: int, scene: str, frames: int, baseline_frames: int) -> dict:
    sim = Simulator(SimConfig(scene=scene, seed=3, width=width, height=height, actors=True))
    stride = max(int(sim.period * sim.config.rate_hz) // max(frames, 1), 1)
    indices = [i * stride for i in range(frames)]
    sim.frame_at(0)  # warm caches
    start, cpu = time.perf_counter(), time.process_time()
    rendered = [sim.frame_at(i) for i in indices]
    fps = len(indices) / (time.perf_counter() - start)
    cpu_fps = len(indices) / (time.process_time() - cpu)
    agree, start = [], time.perf_counter()
    for frame in rendered[:baseline_frames]:
        bodies, _ = sim.walkers.prisms(frame.stamp)
        ref = raycast_depth(sim.scene, sim.K, frame.T_world_cam, bodies, sim.config.max_range)
        agree.append(float(np.mean(np.abs(ref - frame.depth) < 0.01)))
    baseline_fps = baseline_frames / (time.perf_counter() - start)
    return {
        "width": width,
        "height": height,
        "scene": scene,
        "frames": len(indices),
        "fps": round(fps, 2),
        "fps_per_cpu_second": round(cpu_fps, 2),
        "baseline_fps": round(baseline_fps, 3),
        "speedup_vs_baseline": round(fps / baseline_fps, 1),
        "depth_agreement_1cm": round(float(np.mean(agree)), 5),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--scene", default="corridor")
    parser.add_argument("--frames", type=int, default=60, help="frames timed per resolution")
    parser.add_argument("--baseline-frames", type=int, default=2)
    args = parser.parse_args(argv)
    result = {
        "benchmark": "sim renderer frames/s (Simulator.frame_at, actors on, noise off)",
        "baseline": "per-pixel 3D reference ray caster (depth only), same frames",
        "nproc": os.cpu_count(),
        "loadavg_before": [round(x, 2) for x in os.getloadavg()],
        "results": [bench(w, h, args.scene, args.frames, args.baseline_frames) for w, h in ((320, 240), (640, 480))],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
    }
    if args.json:
        print(json.dumps(result))
    else:
        for r in result["results"]:
            print(
                f"{r['width']}x{r['height']}: {r['fps']} frames/s, {r['fps_per_cpu_second']} per CPU-second "
                f"({r['speedup_vs_baseline']}x the reference ray caster, "
                f"depth agreement {r['depth_agreement_1cm']:.2%})"
            )
        print(f"nproc {result['nproc']}, load {result['loadavg_before']} -> {result['loadavg_after']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
