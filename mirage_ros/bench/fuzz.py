"""``mirage-ros bench fuzz``: type-correct, malformed messages on every subscribed topic of the
``world_model`` (raw and image_transport-compressed input) and ``consistency_monitor`` nodes,
over real DDS, class by class and then as a random mixed run.

Each *class* of bad input (:data:`mirage_ros.bench.fuzz_cases.CLASSES`) publishes one malformed case at a time; a good frame
with its TF follows every few cases, as a camera goes on sending. After each class the run asks:
is every node still alive (a dead one is counted as a crash and restarted), did each answer with
warnings, does the world model still publish a predicted view for a good frame, how much did its
resident memory grow, and does its memory still hold points. The table and ``fuzz.json`` go to
``--out``. ``make test`` runs a few cases of every class (``test/ros/test_ros_fuzz.py``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mirage_ros.bench.fuzz_cases import CAMERA, CLASSES, NS, PACKED_CAMERA, PACKED_NS, Feeds
from mirage_ros.errors import InvalidInput, MirageError


@dataclass
class ClassResult:
    """What one class (or the mixed run) did to the nodes."""

    name: str
    sent: int = 0
    crashes: dict = field(default_factory=dict)
    warnings: dict = field(default_factory=dict)
    still_publishing: bool = False
    world_model_rss_growth_mb: float = 0.0
    memory_points_after: int = 0


class Campaign:
    """The nodes under test, the fuzzer's publishers, and a good-frame heartbeat.

    Args:
        out: folder of the node logs.
        width, height: the good frames' size.
        seed: of the random cases.
        big: include 8000x8000 images.
        env: process environment (``mirage_ros.ros.launcher.ros_environment``).
    """

    def __init__(self, out: Path, width: int = 160, height: int = 120, seed: int = 0, big: bool = True,
                 env: dict | None = None):
        from diagnostic_msgs.msg import DiagnosticArray
        from mirage_ros_msgs.msg import PredictedView
        from nav_msgs.msg import Path as PathMsg
        from sensor_msgs.msg import CameraInfo, Image

        from mirage_ros.geometry import invert_pose
        from mirage_ros.ros.camera_feed import CameraFeed
        from mirage_ros.ros.launcher import ros_environment
        from mirage_ros.ros.recorder import Recorder
        from mirage_ros.sim import SimConfig, Simulator

        self.out = Path(out)
        (self.out / "logs").mkdir(parents=True, exist_ok=True)
        self.env = env or ros_environment()
        for key in ("ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE", "FASTDDS_DEFAULT_PROFILES_FILE"):
            if key in self.env:
                os.environ[key] = self.env[key]
        self.rng = np.random.default_rng(seed)
        sim = Simulator(SimConfig(width=width, height=height, actors=False, path="loop"))
        first = next(iter(sim.frames(1)))
        T_world_base = sim.T_map_base(first.stamp)
        self.nodes = {}
        for name in ("world_model", "world_model_packed", "consistency_monitor"):
            self._start(name)
        self.rec = Recorder("mirage_fuzzer")
        self.views = self.rec.record(f"{NS}/predicted/views", PredictedView)
        self.packed_views = self.rec.record(f"{PACKED_NS}/predicted/views", PredictedView)
        self.diagnostics = self.rec.record("/diagnostics", DiagnosticArray)
        T_base_cam = invert_pose(T_world_base) @ first.T_world_cam
        self.feeds = Feeds(
            raw=CameraFeed(self.rec, T_base_cam, prefix=CAMERA),
            packed=CameraFeed(self.rec, T_base_cam, prefix=PACKED_CAMERA, transport="compressed"),
            path=self.rec.publisher(f"{NS}/path", PathMsg, 1),
            mask=self.rec.publisher(f"{NS}/moving/memory_mask", Image, 10),
            rendered=self.rec.publisher(f"{NS}/rendered/view", PredictedView, 5),
            depth_info=self.rec.publisher(f"{CAMERA}/depth/camera_info", CameraInfo, 10),
            rgb=first.rgb, depth=first.depth, K=first.K, T_world_base=T_world_base, big=big)

    def _start(self, name: str) -> None:
        from mirage_ros.ros.launcher import NodeProcess

        packed = name == "world_model_packed"
        camera = PACKED_CAMERA if packed else CAMERA
        remap = {"image": f"{camera}/color/image_raw", "depth": f"{camera}/depth/image_raw",
                 "camera_info": f"{camera}/color/camera_info"}
        params = {"provider": "cpu"} if name != "consistency_monitor" else {}
        if packed:
            params.update(image_transport="compressed", use_moving_mask=False)
        if name.startswith("world_model"):
            params.update(tf_timeout=0.3, path_max_poses=20_000, horizons=[0.5])
        log = self.out / "logs" / f"{name}.log"
        attempt = sum(1 for p in (self.out / "logs").glob(f"{name}*.log"))
        if attempt:
            log = log.with_name(f"{name}.{attempt}.log")  # a restart after a crash keeps the dead one's log
        self.nodes[name] = NodeProcess(name.replace("_packed", ""), self.env, log, PACKED_NS if packed else NS,
                                       params=params, remap=remap)

    def wait_ready(self, timeout: float = 120.0) -> None:
        for name in ("world_model", "world_model_packed"):
            if not self.nodes[name].wait_for("world model ready", timeout=timeout):
                raise MirageError(f"{name} did not start; its log:\n{self.nodes[name].output()[-3000:]}")
        if not (self.feeds.raw.wait_for_subscribers(timeout=60) and self.feeds.packed.wait_for_subscribers(timeout=60)):
            raise MirageError("the nodes did not subscribe to the fuzzer's cameras within 60 s")
        if not self.publishing(timeout=60):
            raise MirageError("no predicted view for good frames before fuzzing: see " + str(self.out / "logs"))

    def publishing(self, timeout: float = 20.0) -> bool:
        """Good frames until both world models publish a view of one of them."""
        views, packed = len(self.views), len(self.packed_views)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.feeds.good_frame()
            if self.rec.spin_until(lambda: len(self.views) > views and len(self.packed_views) > packed, timeout=1.5):
                return True
        return False

    def warnings(self) -> dict[str, int]:
        """Warning and error lines printed so far, per node."""
        return {name: len(re.findall(r"\[(WARN|ERROR)\]", node.output())) for name, node in self.nodes.items()}

    def memory_points(self) -> int:
        """``memory_points`` of the raw world model's newest diagnostics."""
        count = len(self.diagnostics)
        self.rec.spin_until(lambda: len(self.diagnostics) > count + 2, timeout=5)
        for item in reversed(self.diagnostics):
            status = item.msg.status[0]
            if status.name == "mirage_ros: world_model" and status.hardware_id == f"{NS}/world_model":
                return int(next(kv.value for kv in status.values if kv.key == "memory_points"))
        return 0

    def run_class(self, name: str, count: int, kinds: list[str] | None = None, good_every: int = 4,
                  pace: float = 0.02, settle: float = 1.0) -> ClassResult:
        """``count`` cases of class ``name`` (or of random ``kinds`` for the mixed run), then
        ``settle`` seconds for the nodes to answer before their warnings are counted (beyond the
        nodes' 2 s per-cause throttle, no warning of this class is held back by the last one's)."""
        from mirage_ros.bench.soak import rss_mb

        result = ClassResult(name)
        before = self.warnings()
        rss_before = rss_mb(self.nodes["world_model"].popen.pid) or 0.0
        peak = rss_before
        for i in range(count):
            kind = name if kinds is None else kinds[self.rng.integers(len(kinds))]
            CLASSES[kind](self.rng, self.feeds)
            result.sent += 1
            if i % good_every == good_every - 1:
                self.feeds.good_frame()
            self.rec.spin_for(pace)
            peak = max(peak, rss_mb(self.nodes["world_model"].popen.pid) or 0.0)
            if i % 10 == 9:
                self._restart_dead(result)
        self.rec.spin_for(settle)
        self._restart_dead(result)
        result.still_publishing = self.publishing()
        self._restart_dead(result)
        after = self.warnings()
        result.warnings = {n: after[n] - before.get(n, 0) for n in after}
        result.world_model_rss_growth_mb = round(peak - rss_before, 1)
        result.memory_points_after = self.memory_points()
        return result

    def _restart_dead(self, result: ClassResult) -> None:
        for name, node in list(self.nodes.items()):
            if not node.running():
                result.crashes[name] = result.crashes.get(name, 0) + 1
                self._start(name)
                if name.startswith("world_model"):
                    self.nodes[name].wait_for("world model ready", timeout=120)

    def close(self) -> None:
        self.rec.close()
        for node in self.nodes.values():
            node.stop()


