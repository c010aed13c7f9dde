"""RGB-D frames with camera poses from a rosbag (rosbag2 MCAP / sqlite3, ROS 1 ``.bag``) via rosbags.

Auto-detection (each overridable by a :class:`SourceOptions` field / ``mirage-ros eval`` option):

- colour: the first ``sensor_msgs/Image`` topic with a colour encoding (rgb8, bgr8, rgba8, bgra8,
  mono8), preferring names with ``color``/``rgb`` and passing over ``depth``/``mask`` names; else
  a JPEG / PNG ``CompressedImage`` (image_transport's ``compressed``);
- depth: an Image topic in ``32FC1`` (m) or ``16UC1`` (mm), preferring ``aligned`` names, else a
  ``compressedDepth`` CompressedImage (PNG); each colour image takes the depth image nearest in
  stamp within ``max_depth_dt``;
- intrinsics: the CameraInfo in the colour topic's namespace (else the first CameraInfo);
- pose: ``world_frame <- camera frame`` through ``/tf`` + ``/tf_static`` at the colour stamp;
  ``nav_msgs/Odometry`` adds ``header.frame_id -> child_frame_id`` edges that TF lacks, and
  ``camera_offset`` attaches the camera frame to the odometry child frame;
- ground-truth motion mask: a mono8 Image topic whose name contains ``mask`` (optional).

Image decoding is :mod:`mirage_ros.messages.convert` and :mod:`mirage_ros.messages.compressed` (numpy and
Pillow, on rosbags message objects).
"""

from __future__ import annotations

import sqlite3
import struct
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from mirage_ros.errors import InvalidInput
from mirage_ros.evaluation.bag_topics import IMAGE, ODOMETRY, TF, detect_topics
from mirage_ros.evaluation.sources import (
    Observation,
    Recording,
    Skipped,
    SourceOptions,
    associate,
    intrinsics_from_option,
)
from mirage_ros.geometry import Intrinsics, register_depth
from mirage_ros.messages.compressed import COMPRESSED_IMAGE, depth_from_compressed, rgb_from_compressed
from mirage_ros.messages.convert import (
    depth_from_image,
    intrinsics_from_camera_info,
    mask_from_image,
    pose_to_matrix,
    rgb_from_image,
    time_to_sec,
    transform_to_matrix,
)
from mirage_ros.messages.frames import optical_between, resolve_convention, to_optical
from mirage_ros.transforms import TransformBuffer, TransformLookupError, offset_matrix

#: (message type, role) -> decoder to the frame's arrays
DECODERS = {
    (IMAGE, "color"): rgb_from_image,
    (IMAGE, "depth"): depth_from_image,
    (IMAGE, "mask"): mask_from_image,
    (COMPRESSED_IMAGE, "color"): rgb_from_compressed,
    (COMPRESSED_IMAGE, "depth"): depth_from_compressed,
}


@contextmanager
def _reading(path: Path):
    """Turn whatever a damaged bag makes rosbags raise into one clear ``InvalidInput``."""
    from rosbags.highlevel import AnyReaderError
    from rosbags.rosbag1 import ReaderError as Reader1Error
    from rosbags.rosbag2 import ReaderError as Reader2Error
    from rosbags.serde import SerdeError

    try:
        yield
    except (AnyReaderError, Reader1Error, Reader2Error, SerdeError, sqlite3.Error, struct.error,
            EOFError, KeyError, ValueError, OSError, AssertionError) as exc:
        if isinstance(exc, InvalidInput):
            raise
        hint = next((h for key, h in _HINTS.items() if key in str(exc)), "")
        raise InvalidInput("INPUT", f"{path}: unreadable rosbag ({type(exc).__name__}: {exc}){hint}") from exc


#: What a damaged bag's error means, for a person (keyed on rosbags' message).
_HINTS = {
    "end magic": "; the MCAP file has no footer (recording interrupted?): `mcap recover IN -o OUT` repairs it",
    "malformed": "; the sqlite3 file is damaged: `ros2 bag reindex` or sqlite3 `.recover` may save it",
    "metadata": "; a rosbag2 folder needs its metadata.yaml (`ros2 bag reindex DIR` rebuilds it)",
}


def _reader(path: Path):
    from rosbags.highlevel import AnyReader
    from rosbags.typesys import Stores, get_typestore

    return AnyReader([path], default_typestore=get_typestore(Stores.ROS2_KILTED))


