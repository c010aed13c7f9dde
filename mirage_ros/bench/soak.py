"""``mirage-ros bench soak``: the demo pipeline (sim camera, world model, monitor) run for a long
time, resident memory of every node and what it publishes sampled at a fixed period.

A node that leaks grows; a node that stalls stops publishing. Reported, per node: RSS at the end
of the warm-up and at the end, its growth in percent over that span (goal < 5 %), and the
intervals in which the world model published no predicted view or the monitor no mask. Written:
``soak.json`` and ``soak.png`` (RSS and output rate over time) in ``--out``. Memory is read from
``/proc/<pid>/status`` (Linux); GPU memory from ``nvidia-smi`` where there is one.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np

from mirage_ros.errors import InvalidInput, MirageError


def rss_mb(pid: int) -> float | None:
    """Resident set size of process ``pid`` in MB (None once it has exited)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def gpu_mb() -> float | None:
    """GPU memory in use (MB, all processes) from nvidia-smi; None without one."""
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=10, check=True).stdout
        return float(sum(float(v) for v in out.split()))
    except (OSError, subprocess.SubprocessError, ValueError):
        return None


def growth(times: np.ndarray, values: np.ndarray, warmup_s: float) -> dict:
    """RSS after the warm-up and at the end (means of the samples in the first and the last
    minute of that span, so one sample's noise does not decide), and the growth in percent."""
    after = times >= warmup_s
    if after.sum() < 2:
        raise InvalidInput("--minutes", f"too short: fewer than two samples after the {warmup_s:g} s warm-up")
    t, v = times[after], values[after]
    start, end = v[t <= t[0] + 60.0].mean(), v[t >= t[-1] - 60.0].mean()
    return {"start_mb": round(float(start), 1), "end_mb": round(float(end), 1),
            "growth_percent": round(float(100.0 * (end - start) / start), 2)}


def run(args: argparse.Namespace) -> int:
    """Run the soak; print its summary (written with every sample to ``args.out``); exit code 0."""
    import os

    from tqdm import tqdm

    from mirage_ros.demo import start_nodes
    from mirage_ros.ros.launcher import ros_environment
    from mirage_ros.ros.recorder import Recorder

    if not args.minutes > 0 or not args.sample > 0:
        raise InvalidInput("--minutes", f"--minutes and --sample must be > 0, got {args.minutes}, {args.sample}")
    out = Path(args.out)
    (out / "logs").mkdir(parents=True, exist_ok=True)
    env = ros_environment(args.domain_id)
    os.environ.update({k: env[k] for k in ("ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE")})
    nodes = start_nodes(args, env, out / "logs")
    from mirage_ros_msgs.msg import PredictedView
    from sensor_msgs.msg import Image

    counts = {"predicted_views": 0, "moving_masks": 0}

    def counter(key):
        def count(_msg, _arrived) -> None:
            counts[key] += 1

        return count

    recorder = Recorder("mirage_soak_recorder")
    recorder.subscribe("/mirage/predicted/views", PredictedView, counter("predicted_views"), 30)
    recorder.subscribe("/mirage/moving/mask", Image, counter("moving_masks"), 10)
    samples: list[dict] = []
    duration = 60.0 * args.minutes
    try:
        if not nodes[1].wait_for("world model ready", timeout=120):
            raise MirageError(f"world_model did not start; its log:\n{nodes[1].output()[-3000:]}")
        start = time.monotonic()
        with tqdm(total=int(duration), unit="s", desc="soak", disable=None) as bar:
            while (elapsed := time.monotonic() - start) < duration:
                before = dict(counts)
                recorder.spin_for(min(args.sample, duration - elapsed))
                row = {"t_s": round(time.monotonic() - start, 1), "gpu_mb": gpu_mb(),
                       **{f"{n.name}_rss_mb": rss_mb(n.popen.pid) for n in nodes},
                       **{k: counts[k] - before[k] for k in counts}}
                samples.append(row)
                bar.n = int(row["t_s"])
                bar.set_postfix(wm_mb=row["world_model_rss_mb"], views=row["predicted_views"], refresh=False)
                bar.refresh()
                dead = [n.name for n in nodes if not n.running()]
                if dead:
                    raise MirageError(f"{', '.join(dead)} exited after {row['t_s']} s; see {out / 'logs'}")
    finally:
        recorder.close()
        for node in nodes:
            node.stop()
    summary = summarise(samples, [n.name for n in nodes], args)
    (out / "soak.json").write_text(json.dumps({"summary": summary, "samples": samples}, indent=1))
    plot(samples, [n.name for n in nodes], summary, out / "soak.png")
    print(json.dumps(summary, indent=1))
    return 0


def summarise(samples: list[dict], names: list[str], args: argparse.Namespace) -> dict:
    """Growth per node after the warm-up and the intervals without output."""
    times = np.array([s["t_s"] for s in samples])
    return {
        "minutes": args.minutes, "sample_s": args.sample, "warmup_s": args.warmup, "size": [args.width, args.height],
        "rate_hz": args.rate, "provider": args.provider,
        "rss": {n: growth(times, np.array([s[f"{n}_rss_mb"] for s in samples], float), args.warmup) for n in names},
        "intervals": len(samples),
        "intervals_without_predicted_views": sum(s["predicted_views"] == 0 for s in samples),
        "intervals_without_moving_masks": sum(s["moving_masks"] == 0 for s in samples),
        "predicted_views": sum(s["predicted_views"] for s in samples),
    }


def plot(samples: list[dict], names: list[str], summary: dict, path: Path) -> None:
    """RSS per node and outputs per interval against time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    minutes = np.array([s["t_s"] for s in samples]) / 60.0
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    for name in names:
        g = summary["rss"][name]
        top.plot(minutes, [s[f"{name}_rss_mb"] for s in samples],
                 label=f"{name} ({g['start_mb']:.0f} -> {g['end_mb']:.0f} MB, {g['growth_percent']:+.1f} %)")
    top.axvline(summary["warmup_s"] / 60.0, color="grey", linestyle=":", label="end of warm-up")
    top.set_ylabel("resident memory (MB)")
    top.legend(fontsize=8)
    top.set_title(f"soak: demo pipeline {summary['size'][0]}x{summary['size'][1]} at {summary['rate_hz']:g} Hz, "
                  f"{summary['minutes']:g} min")
    for key in ("predicted_views", "moving_masks"):
        bottom.plot(minutes, [s[key] for s in samples], label=key.replace("_", " "))
    bottom.set_ylabel(f"messages per {summary['sample_s']:g} s")
    bottom.set_xlabel("minutes")
    bottom.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from mirage_ros.demo import add_pipeline_arguments

    parser.add_argument("--minutes", type=float, default=60.0, help="how long to run (default 60)")
    parser.add_argument("--sample", type=float, default=30.0, help="seconds between samples (default 30)")
    parser.add_argument("--warmup", type=float, default=300.0,
                        help="seconds before growth is measured (default 300)")
    parser.add_argument("--out", default="soak_out", help="output folder (default soak_out)")
    add_pipeline_arguments(parser)
