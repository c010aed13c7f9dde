"""Memory-size benchmark: latent memory vs RGB point-cloud memory on the same simulated loop.

    mirage-ros bench memory --frames 1000 --json [--plot runs/bench/memory.png]

Both memories get the same frames from the simulator (loop path, people walking, their motion
masks as the dynamic mask). The latent memory stores fused voxels (``bytes_per_point`` each:
position, fp16 latent, weight, last-seen, count, key); the RGB baseline keeps every valid pixel as
a coloured point (15 bytes). Reported: bytes of each over time and the final ratio. ``ratio`` uses
the latent memory's live points; ``ratio_vs_allocated`` its whole capacity-sized buffers
(twice: the update double-buffers), i.e. what the GPU actually reserves.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tqdm import tqdm

from mirage_ros.bench import add_memory_arguments, emit, script_main
from mirage_ros.bench.latency import bench_encoder
from mirage_ros.memory import LatentMemory, MemoryConfig
from mirage_ros.memory.baselines import RGBPointCloudMemory


def bench(args) -> dict:
    from mirage_ros.sim import SimConfig, Simulator

    sim = Simulator(SimConfig(scene=args.scene, seed=args.seed, width=args.width, height=args.height,
                              path="loop", actors=True))
    encoder = bench_encoder(args)
    cfg = MemoryConfig(channels=args.channels, stride=args.stride, capacity_points=args.capacity,
                       voxel_size=args.voxel_size, voxel_per_footprint=args.voxel_per_footprint)
    memory = LatentMemory(cfg, args.provider)
    rgb_memory = RGBPointCloudMemory(args.provider)
    series = []
    for i, frame in enumerate(tqdm(sim.frames(args.frames), total=args.frames, desc="frames",
                                   file=sys.stderr, disable=None)):
        memory.insert(encoder(frame.rgb), frame.depth, frame.K, frame.T_world_cam, frame.stamp,
                      dynamic_mask=frame.motion_mask)
        rgb_memory.insert(frame.rgb, frame.depth, frame.K, frame.T_world_cam, dynamic_mask=frame.motion_mask)
        if (i + 1) % args.every == 0 or i + 1 == args.frames:
            series.append({"frame": i + 1, "latent_bytes": memory.stats()["bytes"], "rgb_bytes": rgb_memory.bytes})
    stats = memory.stats()
    allocated = 2 * stats["bytes_allocated"]
    result = {
        "benchmark": "memory", "scene": args.scene, "seed": args.seed, "path": "loop",
        "frames": args.frames, "width": args.width, "height": args.height,
        "stride": args.stride, "channels": args.channels, "voxel_size": args.voxel_size, "voxel_per_footprint": args.voxel_per_footprint,
        "loop_period_s": round(sim.period, 2), "laps": round(args.frames / (sim.period * sim.config.rate_hz), 2),
        "latent_points": stats["points"], "latent_bytes_per_point": cfg.bytes_per_point,
        "latent_bytes": stats["bytes"], "latent_bytes_allocated": allocated,
        "latent_evictions": stats["evictions"], "latent_fuse_ratio": round(stats["fuse_ratio"], 4),
        "rgb_points": rgb_memory.points, "rgb_bytes": rgb_memory.bytes,
        "ratio": round(rgb_memory.bytes / max(stats["bytes"], 1), 2),
        "ratio_vs_allocated": round(rgb_memory.bytes / allocated, 2),
        "goal_ratio>=55": rgb_memory.bytes / max(stats["bytes"], 1) >= 55,
        "encoder": encoder.label,
        "series": series,
    }
    if args.plot:
        plot(series, args.plot, result)
        result["plot"] = str(args.plot)
    return result


def plot(series: list[dict], path: Path, result: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frames = [s["frame"] for s in series]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(frames, [s["rgb_bytes"] / 2**20 for s in series], label="RGB point cloud")
    ax.plot(frames, [s["latent_bytes"] / 2**20 for s in series], label="latent memory (live points)")
    ax.set_xlabel("frame")
    ax.set_ylabel("MiB")
    ax.set_yscale("log")
    ax.set_title(f"{result['scene']} loop, {result['width']}x{result['height']}: ratio {result['ratio']}")
    ax.legend()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_memory_arguments(parser, frames=1000)
    parser.add_argument("--every", type=int, default=50, help="sample sizes every N frames")
    parser.add_argument("--plot", type=Path, help="write a bytes-over-frames plot (PNG)")


def run(args) -> int:
    if args.frames < 1 or args.every < 1:
        from mirage_ros.errors import InvalidInput

        raise InvalidInput("--frames" if args.frames < 1 else "--every", "must be >= 1")
    return emit(bench(args), args)


def main(argv: list[str] | None = None) -> int:
    return script_main(__doc__, add_arguments, run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