@dataclass
class _Topic:
    """Per-topic record of pass 1: stamps and decode status of every message, by ordinal."""

    name: str
    stamps: list[float] = field(default_factory=list)
    ok: list[bool] = field(default_factory=list)
    frame_id: str = ""
    encoding: str = ""
    shape: tuple[int, int] | None = None  # (H, W) of the first decodable message


def _stamp(msg) -> float:
    return time_to_sec(msg.header.stamp)


class BagRecording(Recording):
    """A rosbag indexed by :func:`open_bag`; :meth:`frames` streams pass 2."""

    def __init__(self, *, topics: dict[str, str | None], rows: np.ndarray,
                 registration: tuple[Intrinsics, np.ndarray] | None = None, **kwargs):
        super().__init__(**kwargs)
        self._topics = topics  # role -> topic ("color", "depth", "mask")
        self._rows = rows  # (N, 3) message ordinals per usable frame: color, depth, mask (-1 none)
        self._registration = registration  # (K_depth, T_colour_depth) of unregistered depth

    def frames(self) -> Iterator[Observation]:
        roles = {topic: role for role, topic in self._topics.items() if topic}
        column = {"color": 0, "depth": 1, "mask": 2}
        needed = {role: Counter(self._rows[:, column[role]].tolist()) for role in roles.values()}
        held: dict[tuple[str, int], np.ndarray] = {}
        ordinal = Counter()
        nxt = 0
        with _reading(self.path), _reader(self.path) as reader:
            wanted = [c for c in reader.connections if c.topic in roles]
            for connection, _, raw in reader.messages(connections=wanted):
                role = roles[connection.topic]
                index = ordinal[role]
                ordinal[role] += 1
                if needed[role][index]:
                    msg = reader.deserialize(raw, connection.msgtype)
                    held[role, index] = DECODERS[connection.msgtype, role](msg)
                while nxt < len(self._rows) and all(
                    (role, int(self._rows[nxt, column[role]])) in held or self._rows[nxt, column[role]] < 0
                    for role in roles.values()
                ):
                    yield self._observation(nxt, held, needed)
                    nxt += 1
                if nxt == len(self._rows):
                    return

    def _observation(self, i: int, held: dict, needed: dict) -> Observation:
        parts = {}
        for role, col in (("color", 0), ("depth", 1), ("mask", 2)):
            key = (role, int(self._rows[i, col]))
            if key[1] < 0:
                parts[role] = None
                continue
            parts[role] = held[key]
            needed[role][key[1]] -= 1
            if needed[role][key[1]] == 0:
                del held[key]
        if self._registration is None:
            depth = _fit_depth(parts["depth"], self.K)
        else:
            depth = register_depth(parts["depth"], self._registration[0], self._registration[1], self.K)
        return Observation(float(self.stamps[i]), parts["color"], depth, self.K, self.poses[i], parts["mask"])


def _fit_depth(depth: np.ndarray, K: Intrinsics) -> np.ndarray:
    """Depth at the colour resolution: nearest-neighbour upsampling of a same-aspect depth image."""
    if depth.shape == K.shape:
        return depth
    rows = (np.arange(K.height) * depth.shape[0]) // K.height
    cols = (np.arange(K.width) * depth.shape[1]) // K.width
    return depth[rows[:, None], cols[None, :]]


