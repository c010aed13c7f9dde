"""End-to-end benchmark of the ROS nodes: image in -> predicted view out, and sustained rate.

    python -m mirage_ros.bench.e2e --json            # CPU, world_model + consistency_monitor

The world model (and, by default, the consistency monitor) run as real processes over DDS, as
deployed. This process publishes simulator frames with TF (``CameraFeed``) and times, per frame,
publication -> arrival of its first and of its last horizon view. Rates are ramped up; the
sustained rate is the highest one at which every frame sent came back as a full set of views.

Baseline, measured in the same run on the same frames and networks: the pipeline in-process
(``WorldModel.observe`` + one live rendering + one prediction per horizon, no ROS): the compute
floor. Ratios: ROS end-to-end latency / baseline time per frame, sustained rate / baseline rate.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

RATES = (1.0, 2.0, 3.0, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0)


def baseline(frames, horizons, provider: str, weights_dir: str | None, live: bool) -> dict:
    """Pipeline time per frame without ROS, on the node's schedule: (live rendering for the
    monitor) + observe -> first view -> one view per further horizon."""
    from mirage_ros.pipeline import WorldModel
    from mirage_ros.runtime.networks import Networks

    wm = WorldModel(Networks.load(weights_dir, provider=provider), provider=provider)
    first, full = [], []
    for i, f in enumerate(frames):
        t0 = time.perf_counter()
        if live:
            wm.predict(f.T_world_cam, f.K)
        wm.observe(f.rgb, f.depth, f.K, f.T_world_cam, f.stamp)
        wm.predict(f.T_world_cam, f.K)
        t1 = time.perf_counter()
        for _ in horizons[1:]:
            wm.predict(f.T_world_cam, f.K)
        if i >= 3:  # warm-up: the first runs of each session allocate
            first.append(t1 - t0)
            full.append(time.perf_counter() - t0)
    first_ms, full_ms = np.array(first) * 1e3, np.array(full) * 1e3
    return {"first_view_ms_p50": round(float(np.median(first_ms)), 1),
            "all_views_ms_p50": round(float(np.median(full_ms)), 1),
            "max_rate_hz": round(1e3 / float(full_ms.mean()), 2), "provider": wm.networks.provider}


class Ramp:
    """Publishes frames at a rate and matches the views that come back."""

    def __init__(self, recorder, feed, sim, frames, horizons):
        from mirage_ros_msgs.msg import PredictedView

        self.rec, self.feed, self.sim, self.frames = recorder, feed, sim, frames
        self.horizons = horizons
        self.sent: dict[int, float] = {}  # stamp ns -> publish time
        self.arrivals: dict[int, list[float]] = {}
        self.index = 0
        recorder.subscribe("/mirage/predicted/views", PredictedView, self._on_view, 50)

    def _on_view(self, msg, arrived: float) -> None:
        from mirage_ros.messages.convert import time_to_ns

        source = time_to_ns(msg.header.stamp) - int(round(msg.horizon * 1e9))
        key = min(self.sent, key=lambda k: abs(k - source), default=None)
        if key is not None and abs(key - source) < 1_000_000:
            self.arrivals.setdefault(key, []).append(arrived)

    def step(self, rate: float, count: int) -> dict:
        """Send ``count`` frames at ``rate`` Hz; returns the step's numbers."""
        period, keys = 1.0 / rate, []
        next_time = time.monotonic()
        for _ in range(count):
            frame = self.frames[self.index % len(self.frames)]
            stamp = 1000.0 + self.index * 0.1  # continuous stamps even when the frame list wraps
            self.index += 1
            key = int(round(stamp * 1e9))
            self.sent[key] = time.monotonic()
            self.feed.publish(frame.rgb, frame.depth, frame.K, stamp, self.sim.T_map_base(frame.stamp))
            keys.append(key)
            next_time += period
            self.rec.spin_for(max(0.0, next_time - time.monotonic()))
        self.rec.spin_until(lambda: all(len(self.arrivals.get(k, [])) >= len(self.horizons) for k in keys), 5.0)
        complete = [k for k in keys if len(self.arrivals.get(k, [])) >= len(self.horizons)]
        first = np.array([min(self.arrivals[k]) - self.sent[k] for k in complete]) * 1e3
        last = np.array([max(self.arrivals[k]) - self.sent[k] for k in complete]) * 1e3
        return {"rate_hz": rate, "sent": count, "complete": len(complete), "dropped": count - len(complete),
                "first_view_ms_p50": _p(first, 50), "first_view_ms_p90": _p(first, 90),
                "all_views_ms_p50": _p(last, 50), "all_views_ms_p90": _p(last, 90)}