def table(results: list[ClassResult]) -> str:
    """Markdown table: class, sent, crashes, warnings per node, still publishing, RSS growth."""
    rows = ["| class | sent | crashes | warnings (world_model / packed / monitor) | still publishing | "
            "world_model RSS peak growth (MB) | memory points after |", "|---|---|---|---|---|---|---|"]
    for r in results:
        w = r.warnings
        rows.append(f"| {r.name} | {r.sent} | {sum(r.crashes.values())} | {w.get('world_model', 0)} / "
                    f"{w.get('world_model_packed', 0)} / {w.get('consistency_monitor', 0)} | "
                    f"{'yes' if r.still_publishing else 'NO'} | {r.world_model_rss_growth_mb} | {r.memory_points_after} |")
    return "\n".join(rows)


def run(args: argparse.Namespace) -> int:
    """The campaign of ``args``: each class, then the mixed run; prints the table, writes JSON."""
    if args.messages < len(CLASSES) * 2:
        raise InvalidInput("--messages", f"must be >= {len(CLASSES) * 2} (two per class), got {args.messages}")
    per_class = math.ceil(args.messages * (1 - args.mixed) / len(CLASSES))
    mixed = max(0, args.messages - per_class * len(CLASSES))
    campaign = Campaign(Path(args.out), seed=args.seed, big=not args.no_big)
    results = []
    t0 = time.monotonic()
    try:
        campaign.wait_ready()
        from tqdm import tqdm

        for name in tqdm(list(CLASSES) + ["mixed"], desc="fuzz", unit="class", disable=None):
            if name == "mixed":
                if mixed:
                    results.append(campaign.run_class(name, mixed, kinds=list(CLASSES)))
                continue
            results.append(campaign.run_class(name, per_class))
    finally:
        campaign.close()
    summary = {"messages": sum(r.sent for r in results), "crashes": sum(sum(r.crashes.values()) for r in results),
               "all_still_publishing": all(r.still_publishing for r in results),
               "wall_s": round(time.monotonic() - t0, 1), "classes": [r.__dict__ for r in results]}
    Path(args.out, "fuzz.json").write_text(json.dumps(summary, indent=1))
    Path(args.out, "fuzz.md").write_text(table(results) + "\n")
    print(table(results))
    print(f"{summary['messages']} messages, {summary['crashes']} node deaths, every class followed by predicted "
          f"views: {summary['all_still_publishing']} ({summary['wall_s']} s)")
    return 0 if summary["crashes"] == 0 and summary["all_still_publishing"] else 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--messages", type=int, default=10_000, help="malformed cases in all (default 10000)")
    parser.add_argument("--mixed", type=float, default=0.3, help="share of them in the random mixed run (default 0.3)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-big", action="store_true", help="leave out the 8000x8000 images")
    parser.add_argument("--out", default="fuzz_out", help="output folder (default fuzz_out)")
