"""``mirage-ros demo``: the simulated camera, the world model and the consistency monitor as real
ROS 2 processes over DDS for a set time, then a contact sheet, a latency / memory plot and a
summary in ``demo_out/``.

No ``ros2 launch`` needed: the three nodes are started from here (``mirage_ros.ros.launcher``)
in a ROS domain of their own, and this process records what they publish. The world model uses
``--provider auto``: CUDA when onnxruntime-gpu sees a GPU, else CPU; and ``--weights-dir auto``:
the standard networks with CUDA, the light ones on a CPU (where the standard renderer cannot keep
up with the camera: docs/nodes.md, Performance).
"""

from __future__ import annotations

import argparse
import json
import time
from collections import OrderedDict
from pathlib import Path

import numpy as np

from mirage_ros.errors import InvalidInput, MirageError

#: recorded frames kept (the newest), enough for a 40 s demo at 10 Hz
KEEP = 400


class Store(OrderedDict):
    """``{stamp_ns: value}`` keeping the newest ``KEEP`` entries (exact integer stamps)."""

    def put(self, stamp_ns: int, value) -> None:
        self[stamp_ns] = value
        while len(self) > KEEP:
            self.popitem(last=False)

    def nearest(self, key: int, tolerance_ns: int):
        """Value whose stamp is closest to ``key`` (ns) within ``tolerance_ns``, else ``None``."""
        if not self:
            return None
        best = min(self, key=lambda k: abs(k - key))
        return self[best] if abs(best - key) <= tolerance_ns else None


class DemoRecording:
    """What comes back from the nodes, decoded on arrival (arrays, not messages)."""

    def __init__(self, recorder, namespace: str, sheet_horizon: float):
        from diagnostic_msgs.msg import DiagnosticArray
        from mirage_ros_msgs.msg import PredictedView
        from sensor_msgs.msg import Image

        self.sheet_horizon = sheet_horizon
        self.observed, self.observed_at = Store(), Store()
        self.truth_masks, self.masks, self.overlays = Store(), Store(), Store()
        self.predicted, self.rendered = Store(), Store()
        self.views: list[tuple[int, float, float, float]] = []  # (source stamp ns, horizon, arrived, coverage)
        self.diagnostics: list[tuple[float, str, dict]] = []
        self.start = time.monotonic()
        sub = recorder.subscribe
        sub("/camera/color/image_raw", Image, self._on_image, 20, best_effort=True)
        sub("/camera/motion_mask", Image, self._store(self.truth_masks, "mask"), 20, best_effort=True)
        sub(f"{namespace}/moving/mask", Image, self._store(self.masks, "mask"), 20)
        sub(f"{namespace}/moving/overlay", Image, self._store(self.overlays, "rgb"), 20)
        sub(f"{namespace}/predicted/views", PredictedView, self._on_view, 30)
        sub(f"{namespace}/rendered/view", PredictedView, self._on_rendered, 10)
        sub("/diagnostics", DiagnosticArray, self._on_diagnostics, 20)

    @staticmethod
    def _stamp(msg) -> int:
        from mirage_ros.messages.convert import time_to_ns

        return time_to_ns(msg.header.stamp)

    def _store(self, store: Store, kind: str):
        from mirage_ros.messages import convert

        decode = convert.mask_from_image if kind == "mask" else convert.rgb_from_image
        return lambda msg, arrived: store.put(self._stamp(msg), decode(msg))

    def _on_image(self, msg, arrived: float) -> None:
        from mirage_ros.messages import convert

        stamp = self._stamp(msg)
        self.observed.put(stamp, convert.rgb_from_image(msg))
        self.observed_at.put(stamp, arrived)

    def _on_view(self, msg, arrived: float) -> None:
        from mirage_ros.messages import convert

        stamp = self._stamp(msg)
        self.views.append((stamp - round(msg.horizon * 1e9), msg.horizon, arrived, msg.coverage))
        if abs(msg.horizon - self.sheet_horizon) < 1e-6:
            self.predicted.put(stamp, convert.rgb_from_image(msg.image))

    def _on_rendered(self, msg, arrived: float) -> None:
        from mirage_ros.messages import convert

        self.rendered.put(self._stamp(msg), convert.rgb_from_image(msg.image))

    def _on_diagnostics(self, msg, arrived: float) -> None:
        for status in msg.status:
            self.diagnostics.append((arrived - self.start, status.name, {kv.key: kv.value for kv in status.values}))

    def latencies(self) -> list[tuple[float, float, float]]:
        """``(seconds since start, horizon, latency s)``: image arrival -> predicted view arrival."""
        out = []
        for source, horizon, arrived, _ in self.views:
            seen = self.observed_at.get(source)
            if seen is not None:
                out.append((arrived - self.start, horizon, arrived - seen))
        return out

    def series(self, node: str, key: str) -> tuple[np.ndarray, np.ndarray]:
        """``(t, value)`` of a diagnostics key of ``node`` (``"world_model"``)."""
        rows = [(t, float(v[key])) for t, name, v in self.diagnostics if name.endswith(node) and key in v]
        return (np.array([r[0] for r in rows]), np.array([r[1] for r in rows])) if rows else (np.zeros(0), np.zeros(0))