def _p(values: np.ndarray, q: float) -> float | None:
    return round(float(np.percentile(values, q)), 1) if values.size else None


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from mirage_ros.geometry import invert_pose
    from mirage_ros.ros.launcher import NodeProcess, config_file, ros_environment
    from mirage_ros.sim import SimConfig, Simulator

    horizons = [0.5, 1.0, 2.0]
    sim = Simulator(SimConfig(width=args.width, height=args.height, actors=5, path="loop"))
    frames = list(sim.frames(args.frames))
    base = baseline(frames[: min(20, len(frames))], horizons, args.provider, args.weights_dir, args.monitor)

    env = ros_environment(None)
    os.environ.update(env)  # this process publishes the camera: it needs the DDS profile too
    logs = Path(tempfile.mkdtemp(prefix="mirage_e2e_"))
    camera = {"image": "/camera/color/image_raw", "depth": "/camera/depth/image_raw",
              "camera_info": "/camera/color/camera_info"}
    params = {"provider": args.provider, "horizons": horizons, "max_pending_frames": 2,
              "use_moving_mask": args.monitor}
    if args.weights_dir:
        params["weights_dir"] = args.weights_dir
    nodes = [NodeProcess("world_model", env, logs / "world_model.log", "/mirage", config_file("world_model.yaml"),
                         params, camera)]
    if args.monitor:
        nodes.append(NodeProcess("consistency_monitor", env, logs / "consistency_monitor.log", "/mirage",
                                 config_file("consistency_monitor.yaml"), remap={k: camera[k] for k in ("image", "depth")}))
    from mirage_ros.ros.camera_feed import CameraFeed
    from mirage_ros.ros.recorder import Recorder

    steps = []
    recorder = Recorder("mirage_bench_e2e")
    try:
        if not nodes[0].wait_for("world model ready", 120):
            raise RuntimeError(f"world_model did not start:\n{nodes[0].output()[-2000:]}")
        feed = CameraFeed(recorder, invert_pose(sim.T_map_base(0.0)) @ frames[0].T_world_cam)
        ramp = Ramp(recorder, feed, sim, frames, horizons)
        if not feed.wait_for_subscribers(60):
            raise RuntimeError("world_model never subscribed to the camera topics")
        ramp.step(2.0, 6)  # warm-up: memory, sessions, monitor pairing
        rates = [r for r in RATES if r <= args.max_rate]
        for rate in tqdm(rates, desc="rates", disable=None, leave=False):
            step = ramp.step(rate, max(args.min_frames, int(rate * args.seconds)))
            steps.append(step)
            if step["dropped"] > 0:
                break
    finally:
        recorder.close()
        for node in nodes:
            node.stop()
    clean = [s for s in steps if s["dropped"] == 0]
    reference = clean[0] if clean else (steps[0] if steps else {})
    sustained = clean[-1]["rate_hz"] if clean else 0.0
    result = {
        "benchmark": "e2e", "size": [args.width, args.height], "horizons_s": horizons,
        "monitor": args.monitor, "provider": base["provider"], "cpu_count": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "baseline_in_process": base,
        "latency_at_lowest_rate": reference,
        "sustained_rate_hz": sustained,
        "ratio_latency_first_view_vs_baseline": _ratio(reference.get("first_view_ms_p50"), base["first_view_ms_p50"]),
        "ratio_latency_all_views_vs_baseline": _ratio(reference.get("all_views_ms_p50"), base["all_views_ms_p50"]),
        "ratio_sustained_rate_vs_baseline": _ratio(sustained, base["max_rate_hz"]),
        "steps": steps, "logs": str(logs),
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"baseline (in-process pipeline): first view {base['first_view_ms_p50']} ms, all views "
              f"{base['all_views_ms_p50']} ms per frame, {base['max_rate_hz']} Hz")
        print(f"end to end over DDS: first view {reference.get('first_view_ms_p50')} ms, all views "
              f"{reference.get('all_views_ms_p50')} ms (p50 at {reference.get('rate_hz')} Hz); "
              f"sustained {sustained} Hz without drops")
    return 0


def _ratio(a, b) -> float | None:
    return round(a / b, 2) if a and b else None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--provider", choices=("auto", "cuda", "cpu"), default="cpu")
    parser.add_argument("--weights-dir", default=None, help="networks other than the shipped ones")
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--frames", type=int, default=60, help="distinct simulator frames (cycled)")
    parser.add_argument("--seconds", type=float, default=3.0, help="seconds of input per rate step")
    parser.add_argument("--min-frames", type=int, default=10, help="frames per rate step at least")
    parser.add_argument("--max-rate", type=float, default=30.0, help="highest rate tried (Hz)")
    parser.add_argument("--no-monitor", dest="monitor", action="store_false",
                        help="world_model alone (no consistency_monitor, no mask wait)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mirage_ros.bench.e2e", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