def open_bag(path: Path, options: SourceOptions, progress: bool = False) -> BagRecording:
    """Index a rosbag: topics, colour/depth pairs, poses and intrinsics (pass 1 of 2).

    ``progress`` shows a bar over the messages read (long bags take a while to index).

    Raises:
        InvalidInput: see :func:`mirage_ros.evaluation.recordings.open_recording`.
    """
    skipped: list[Skipped] = []
    with _reading(path), _reader(path) as reader:
        kind = "rosbag2" if reader.is2 else "rosbag1"
        topics = detect_topics(reader, options, skipped)
        index = _index(reader, topics, options, skipped, progress)
    tf, odom_note = _pose_graph(index, options)
    skipped.extend(Skipped(what, f"{n} transform(s) rejected") for what, n in index["pose_problems"].items())
    camera_frame = options.camera_frame or index["color"].frame_id
    known = tf.frames()
    if camera_frame not in known:
        raise InvalidInput("--camera-frame", f"no pose for camera frame {camera_frame!r}: "
                           f"TF/odometry frames are {sorted(known) or 'none'} "
                           "(a bag without /tf or nav_msgs/Odometry has no poses; --camera-offset "
                           "attaches the camera to the odometry child frame)")
    world = options.world_frame or tf.root(camera_frame)
    if world not in known:
        raise InvalidInput("--world-frame", f"{world!r} is not in TF (frames: {sorted(known)})")
    try:
        convention = resolve_convention(options.camera_frame_convention, camera_frame)
    except InvalidInput as exc:
        raise InvalidInput("--camera-frame-convention", exc.reason) from exc

    K = _intrinsics(index, options)
    color, depth, mask = index["color"], index["depth"], index["mask"]
    registration, registration_note = _registration(index, options, tf, K, camera_frame)
    color_stamps = np.asarray(color.stamps)
    depth_ok = np.asarray(depth.ok, dtype=bool)
    depth_idx = associate(color_stamps, np.where(depth_ok, depth.stamps, np.nan), options.max_depth_dt)
    mask_idx = (associate(color_stamps, mask.stamps, options.max_depth_dt) if mask is not None
                else np.full(len(color_stamps), -1))
    rows, stamps, poses = [], [], []
    for i in np.argsort(color_stamps, kind="stable"):
        t = float(color_stamps[i])
        if not color.ok[i]:
            continue
        if stamps and t <= stamps[-1]:
            skipped.append(Skipped(f"frame t={t:.3f}", "same stamp as the previous colour image"))
            continue
        if depth_idx[i] < 0:
            skipped.append(Skipped(f"frame t={t:.3f}", f"no depth image within {options.max_depth_dt} s"))
            continue
        try:
            T_world_frame = tf.lookup(world, camera_frame, t)
        except TransformLookupError as exc:
            skipped.append(Skipped(f"frame t={t:.3f}", f"no pose: {exc}"))
            continue
        rows.append((i, depth_idx[i], mask_idx[i]))
        stamps.append(t)
        poses.append(to_optical(T_world_frame, convention))
        if options.max_frames is not None and len(rows) == options.max_frames:
            break
    details = {
        "topics": {k: v for k, v in topics.items()},
        "encodings": {"color": color.encoding, "depth": depth.encoding},
        "world_frame": world,
        "camera_frame": camera_frame,
        "camera_frame_convention": convention,
        "odometry": odom_note,
        "messages": {role: len(t.stamps) for role, t in index.items() if isinstance(t, _Topic)},
    }
    if registration_note:
        details["depth_registration"] = registration_note
    elif depth.shape != color.shape:
        details["depth_resampled"] = f"{depth.shape} -> {color.shape} (nearest; assumes registered depth)"
    return BagRecording(
        path=path, kind=kind, stamps=np.asarray(stamps, dtype=np.float64),
        poses=np.asarray(poses, dtype=np.float64).reshape(-1, 4, 4), K=K, details=details,
        skipped=_summarise(skipped), topics={r: topics[r] for r in ("color", "depth", "mask")},
        rows=np.asarray(rows, dtype=np.int64).reshape(-1, 3), registration=registration,
    )


MAX_SKIPPED_LISTED = 500


def _summarise(skipped: list[Skipped]) -> list[Skipped]:
    """At most :data:`MAX_SKIPPED_LISTED` entries, the rest counted in one line."""
    if len(skipped) <= MAX_SKIPPED_LISTED:
        return skipped
    rest = len(skipped) - MAX_SKIPPED_LISTED
    return skipped[:MAX_SKIPPED_LISTED] + [Skipped("...", f"{rest} more items skipped (not listed)")]


