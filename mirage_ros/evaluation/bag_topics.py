"""Which topics of a bag hold the colour images, depth, CameraInfo and ground-truth motion mask.

Rules in :mod:`mirage_ros.evaluation.bag_source`; every choice can be forced by an option, which is
checked against the bag (a wrong type names the option and lists the Image topics).
"""

from __future__ import annotations

import re

from mirage_ros.errors import InvalidInput
from mirage_ros.evaluation.sources import Skipped, SourceOptions
from mirage_ros.messages.compressed import COMPRESSED_IMAGE, is_compressed_colour, is_compressed_depth
from mirage_ros.messages.convert import COLOR_ENCODINGS, DEPTH_ENCODINGS

IMAGE = "sensor_msgs/msg/Image"
CAMERA_INFO = "sensor_msgs/msg/CameraInfo"
TF = "tf2_msgs/msg/TFMessage"
ODOMETRY = "nav_msgs/msg/Odometry"


def _pick(candidates: list[tuple[str, str]], prefer: tuple[str, ...], avoid: tuple[str, ...]) -> str | None:
    """First topic by preference: names with a ``prefer`` word, then plain, then ``avoid`` names."""

    def rank(item: tuple[int, tuple[str, str]]) -> tuple[int, int]:
        name = item[1][0].lower()
        if any(word in name for word in avoid):
            return (2, item[0])
        return (0 if any(word in name for word in prefer) else 1, item[0])

    ordered = sorted(enumerate(candidates), key=rank)
    return ordered[0][1][0] if ordered else None


def detect_topics(reader, options: SourceOptions, skipped: list[Skipped]) -> dict[str, str | None]:
    """Choose colour, depth, mask, camera_info topics (options first, auto-detection otherwise); the
    depth images' own CameraInfo is the one in their namespace (None when it is the colour's).

    Colour and depth may be image_transport's compressed copies (``CompressedImage``); a raw
    ``Image`` topic is preferred where the bag has both.
    """
    topics = {c.topic: c.msgtype for c in reader.connections}
    encodings: dict[str, str] = {}  # Image: encoding; CompressedImage: format
    for connection in reader.connections:
        if connection.msgtype in (IMAGE, COMPRESSED_IMAGE) and connection.topic not in encodings:
            first = next(reader.messages(connections=[connection]), None)
            if first is not None:
                msg = reader.deserialize(first[2], connection.msgtype)
                encodings[connection.topic] = msg.encoding if connection.msgtype == IMAGE else msg.format
    raw = {t: e for t, e in encodings.items() if topics[t] == IMAGE}
    packed = {t: e for t, e in encodings.items() if topics[t] == COMPRESSED_IMAGE}
    inventory = ", ".join(f"{t} [{e}]" for t, e in encodings.items()) or "none"

    def chosen(option: str | None, flag: str, msgtypes: tuple[str, ...]) -> str | None:
        if option is not None and topics.get(option) not in msgtypes:
            have = topics.get(option, "absent")
            raise InvalidInput(flag, f"topic {option!r} is {have}, not {' or '.join(msgtypes)} "
                                     f"(image topics: {inventory})")
        return option

    images = (IMAGE, COMPRESSED_IMAGE)
    color = chosen(options.color_topic, "--color-topic", images) or _pick(
        [(t, e) for t, e in raw.items() if e in COLOR_ENCODINGS], ("color", "rgb"), ("depth", "mask", "seg", "label")
    ) or _pick([(t, e) for t, e in packed.items() if is_compressed_colour(e)], ("color", "rgb"), ("depth", "mask"))
    if color is None:
        raise InvalidInput("--color-topic", f"no sensor_msgs/Image topic with a colour encoding "
                           f"{COLOR_ENCODINGS} and no JPEG / PNG CompressedImage (image topics: {inventory})")
    depth = chosen(options.depth_topic, "--depth-topic", images) or _pick(
        [(t, e) for t, e in raw.items() if e in DEPTH_ENCODINGS], ("aligned", "depth"), ()
    ) or _pick([(t, e) for t, e in packed.items() if is_compressed_depth(e)], ("aligned", "depth"), ())
    if depth is None:
        raise InvalidInput("--depth-topic", f"no depth Image topic in {DEPTH_ENCODINGS} and no compressedDepth "
                           f"CompressedImage (image topics: {inventory})")
    mask = chosen(options.mask_topic, "--mask-topic", (IMAGE,)) or next(
        (t for t, e in raw.items() if e == "mono8" and "mask" in t.lower() and t != color), None
    )
    infos = [t for t, m in topics.items() if m == CAMERA_INFO]
    namespace = _base_topic(color).rsplit("/", 1)[0]
    info = chosen(options.info_topic, "--info-topic", (CAMERA_INFO,)) or next(
        (t for t in infos if t.rsplit("/", 1)[0] == namespace), infos[0] if infos else None
    )
    depth_namespace = _base_topic(depth).rsplit("/", 1)[0]
    depth_info = chosen(options.depth_info_topic, "--depth-info-topic", (CAMERA_INFO,)) or next(
        (t for t in infos if t.rsplit("/", 1)[0] == depth_namespace and t != info), None
    )
    for topic, encoding in raw.items():
        if topic not in (color, depth, mask) and encoding not in COLOR_ENCODINGS + DEPTH_ENCODINGS:
            skipped.append(Skipped(topic, f"unsupported encoding {encoding!r}"))
    return {"color": color, "depth": depth, "mask": mask, "info": info, "depth_info": depth_info}


def _base_topic(topic: str) -> str:
    """The image topic an image_transport copy was made from (``.../image_raw/compressed`` ->
    ``.../image_raw``), whose namespace holds the CameraInfo."""
    return re.sub(r"/(compressed|compressedDepth)$", "", topic)