def demo_networks(weights_dir: str, provider: str) -> str:
    """The world model's ``weights_dir``: as given, or for ``auto`` the standard networks where
    ``provider`` resolves to CUDA and the light ones on a CPU."""
    if weights_dir != "auto":
        return weights_dir
    from mirage_ros.runtime.session import resolve_provider

    return "standard" if resolve_provider(provider) == "cuda" else "light"


def start_nodes(args: argparse.Namespace, env: dict[str, str], logs: Path, ns: str = "/mirage") -> list:
    """The demo pipeline as processes: ``[sim_camera, world_model, consistency_monitor]``
    (:class:`mirage_ros.ros.launcher.NodeProcess`), the last two in namespace ``ns``; ``args``:
    the demo's camera and world-model options. The soak benchmark runs the same pipeline."""
    from mirage_ros.ros.launcher import NodeProcess, config_file

    camera = {"image": "/camera/color/image_raw", "depth": "/camera/depth/image_raw",
              "camera_info": "/camera/color/camera_info"}
    wm_params = {"provider": args.provider, "world_frame": "map", "horizons": args.horizons,
                 "weights_dir": demo_networks(args.weights_dir, args.provider)}
    return [
        NodeProcess("sim_camera", env, logs / "sim_camera.log", params={
            "width": args.width, "height": args.height, "rate": args.rate, "scene": args.scene,
            "seed": args.seed, "actors": args.actors, "noise": args.noise}),
        NodeProcess("world_model", env, logs / "world_model.log", ns, config_file("world_model.yaml"),
                    wm_params, camera),
        NodeProcess("consistency_monitor", env, logs / "consistency_monitor.log", ns,
                    config_file("consistency_monitor.yaml"), remap={k: camera[k] for k in ("image", "depth")}),
    ]


def run_demo(args: argparse.Namespace) -> tuple[dict, DemoRecording]:
    """Run the nodes for ``args.duration`` s and write the outputs; returns the summary and the
    recording."""
    import os

    from tqdm import tqdm

    from mirage_ros.ros.launcher import ros_environment

    out = Path(args.out)
    (out / "logs").mkdir(parents=True, exist_ok=True)
    env = ros_environment(args.domain_id)
    os.environ.update({k: env[k] for k in ("ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE")})
    if "FASTDDS_DEFAULT_PROFILES_FILE" in env:  # this process publishes nothing big, but reads
        os.environ["FASTDDS_DEFAULT_PROFILES_FILE"] = env["FASTDDS_DEFAULT_PROFILES_FILE"]
    ns = "/mirage"
    t_start = time.monotonic()
    nodes = start_nodes(args, env, out / "logs", ns)
    from mirage_ros.ros.recorder import Recorder

    recorder = Recorder("mirage_demo_recorder")
    try:
        rec = DemoRecording(recorder, ns, args.horizons[min(1, len(args.horizons) - 1)])
        print(f"mirage-ros demo: ROS_DOMAIN_ID={env['ROS_DOMAIN_ID']}, logs in {out / 'logs'}")
        if not nodes[1].wait_for("world model ready", timeout=120):
            raise MirageError(f"world_model did not start; its log:\n{nodes[1].output()[-3000:]}")
        # The clock starts once a predicted view and a moving mask arrived, so the run measures the
        # pipeline flowing, not DDS discovery or a slow first frame on a busy machine.
        if not recorder.spin_until(lambda: bool(rec.views) and bool(rec.masks), timeout=60):
            raise MirageError("no predicted view and moving mask within 60 s of the world model "
                              f"starting; see {out / 'logs'}")
        rec.start = time.monotonic()
        with tqdm(total=int(args.duration), unit="s", desc="demo", leave=False, disable=None) as bar:
            while (elapsed := time.monotonic() - rec.start) < args.duration:
                recorder.spin_for(0.25)
                bar.n = int(elapsed)
                bar.set_postfix(frames=len(rec.observed), views=len(rec.views), refresh=False)
                bar.refresh()
                dead = [n.name for n in nodes if not n.running()]
                if dead:
                    raise MirageError(f"{', '.join(dead)} exited early; see {out / 'logs'}")
        recorder.spin_for(1.0)  # views of the last frames
    finally:
        recorder.close()
        for node in nodes:
            node.stop()
    summary = summarise(rec, args, time.monotonic() - t_start)
    write_outputs(rec, summary, out)
    return summary, rec