def _index(reader, topics: dict[str, str | None], options: SourceOptions, skipped: list[Skipped],
           progress: bool) -> dict:
    """Pass 1: decode-check every image, collect CameraInfo, TF and odometry (no pixels kept)."""
    odom_topics = [c.topic for c in reader.connections if c.msgtype == ODOMETRY]
    if options.odom_topic is not None and options.odom_topic not in odom_topics:
        raise InvalidInput("--odom-topic", f"{options.odom_topic!r} is not a nav_msgs/Odometry topic ({odom_topics})")
    odom_topic = options.odom_topic or (odom_topics[0] if odom_topics else None)
    images = {topics[r]: _Topic(topics[r]) for r in ("color", "depth", "mask") if topics[r]}
    msgtypes = {c.topic: c.msgtype for c in reader.connections}
    decoders = {topics[role]: DECODERS[msgtypes[topics[role]], role] for role in ("color", "depth", "mask")
                if topics[role]}
    out: dict = {"info": None, "depth_info": None, "tf": [], "odom": [], "odom_topic": odom_topic}
    infos = {topics["depth_info"]: "depth_info", topics["info"]: "info"}  # one topic for both: the colour's
    wanted = [c for c in reader.connections
              if c.topic in images or c.topic in (*infos, odom_topic) or c.msgtype == TF]
    from tqdm import tqdm

    bar = tqdm(total=sum(c.msgcount for c in wanted), desc=f"index {_bag_name(reader)}", unit="msg",
               disable=not progress, file=sys.stderr)
    for connection, msg, problem in _messages(reader, wanted, skipped):
        bar.update(1)
        topic = connection.topic
        if topic in images:
            record = images[topic]
            stamp = _stamp(msg) if msg is not None else float("nan")
            record.stamps.append(stamp)
            record.ok.append(False)
            if msg is None:
                skipped.append(Skipped(f"{topic} message {len(record.stamps) - 1}", problem))
                continue
            try:
                pixels = decoders[topic](msg)
            except InvalidInput as exc:
                skipped.append(Skipped(f"{topic} t={stamp:.3f}", exc.reason))
                continue
            record.ok[-1] = True
            record.shape = record.shape or pixels.shape[:2]
            record.frame_id = record.frame_id or msg.header.frame_id.lstrip("/")
            record.encoding = record.encoding or getattr(msg, "encoding", None) or msg.format
        elif msg is None:
            skipped.append(Skipped(f"{topic} message", problem))
        elif connection.msgtype == TF:
            static = topic.endswith("tf_static")
            for tr in msg.transforms:
                out["tf"].append((tr.header.frame_id.lstrip("/"), tr.child_frame_id.lstrip("/"),
                                  time_to_sec(tr.header.stamp), tr.transform, static))
        elif topic == odom_topic:
            out["odom"].append((msg.header.frame_id.lstrip("/"), msg.child_frame_id.lstrip("/"), _stamp(msg), msg.pose.pose))
        elif out[infos[topic]] is None:
            try:
                out[infos[topic]] = intrinsics_from_camera_info(_ros2_camera_info(msg))
            except InvalidInput as exc:
                skipped.append(Skipped(f"{topic} t={_stamp(msg):.3f}", exc.reason))
    bar.close()
    out.update({"color": images[topics["color"]], "depth": images[topics["depth"]],
                "mask": images.get(topics["mask"])})
    for role in ("color", "depth"):
        if not any(out[role].ok):
            flag = f"--{role}-topic"
            raise InvalidInput(flag, f"{topics[role]}: none of its {len(out[role].stamps)} messages could be "
                               f"decoded ({_first_reason(skipped, topics[role])})")
    return out


def _ros2_camera_info(msg):
    """ROS 1 CameraInfo spells ``K``/``P`` in capitals; give the converter the ROS 2 names."""
    if hasattr(msg, "k"):
        return msg
    return SimpleNamespace(k=msg.K, p=msg.P, width=msg.width, height=msg.height)


def _bag_name(reader) -> str:
    """Short name of the bag a reader reads, for progress bars."""
    return reader.paths[0].name


def _first_reason(skipped: list[Skipped], topic: str) -> str:
    return next((s.reason for s in skipped if s.what.startswith(topic)), "no messages")


def _messages(reader, connections, skipped: list[Skipped]):
    """``(connection, msg | None, problem)``: undecodable messages come back as None with the reason;
    an unreadable rest of the bag (truncation) ends the stream with a note in ``skipped``."""
    from rosbags.highlevel import AnyReaderError

    stream = reader.messages(connections=connections)
    last = None
    while True:
        try:
            connection, timestamp, raw = next(stream)
        except StopIteration:
            return
        except Exception as exc:  # noqa: BLE001 - any storage failure ends the readable part
            where = f"after t={last * 1e-9:.3f} (bag time)" if last is not None else "from the start"
            skipped.append(Skipped("rest of the bag", f"unreadable {where}: {type(exc).__name__}: {exc}"))
            return
        last = timestamp
        try:
            yield connection, reader.deserialize(raw, connection.msgtype), ""
        except (AnyReaderError, struct.error, ValueError, IndexError) as exc:
            yield connection, None, f"cannot deserialize {connection.msgtype}: {exc}"


