"""``mirage-ros bench fuzz``: type-correct, malformed messages on every subscribed topic of the
``world_model`` (raw and image_transport-compressed input) and ``consistency_monitor`` nodes,
over real DDS, class by class and then as a random mixed run.

Each *class* of bad input (:data:`CLASSES`) publishes one malformed case at a time; a good frame
with its TF follows every few cases, as a camera goes on sending. After each class the run asks:
is every node still alive (a dead one is counted as a crash and restarted), did each answer with
warnings, does the world model still publish a predicted view for a good frame, how much did its
resident memory grow, and does its memory still hold points. The table and ``fuzz.json`` go to
``--out``. ``make test`` runs a few cases of every class (``test/test_ros_fuzz.py``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from mirage_ros.errors import InvalidInput, MirageError

NS, PACKED_NS = "/fuzz", "/fuzz_packed"
CAMERA, PACKED_CAMERA = "/fuzz_camera", "/fuzz_packed_camera"


@dataclass
class Feeds:
    """What the fuzzer publishes with: the two cameras, the extra topics, a good frame, and the
    stamp clock (good frames must keep going forward however the bad ones jumped)."""

    raw: object  # CameraFeed
    packed: object  # CameraFeed, compressed
    path: object
    mask: object
    rendered: object
    depth_info: object
    rgb: np.ndarray
    depth: np.ndarray
    K: object  # Intrinsics
    T_world_base: np.ndarray
    stamp: float = 1000.0
    big: bool = True  # 8000x8000 images in the empty-and-huge class

    def next_stamp(self, step: float = 0.1) -> float:
        self.stamp += step
        return self.stamp

    def good_frame(self) -> float:
        """One valid frame with its pose on both cameras; returns its stamp."""
        stamp = self.next_stamp()
        self.raw.publish(self.rgb, self.depth, self.K, stamp, self.T_world_base)
        self.packed.publish(self.rgb, self.depth, self.K, stamp, None)
        return stamp

    def frame(self, stamp: float | None = None, pose: bool = True, **messages) -> None:
        """A frame on the raw camera with ``messages`` (``image``, ``depth_msg``, ``info``) replaced."""
        stamp = self.next_stamp() if stamp is None else stamp
        self.raw.publish(self.rgb, self.depth, self.K, stamp, self.T_world_base if pose else None, **messages)


def _image(width: int, height: int, encoding: str, data: bytes, step: int | None = None):
    from sensor_msgs.msg import Image

    from mirage_ros.ros.convert import byte_array

    return Image(width=width, height=height, encoding=encoding, step=width if step is None else step,
                 data=byte_array(data))


def _info(K, **fields):
    from mirage_ros.ros.convert import camera_info_from_intrinsics

    msg = camera_info_from_intrinsics(K)
    for name, value in fields.items():
        setattr(msg, name, value)
    return msg


# ---------------------------------------------------------------- classes of bad input
def depth_values(rng: np.random.Generator, f: Feeds) -> None:
    """Depth of NaN, +-inf, 1e30, 1e-30 or negative metres, everywhere or in patches."""
    from mirage_ros.ros.convert import array_to_image

    value = rng.choice([np.nan, np.inf, -np.inf, 1e30, 1e-30, -5.0, 3.4e38])
    depth = f.depth.copy()
    if rng.random() < 0.5:
        depth[:] = value
    else:
        depth[rng.random(depth.shape) < 0.5] = value
    f.frame(depth_msg=array_to_image(depth.astype(np.float32), "32FC1"))


def camera_info(rng: np.random.Generator, f: Feeds) -> None:
    """CameraInfo with zero, NaN or absurd K, zero size, NaN P."""
    K = f.K
    choice = rng.integers(9)
    info = [
        lambda: _info(K, k=[0.0] * 9),
        lambda: _info(K, k=[float("nan")] * 9),
        lambda: _info(replace(K, fx=1e-30)),
        lambda: _info(replace(K, fx=1e30, fy=1e30)),
        lambda: _info(replace(K, cx=1e12)),
        lambda: _info(K, k=[-K.fx, 0.0, K.cx, 0.0, K.fy, K.cy, 0.0, 0.0, 1.0]),
        lambda: _info(K, width=0, height=0),
        lambda: _info(K, k=[K.fx, 3.0, K.cx, 0.0, K.fy, K.cy, 0.0, 0.0, 2.0]),
        lambda: _info(K, p=[float("inf")] * 12),
    ][choice]()
    f.frame(info=info)


def image_layout(rng: np.random.Generator, f: Feeds) -> None:
    """Width, height and step that disagree with the data: truncated rows, step < row, huge height."""
    h, w = f.rgb.shape[:2]
    data = f.rgb.tobytes()
    image = [
        lambda: _image(w, h, "rgb8", data[: len(data) // 2], 3 * w),
        lambda: _image(w, h, "rgb8", data, w),
        lambda: _image(w, 100_000, "rgb8", data, 3 * w),
        lambda: _image(2**31 - 1, 2**31 - 1, "rgb8", data, 3 * w),
        lambda: _image(w, h, "rgb8", b"", 0),
    ][rng.integers(5)]()
    f.frame(image=image)


def empty_and_huge(rng: np.random.Generator, f: Feeds) -> None:
    """Zero-size images and an 8000x8000 one (a few per run: 64 MB each)."""
    if f.big and rng.random() < 0.2:
        f.frame(image=_image(8000, 8000, "mono8", bytes(8000 * 8000)))
        return
    f.frame(image=_image(0, 0, "rgb8", b"", 0), depth_msg=_image(0, 0, "32FC1", b"", 0))


def encodings(rng: np.random.Generator, f: Feeds) -> None:
    """Unknown encodings, and depth labelled 16UC1 on 32FC1 bytes or 32FC1 on 16UC1 bytes."""
    h, w = f.depth.shape
    metres = f.depth.astype(np.float32).tobytes()
    millimetres = (f.depth * 1000).astype(np.uint16).tobytes()
    case = rng.integers(5)
    if case == 0:
        f.frame(image=_image(w, h, str(rng.choice(["yuv422", "", "rgb16", "8UC3", "bayer_rggb8"])), f.rgb.tobytes(),
                             3 * w))
    elif case == 1:
        f.frame(depth_msg=_image(w, h, "16UC1", metres, 4 * w))
    elif case == 2:
        f.frame(depth_msg=_image(w, h, "32FC1", millimetres, 2 * w))
    elif case == 3:
        f.frame(depth_msg=_image(w, h, "rgb8", f.rgb.tobytes(), 3 * w))
    else:
        f.frame(image=_image(w, h, "32FC1", metres, 4 * w))


def compressed(rng: np.random.Generator, f: Feeds) -> None:
    """Garbage CompressedImage bytes, truncated files, a 20000x20000 PNG header, wrong formats."""
    from sensor_msgs.msg import CompressedImage

    from mirage_ros.ros.compressed import encode_colour, encode_depth
    from mirage_ros.ros.convert import sec_to_time

    fmt, colour = encode_colour(f.rgb)
    depth_fmt, depth = encode_depth(f.depth)
    colour, depth = bytes(colour), bytes(depth)
    case = rng.integers(6)
    if case == 0:
        colour = rng.bytes(int(rng.integers(0, 4000)))
    elif case == 1:
        colour = colour[: len(colour) // 3]
    elif case == 2:
        colour = png_claiming(colour, 20000, 20000)
    elif case == 3:
        fmt = str(rng.choice(["theora", "", "rgb8; rvl"]))
    elif case == 4:
        depth = depth[:12] + rng.bytes(200)
    else:
        depth_fmt = "16UC1; compressedDepth rvl"
    stamp = sec_to_time(f.next_stamp())
    messages = [CompressedImage(format=fmt, data=colour), CompressedImage(format=depth_fmt, data=depth)]
    for msg in messages:
        msg.header.stamp, msg.header.frame_id = stamp, f.packed.frames[2]
    f.packed.info.publish(_info(f.K, header=messages[0].header))
    f.packed.depth.publish(messages[1])
    f.packed.image.publish(messages[0])


def png_claiming(data: bytes, width: int, height: int) -> bytes:
    """A PNG file whose header claims ``width x height`` (a decompression bomb's few kilobytes)."""
    import zlib

    ihdr = bytearray(data[12:29])
    ihdr[4:12] = struct.pack(">II", width, height)
    return data[:12] + bytes(ihdr) + struct.pack(">I", zlib.crc32(bytes(ihdr))) + data[33:]


def tf(rng: np.random.Generator, f: Feeds) -> None:
    """Transforms with NaN or 1e30 translations, zero, NaN or unnormalised quaternions, empty or
    self-referencing frames; the frame after it."""
    from tf2_msgs.msg import TFMessage

    from mirage_ros.ros.convert import sec_to_time, transform_stamped

    world, base, _ = f.raw.frames
    stamp = f.next_stamp()
    msg = transform_stamped(f.T_world_base, world, base, sec_to_time(stamp))
    t, q = msg.transform.translation, msg.transform.rotation
    case = rng.integers(7)
    if case == 0:
        t.x = float("nan")
    elif case == 1:
        t.x, t.y = 1e30, -1e30
    elif case == 2:
        q.x = q.y = q.z = q.w = 0.0
    elif case == 3:
        q.w, q.x = float("nan"), float("inf")
    elif case == 4:
        q.w, q.x, q.y, q.z = 5.0, 3.0, 0.0, 0.0  # not normalised: tf2 takes it normalised
    elif case == 5:
        msg.header.frame_id = ""
    else:
        msg.child_frame_id = msg.header.frame_id
    f.raw.tf.publish(TFMessage(transforms=[msg]))
    f.frame(stamp=stamp, pose=False)


def stamps(rng: np.random.Generator, f: Feeds) -> None:
    """Frames stamped backwards (0.5 s, an hour), hours ahead, at zero, at the end of time."""
    case = rng.integers(5)
    offset = [-0.5, -3600.0, 3 * 3600.0, None, None][case]
    if offset is not None:
        f.frame(stamp=f.stamp + offset)
    elif case == 3:
        f.frame(stamp=0.0)
    else:
        f.frame(stamp=float(2**31 - 2))


def tf_missing(rng: np.random.Generator, f: Feeds) -> None:
    """A frame whose pose never comes."""
    f.frame(pose=False)


def paths(rng: np.random.Generator, f: Feeds) -> None:
    """Paths empty, of 10,000 poses, in an unknown frame, with NaN / inf / 1e12 m positions, zero
    or NaN orientations."""
    from geometry_msgs.msg import PoseStamped
    from nav_msgs.msg import Path

    case = rng.integers(8)
    count = {0: 0, 1: 10_000}.get(case, 6)
    positions = f.T_world_base[:3, 3] + np.outer(np.arange(count) * 0.3, [1.0, 0.0, 0.0])
    if case == 3:
        positions[2, 0] = np.nan
    elif case == 4:
        positions[1, 1] = np.inf
    elif case == 5:
        positions *= 1e12
    msg = Path()
    msg.header.frame_id = "nowhere" if case == 2 else f.raw.frames[0]
    for p in positions:
        pose = PoseStamped()
        pose.pose.position.x, pose.pose.position.y, pose.pose.position.z = (float(v) for v in p)
        o = pose.pose.orientation
        o.w, o.x = (float("nan"), 0.0) if case == 7 else (0.0, 0.0) if case == 6 else (1.0, 0.0)
        msg.poses.append(pose)
    f.path.publish(msg)


def masks(rng: np.random.Generator, f: Feeds) -> None:
    """Moving masks of the wrong size or encoding, with truncated data, or for no frame."""
    from mirage_ros.ros.convert import sec_to_time

    h, w = f.depth.shape
    mask = [
        lambda: _image(w // 2, h // 2, "mono8", bytes(w * h // 4)),
        lambda: _image(w, h, "rgb8", bytes(3 * w * h), 3 * w),
        lambda: _image(w, h, "mono8", bytes(10)),
        lambda: _image(w, h, "mono8", bytes(w * h)),
    ][rng.integers(4)]()
    mask.header.stamp = sec_to_time(f.stamp + float(rng.choice([0.0, -1.0, 1e6])))
    f.mask.publish(mask)


def rendered_views(rng: np.random.Generator, f: Feeds) -> None:
    """The monitor's input: renderings with a NaN pose, a zero K, images of the wrong size or
    encoding, a NaN confidence, matched to a live frame."""
    from mirage_ros_msgs.msg import PredictedView

    from mirage_ros.ros import outputs
    from mirage_ros.ros.convert import array_to_image, camera_info_from_intrinsics, sec_to_time

    stamp = f.next_stamp()
    request = outputs.ViewRequest(f.T_world_base.copy(), sec_to_time(stamp), 0.0, PredictedView.SOURCE_LIVE)
    view = outputs.predicted_view(request, f.rgb, f.depth, np.ones(f.depth.shape, np.float32), f.K,
                                  f.raw.frames[2], f.raw.frames[0])
    case = rng.integers(5)
    if case == 0:
        view.camera_pose.orientation.w = float("nan")
    elif case == 1:
        view.camera_info = camera_info_from_intrinsics(f.K)
        view.camera_info.k = [0.0] * 9
    elif case == 2:
        view.image = array_to_image(f.rgb[::2, ::3], "rgb8")
    elif case == 3:
        view.depth = _image(5, 5, "weird", bytes(25))
    else:
        view.confidence = array_to_image(np.full(f.depth.shape, np.nan, np.float32), "32FC1")
    f.rendered.publish(view)
    f.frame(stamp=stamp, pose=False)


def depth_camera_info(rng: np.random.Generator, f: Feeds) -> None:
    """Stray CameraInfos beside the depth topic: another size, zero K."""
    size = [(64, 48), (1280, 960), (f.K.width, f.K.height)][rng.integers(3)]
    info = _info(replace(f.K, width=size[0], height=size[1]))
    if rng.random() < 0.3:
        info.k = [0.0] * 9
    f.depth_info.publish(info)


CLASSES: dict[str, Callable[[np.random.Generator, Feeds], None]] = {
    "depth_values": depth_values, "camera_info": camera_info, "image_layout": image_layout,
    "empty_and_huge": empty_and_huge, "encodings": encodings, "compressed": compressed, "tf": tf,
    "stamps": stamps, "tf_missing": tf_missing, "paths": paths, "masks": masks,
    "rendered_views": rendered_views, "depth_camera_info": depth_camera_info,
}


# ---------------------------------------------------------------- the campaign
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
                  pace: float = 0.02) -> ClassResult:
        """``count`` cases of class ``name`` (or of random ``kinds`` for the mixed run)."""
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
        self.rec.spin_for(1.0)
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