def summarise(rec: DemoRecording, args: argparse.Namespace, wall_s: float) -> dict:
    """Numbers of the run (all measured in it)."""
    from mirage_ros.evaluation.metrics import mask_iou

    lat = np.array([x[2] for x in rec.latencies()]) * 1e3
    last = {name: values for _, name, values in rec.diagnostics}
    wm = next((v for k, v in last.items() if k.endswith("world_model")), {})
    monitor = next((v for k, v in last.items() if k.endswith("consistency_monitor")), {})
    ious = []
    for key, mask in rec.masks.items():
        truth = rec.truth_masks.get(key)
        if truth is not None and truth.shape == mask.shape and (truth.any() or mask.any()):
            ious.append(mask_iou(mask, truth))
    return {
        "duration_s": args.duration, "wall_s": round(wall_s, 1), "size": [args.width, args.height],
        "rate_hz": args.rate, "frames_received_by_recorder": len(rec.observed_at),
        "frames_integrated": int(wm.get("integrated", 0)),
        # both counted by the world model since it started: the share of its camera's frames it kept up with
        "frames_received_by_world_model": int(wm.get("frames_in", 0)),
        "integrated_share": round(int(wm.get("integrated", 0)) / max(int(wm.get("frames_in", 0)), 1), 3),
        "frames_skipped": int(wm.get("skipped", 0)),
        "frames_integrated_with_moving_mask": int(wm.get("integrated_with_mask", 0)),
        "predicted_views": len(rec.views), "horizons_s": args.horizons,
        "latency_ms": {"p50": _pct(lat, 50), "p90": _pct(lat, 90), "max": _pct(lat, 100), "count": int(lat.size)},
        "memory_points": int(wm.get("memory_points", 0)), "memory_bytes": int(wm.get("memory_bytes", 0)),
        "provider": wm.get("provider", "?"),
        "networks": demo_networks(args.weights_dir, args.provider),
        "node_ms": {k: float(wm[k]) for k in ("latency_ms_mean", "observe_ms_mean", "predict_ms_mean") if k in wm},
        "frames_dropped": {k: int(wm.get(k, 0)) for k in ("dropped_sync", "dropped_queue", "dropped_pose")},
        "monitor_detect_ms_mean": float(monitor.get("detect_ms_mean", "nan")),
        "moving_mask_iou_vs_ground_truth": round(float(np.mean(ious)), 3) if ious else None,
        "moving_mask_frames_compared": len(ious),
    }


def _pct(values: np.ndarray, q: float) -> float | None:
    return round(float(np.percentile(values, q)), 1) if values.size else None