def _pose_graph(index: dict, options: SourceOptions) -> tuple[TransformBuffer, str]:
    """TF edges, plus odometry edges TF lacks, plus ``camera_offset``: one buffer for every lookup."""
    tf = TransformBuffer(max_extrapolation=options.max_pose_extrapolation)
    problems = Counter()
    for parent, child, t, transform, static in index["tf"]:
        try:
            tf.add(parent, child, t, transform_to_matrix(transform), static=static)
        except InvalidInput as exc:
            problems[f"TF {parent} -> {child}: {exc.reason}"] += 1
    note = "none in the bag"
    odom_child = None
    if index["odom"]:
        parent, odom_child = index["odom"][0][:2]
        if tf.parent(odom_child) is not None:
            note = f"{index['odom_topic']} not used: TF already gives {odom_child!r} a parent"
        else:
            for parent, child, t, pose in index["odom"]:
                try:
                    tf.add(parent, child, t, pose_to_matrix(pose))
                except InvalidInput as exc:
                    problems[f"odometry {parent} -> {child}: {exc.reason}"] += 1
            note = f"{index['odom_topic']} gives {parent} -> {odom_child}"
    if options.camera_offset is not None:
        camera = options.camera_frame or index["color"].frame_id
        if odom_child is None:
            raise InvalidInput("--camera-offset", "needs a nav_msgs/Odometry topic (none in the bag)")
        if tf.parent(camera) is not None:
            raise InvalidInput("--camera-offset", f"camera frame {camera!r} already has parent {tf.parent(camera)!r} in TF")
        try:
            T_base_cam = offset_matrix(list(options.camera_offset))
        except InvalidInput as exc:
            raise InvalidInput("--camera-offset", exc.reason) from exc
        tf.add(odom_child, camera, 0.0, T_base_cam, static=True)
        note += f"; camera offset {odom_child} -> {camera}"
    index["pose_problems"] = dict(problems)
    return tf, note


def _intrinsics(index: dict, options: SourceOptions) -> Intrinsics:
    """Intrinsics of the colour images: ``--intrinsics``, else the first valid CameraInfo."""
    height, width = index["color"].shape
    if options.intrinsics is not None:
        return intrinsics_from_option(options.intrinsics, width, height)
    K = index["info"]
    if K is None:
        raise InvalidInput("--intrinsics", "the bag has no valid sensor_msgs/CameraInfo: give --intrinsics fx fy cx cy")
    if K.shape != (height, width):
        raise InvalidInput("--info-topic", f"CameraInfo is {K.width}x{K.height} but colour images are {width}x{height}")
    return K


def _registration(index: dict, options: SourceOptions, tf: TransformBuffer, K: Intrinsics,
                  camera_frame: str) -> tuple[tuple[Intrinsics, np.ndarray] | None, str]:
    """``((K_depth, T_colour_depth), note)`` when the depth images must be re-projected into the
    colour camera, ``(None, "")`` when they are registered to it (see ``--depth-registration``).

    Raises:
        InvalidInput: depth that is not registered and cannot be (no CameraInfo or no transform).
    """
    depth, K_depth = index["depth"], index["depth_info"]
    height, width = depth.shape
    if K_depth is not None and K_depth.shape != depth.shape:
        raise InvalidInput("--depth-info-topic", f"CameraInfo is {K_depth.width}x{K_depth.height} but depth "
                                                 f"images are {width}x{height}")
    own_camera = K_depth is not None and not (depth.frame_id == index["color"].frame_id and K.same_camera(K_depth))
    if options.depth_registration == "disabled" or not own_camera:
        if depth.shape != K.shape and height * K.width != width * K.height:
            raise InvalidInput("--depth-topic", (
                f"depth images are {width}x{height}, colour {K.width}x{K.height}: not registered (use an "
                "aligned_depth_to_color topic, or record the depth CameraInfo and TF so eval registers it)"))
        return None, ""
    try:
        T_frame_depth = tf.lookup(camera_frame, depth.frame_id, float(index["color"].stamps[0]))
    except TransformLookupError as exc:
        raise InvalidInput("--depth-registration", (
            f"depth images ({width}x{height}, frame {depth.frame_id!r}) have their own CameraInfo, so they "
            f"are re-projected into the colour camera ({camera_frame!r}), but TF has no transform between "
            f"them ({exc}); record /tf_static, or give --depth-registration disabled if they are registered")) from exc
    convention = options.camera_frame_convention
    T_colour_depth = optical_between(T_frame_depth, resolve_convention(convention, camera_frame),
                                     resolve_convention(convention, depth.frame_id))
    angle = np.degrees(np.arccos(np.clip((np.trace(T_colour_depth[:3, :3]) - 1) / 2, -1, 1)))
    note = (f"{depth.frame_id} {width}x{height} -> {camera_frame} {K.width}x{K.height}: re-projected "
            f"(offset {np.linalg.norm(T_colour_depth[:3, 3]) * 1e3:.1f} mm, {angle:.2f} deg)")
    return (K_depth, T_colour_depth), note

