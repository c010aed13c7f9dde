"""The classes of bad input of ``mirage-ros bench fuzz``: each a function that publishes one
malformed case, type-correct, with the :class:`Feeds` the campaign gives it (:data:`CLASSES`)."""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

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

    from mirage_ros.messages.convert import byte_array

    return Image(width=width, height=height, encoding=encoding, step=width if step is None else step,
                 data=byte_array(data))


def _info(K, **fields):
    from mirage_ros.messages.convert import camera_info_from_intrinsics

    msg = camera_info_from_intrinsics(K)
    for name, value in fields.items():
        setattr(msg, name, value)
    return msg


def depth_values(rng: np.random.Generator, f: Feeds) -> None:
    """Depth of NaN, +-inf, 1e30, 1e-30 or negative metres, everywhere or in patches."""
    from mirage_ros.messages.convert import array_to_image

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

    from mirage_ros.messages.compressed import encode_colour, encode_depth
    from mirage_ros.messages.convert import sec_to_time

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

    from mirage_ros.messages.convert import sec_to_time, transform_stamped

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
    from mirage_ros.messages.convert import sec_to_time

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

    from mirage_ros.messages import outputs
    from mirage_ros.messages.convert import array_to_image, camera_info_from_intrinsics, sec_to_time

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