def write_outputs(rec: DemoRecording, summary: dict, out: Path) -> None:
    """``contact_sheet.png``, ``latency_memory.png``, ``summary.json`` in ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    from mirage_ros.evaluation.metrics import psnr

    horizon = rec.sheet_horizon
    half_period = int(0.5e9 / summary["rate_hz"])
    # predictions are stamped source + horizon: match them to the observed frame nearest in time
    predicted = {k: rec.predicted.nearest(k, half_period) for k in rec.observed}
    rows = [("observed", rec.observed), (f"predicted {horizon:g} s earlier", predicted),
            ("memory at live pose", rec.rendered), ("moving objects (monitor)", rec.overlays)]
    # columns: frames with a prediction, as complete as possible (a busy CPU node skips frames),
    # spread over the run's last two thirds
    present = {k: sum(store.get(k) is not None for _, store in rows) for k in rec.observed if predicted[k] is not None}
    times = []
    for need in (4, 3, 2):
        times = sorted(k for k, n in present.items() if n >= need)
        if len(times) >= 4:
            break
    spread = np.linspace(len(times) // 3, len(times) - 1, min(6, len(times))) if times else []
    picks = [times[i] for i in sorted(set(int(i) for i in spread))]
    fig, axes = plt.subplots(len(rows), max(len(picks), 1), figsize=(3.2 * max(len(picks), 1), 2.6 * len(rows)),
                             squeeze=False)
    t0 = min(rec.observed) if rec.observed else 0
    for col, key in enumerate(picks):
        for row, (label, store) in enumerate(rows):
            ax = axes[row, col]
            ax.set_xticks([]), ax.set_yticks([])
            if col == 0:
                ax.set_ylabel(label, fontsize=9)
            if store.get(key) is None:  # this frame was dropped by a busy node / monitor
                ax.text(0.5, 0.5, "not produced", ha="center", va="center", transform=ax.transAxes)
                continue
            ax.imshow(store[key])
            title = f"t={(key - t0) * 1e-9:.1f} s" if row == 0 else ""
            if row == 1:
                title = f"PSNR {psnr(store[key], rec.observed[key]):.1f} dB"
            ax.set_title(title, fontsize=9)
    if not picks:
        axes[0, 0].text(0.5, 0.5, "no complete frame recorded", ha="center")
    fig.suptitle(f"mirage_ros demo: {summary['frames_integrated']} frames integrated, "
                 f"provider {summary['provider']}, {summary['networks']} networks", fontsize=11)
    fig.tight_layout()
    fig.savefig(out / "contact_sheet.png", dpi=90)
    plt.close(fig)

    fig, (ax_lat, ax_mem) = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
    lat = np.array(rec.latencies())
    for h in summary["horizons_s"]:
        sel = lat[np.isclose(lat[:, 1], h)] if lat.size else lat
        if sel.size:
            ax_lat.plot(sel[:, 0], sel[:, 2] * 1e3, ".", ms=3, label=f"horizon {h:g} s")
    ax_lat.set_ylabel("image in -> view out (ms)")
    ax_lat.legend(fontsize=8)
    ax_lat.grid(alpha=0.3)
    t, points = rec.series("world_model", "memory_points")
    _, nbytes = rec.series("world_model", "memory_bytes")
    ax_mem.plot(t, points, label="points")
    ax_mem.set_ylabel("memory points")
    ax_mem.set_xlabel("time since start (s)")
    ax_mb = ax_mem.twinx()
    ax_mb.plot(t, nbytes / 1e6, color="tab:orange", label="MB")
    ax_mb.set_ylabel("memory (MB)")
    ax_mem.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "latency_memory.png", dpi=90)
    plt.close(fig)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")


def _horizons(text: str) -> list[float]:
    try:
        values = [float(x) for x in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of seconds: {text!r}") from None
    if not values or any(not 0 <= v <= 30 for v in values):
        raise argparse.ArgumentTypeError(f"horizons must be in 0..30 s, got {text!r}")
    return values


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "demo", help="run sim camera + world model + monitor over DDS, write demo_out/",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=20.0, help="seconds to run (default 20)")
    parser.add_argument("--out", default="demo_out", help="output folder (default demo_out)")
    add_pipeline_arguments(parser)
    parser.set_defaults(func=main)


def add_pipeline_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of :func:`start_nodes`: provider, networks, camera, scene, horizons, domain."""
    parser.add_argument("--provider", choices=("auto", "cuda", "cpu"), default="auto",
                        help="ONNX Runtime provider of the world model (default auto: CUDA if present)")
    parser.add_argument("--weights-dir", default="auto",
                        help="networks: auto (standard with CUDA, light on a CPU), standard, light, or a folder "
                             "with manifest.json + ONNX files (default auto)")
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--rate", type=float, default=10.0, help="camera frames per second")
    parser.add_argument("--scene", default="corridor")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--actors", type=int, default=5, help="people walking (0 = static scene)")
    parser.add_argument("--noise", choices=("none", "kinect"), default="none")
    parser.add_argument("--horizons", type=_horizons, default=[0.5, 1.0, 2.0],
                        help="prediction horizons, comma-separated seconds (default 0.5,1,2)")
    parser.add_argument("--domain-id", type=int, default=None,
                        help="ROS domain (default: $ROS_DOMAIN_ID, else a random one)")


def main(args: argparse.Namespace) -> int:
    if not args.duration > 0:
        raise InvalidInput("--duration", f"must be > 0 seconds, got {args.duration}")
    summary, _ = run_demo(args)
    out = Path(args.out).resolve()
    lat = summary["latency_ms"]
    print(f"demo finished in {summary['wall_s']} s: {summary['frames_integrated']} frames integrated "
          f"({100 * summary['integrated_share']:.0f} % of those the world model received), "
          f"{summary['predicted_views']} predicted views, latency p50 {lat['p50']} ms / p90 {lat['p90']} ms, "
          f"memory {summary['memory_points']} points ({summary['memory_bytes'] / 1e6:.2f} MB), "
          f"provider {summary['provider']}, {summary['networks']} networks")
    for name in ("contact_sheet.png", "latency_memory.png", "summary.json"):
        print(f"  {out / name}")
    return 0
