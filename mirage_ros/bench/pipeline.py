"""Pipeline benchmark: what the world_model node computes per frame, without ROS.

    mirage-ros bench pipeline --json [--provider cuda] [--width 640 --height 480]

:class:`mirage_ros.pipeline.WorldModel` with the shipped networks observes simulated frames
(encode, carve + fuse into the memory, lift the newest frame's cells) and predicts the view half a second
ahead on the true path (read-out, overlay, render), with the newest-frame overlay on (the default)
and off, on the same frames. The ratio is observe + predict with the overlay over without it: what
the overlay costs. The first ``--warmup`` frames are not timed (session start-up, CUDA set-up).

Then the views along a path: the memory of the overlay-on run renders the ``--views`` K poses that
follow each of the last frames, once as K single predictions and once as one ``predict_views``
call (one read-out call per memory, one renderer call), alternating; reported per view, with the
ratio of the batch to the single calls and each call's split into read-outs + overlay and
renderer + download.

Last, the engine alone on the same frames (``engine``): the encoder (image upload included), the
memory update with carving, the read-out and the renderer (8-bit image left on the device), each
timed by itself. ``ratio_product_vs_engine`` is the product path (observe + predict, overlay on)
over their sum: what the node's path adds to the stages it cannot do without (the newest-frame
memory, the overlay, downloads, input checks).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from tqdm import tqdm

from mirage_ros.bench import add_sim_run_arguments, emit, script_main
from mirage_ros.bench.latency import gpu_name, summary
from mirage_ros.errors import InvalidInput

AHEAD_FRAMES = 5  # predicted target: the true pose this many frames later (0.5 s at 10 Hz)
VIEW_REPEATS = 10  # paths timed for the views figures


def time_model(frames, networks, newest_overlay: bool, warmup: int) -> tuple[dict, object]:
    """Median observe / predict ms of a fresh ``WorldModel`` on ``networks`` over ``frames``, and the model."""
    from mirage_ros.pipeline import WorldModel

    model = WorldModel(networks, provider=networks.device, newest_overlay=newest_overlay,
                       cuda_graph=networks.cuda_graph)
    observe, predict = [], []
    label = f"overlay {'on' if newest_overlay else 'off'}"
    for i, frame in enumerate(tqdm(frames, desc=label, file=sys.stderr, disable=None)):
        t0 = time.perf_counter()
        model.observe(frame.rgb, frame.depth, frame.K, frame.T_world_cam, frame.stamp,
                      dynamic_mask=frame.motion_mask)
        t1 = time.perf_counter()
        model.predict(frames[min(i + AHEAD_FRAMES, len(frames) - 1)].T_world_cam, frame.K)
        t2 = time.perf_counter()
        if i >= warmup:
            observe.append((t1 - t0) * 1e3), predict.append((t2 - t1) * 1e3)
    return {"observe_ms": summary(observe), "predict_ms": summary(predict),
            "provider": model.networks.provider, "memory_points": model.memory.stats()["points"]}, model


def time_engine(frames, networks, config, warmup: int) -> dict:
    """Median ms of the stages alone (module docstring) over ``frames``, predicting as ``time_model``."""
    from mirage_ros.memory import LatentMemory

    memory = LatentMemory(config, provider=networks.device, cuda_graph=networks.cuda_graph)
    stages = {"encode_ms": [], "update_ms": [], "read_out_ms": [], "render_ms": []}
    for i, frame in enumerate(tqdm(frames, desc="engine", file=sys.stderr, disable=None)):
        t0 = time.perf_counter()
        latent = networks.encode_device(frame.rgb)
        t1 = time.perf_counter()
        memory.insert(latent, frame.depth, frame.K, frame.T_world_cam, frame.stamp, frame.motion_mask)
        t2 = time.perf_counter()
        readout = memory.read_out_views_device([frames[min(i + AHEAD_FRAMES, len(frames) - 1)].T_world_cam], frame.K)
        t3 = time.perf_counter()
        composed = networks.compose_device(readout)
        t4 = time.perf_counter()
        networks.render_device(composed)
        t5 = time.perf_counter()
        if i >= warmup:
            for name, ms in zip(stages, (t1 - t0, t2 - t1, t3 - t2, t5 - t4)):
                stages[name].append(ms * 1e3)
    return {name: summary(ms) for name, ms in stages.items()}


def time_views(model, frames, k: int, repeats: int) -> dict:
    """Per-view ms of the ``k`` poses after each of ``repeats`` frames: single calls vs one batch."""
    single, batch = [], []
    K = frames[0].K
    warm = [f.T_world_cam for f in frames[-k:]]  # first calls of a size set up (and capture) its graphs
    model.predict_views(warm, K), model.predict(warm[0], K)
    model.reset_timings()
    for start in range(len(frames) - k - repeats, len(frames) - k):
        poses = [f.T_world_cam for f in frames[start + 1: start + 1 + k]]
        t0 = time.perf_counter()
        for pose in poses:
            model.predict(pose, K)
        t1 = time.perf_counter()
        model.predict_views(poses, K)
        t2 = time.perf_counter()
        single.append((t1 - t0) * 1e3 / k), batch.append((t2 - t1) * 1e3 / k)
    single_ms, batch_ms = summary(single), summary(batch)
    stages = model.stats()
    return {"k": k, "single_ms_per_view": single_ms, "batch_ms_per_view": batch_ms,
            # mean ms of one call: read-outs + overlay, and renderer + download
            "single_stages_ms": {n: round(stages[f"{n}_ms"], 4) for n in ("read_out", "render")},
            "batch_stages_ms": {n: round(stages[f"{n}_views_ms"], 4) for n in ("read_out", "render")},
            "renderer_batches": model.networks.renders_batches,
            "ratio_batch_vs_single": round(batch_ms["median"] / single_ms["median"], 3)}


def run(args) -> int:
    from mirage_ros.sim import SimConfig, Simulator

    if args.frames <= args.warmup:
        raise InvalidInput("--frames", f"must exceed --warmup ({args.warmup}), got {args.frames}")
    sim = Simulator(SimConfig(scene=args.scene, seed=args.seed, width=args.width, height=args.height,
                              rate_hz=10.0, path="loop", actors=True))
    frames = list(tqdm(sim.frames(args.frames), total=args.frames, desc="simulate", file=sys.stderr,
                       disable=None))
    if args.views < 1:
        raise InvalidInput("--views", f"must be >= 1, got {args.views}")
    if args.frames < args.views + VIEW_REPEATS + 1:
        raise InvalidInput("--frames", f"must be at least --views + {VIEW_REPEATS + 1} ({args.views + VIEW_REPEATS + 1})")
    from mirage_ros.runtime.networks import Networks

    networks = Networks.load(args.weights_dir, provider=args.provider, allow_tf32=args.tf32, cuda_graph=args.cuda_graph)
    on, model = time_model(frames, networks, True, args.warmup)
    views = time_views(model, frames, args.views, VIEW_REPEATS)
    off, _ = time_model(frames, networks, False, args.warmup)
    engine = time_engine(frames, model.networks, model.memory_config, args.warmup)
    per_frame = {name: r["observe_ms"]["median"] + r["predict_ms"]["median"] for name, r in
                 (("on", on), ("off", off))}
    engine_ms = sum(stage["median"] for stage in engine.values())
    result = {
        "benchmark": "pipeline",
        "device": gpu_name() if "CUDA" in on["provider"] else f"cpu ({os.cpu_count()} cores)",
        "width": args.width, "height": args.height, "scene": args.scene, "seed": args.seed,
        "networks": f"{networks.stride}x{networks.channels}x{networks.manifest['network'].get('width', '?')}"
                    f"{' (TF32)' if args.tf32 else ''}",
        "cuda_graph": networks.cuda_graph,
        "frames": args.frames, "warmup": args.warmup,
        "overlay_on": on, "overlay_off": off,
        "ratio_overlay_on_vs_off": round(per_frame["on"] / per_frame["off"], 3),
        "views": views,
        "engine": engine,
        "ratio_product_vs_engine": round(per_frame["on"] / engine_ms, 3),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    return emit(result, args)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_sim_run_arguments(parser, frames=80, scene="office", seed=2000)
    parser.add_argument("--warmup", type=int, default=10, help="first frames not timed (default %(default)s)")
    parser.add_argument("--views", type=int, default=8, help="poses of a path rendered in one call (default %(default)s)")
    parser.add_argument("--weights-dir", default=None, help="networks other than the shipped ones")
    parser.add_argument("--tf32", action="store_true", help="CUDA: encoder and renderer convolutions in TF32")
    parser.add_argument("--cuda-graph", action="store_true", help="CUDA: every stage captured as a CUDA graph")


def main(argv: list[str] | None = None) -> int:
    return script_main(__doc__, add_arguments, run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
