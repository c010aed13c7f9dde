"""How the nodes receive camera images: raw ``sensor_msgs/Image`` or image_transport's compressed copies.

With ``image_transport: compressed`` a node subscribes, like an image_transport subscriber does,
to ``<image>/compressed`` (JPEG / PNG) and ``<depth>/compressedDepth`` (PNG), where ``<image>``
and ``<depth>`` are its ``image`` and ``depth`` topics after remapping, and decodes them with
:mod:`mirage_ros.messages.compressed`. Useful when the camera streams over a network link.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sensor_msgs.msg import CompressedImage, Image

from mirage_ros.errors import InvalidInput
from mirage_ros.geometry import Intrinsics
from mirage_ros.messages import convert
from mirage_ros.messages.compressed import depth_from_compressed, encode_colour, encode_depth, rgb_from_compressed
from mirage_ros.ros.params import Param

TRANSPORTS = ("raw", "compressed")
#: the nodes' size cap on camera images (both nodes declare it)
MAX_IMAGE_PIXELS = Param("max_image_pixels", 2_500_000, "larger frames are skipped (width * height), before "
                         "they are decoded", (1, 100_000_000))


@dataclass(frozen=True)
class CameraTransport:
    """Message type, topics and decoders of a node's colour + depth inputs.

    Attributes:
        name: ``"raw"`` or ``"compressed"``.
        msg_type: ``Image`` or ``CompressedImage``.
        image_topic, depth_topic: what the node subscribes to.
        max_pixels: larger images are refused before they are decoded (``max_image_pixels``).
    """

    name: str
    msg_type: type
    image_topic: str
    depth_topic: str
    max_pixels: int = 2_500_000

    @property
    def raw(self) -> bool:
        return self.name == "raw"

    def rgb(self, msg) -> np.ndarray:
        """``(H, W, 3) uint8`` RGB of a colour message."""
        if self.raw:
            return convert.rgb_from_image(self._within(msg, "image"))
        return rgb_from_compressed(msg, self.max_pixels)

    def depth(self, msg) -> np.ndarray:
        """``(H, W) float32`` metres (0 = no reading) of a depth message."""
        if self.raw:
            return convert.depth_from_image(self._within(msg, "depth"))
        return depth_from_compressed(msg, self.max_pixels)

    def _within(self, msg, name: str):
        if msg.width * msg.height > self.max_pixels:
            raise InvalidInput(f"{name}.size", f"{msg.width}x{msg.height} exceeds max_image_pixels={self.max_pixels}")
        return msg

    def decode(self, image, depth_msg, info, use_projection: bool = False, K_depth: Intrinsics | None = None):
        """``(rgb (H, W, 3) uint8, depth (Hd, Wd) float32 m, K)`` of one frame's messages.

        ``K_depth``: the intrinsics of depth from a camera of its own (``depth_registration``),
        whose size the depth must have; None: depth registered to the image, of its size.

        Raises:
            InvalidInput: ``image.size`` / ``depth.size`` over ``max_pixels``; ``size`` when image,
                depth and camera_info sizes differ; what the decoders and
                ``intrinsics_from_camera_info`` raise.
        """
        if self.raw:  # the sizes are in the messages: checked before decoding
            K = _intrinsics((image.width, image.height), (depth_msg.width, depth_msg.height), info, use_projection,
                            K_depth)
            return self.rgb(image), self.depth(depth_msg), K
        rgb, depth = self.rgb(image), self.depth(depth_msg)  # a compressed image tells its size once opened
        return rgb, depth, _intrinsics(rgb.shape[1::-1], depth.shape[::-1], info, use_projection, K_depth)


def _intrinsics(image_wh, depth_wh, info, use_projection: bool, K_depth: Intrinsics | None):
    """The frame's intrinsics, once its image, depth and camera_info sizes (``(width, height)``)
    are known to agree (the depth's with ``K_depth`` when given)."""
    K = convert.intrinsics_from_camera_info(info, use_projection)
    if K_depth is None:
        groups = [{"image": tuple(image_wh), "depth": tuple(depth_wh), "camera_info": (K.width, K.height)}]
    else:
        groups = [{"image": tuple(image_wh), "camera_info": (K.width, K.height)},
                  {"depth": tuple(depth_wh), "depth camera_info": (K_depth.width, K_depth.height)}]
    for sizes in groups:
        if len(set(sizes.values())) > 1:
            raise InvalidInput("size", "/".join(sizes) + " sizes differ: "
                               + ", ".join(f"{k} {w}x{h}" for k, (w, h) in sizes.items()))
    return K


def frame_messages(rgb: np.ndarray, depth: np.ndarray, name: str, stamp=None, frame_id: str = "") -> tuple:
    """``(image, depth)`` messages of a frame as transport ``name`` carries them (the inverse of
    :meth:`CameraTransport.decode`, for test cameras): rgb8 + 32FC1 Images, or PNG colour +
    32FC1 compressedDepth. ``rgb``: ``(H, W, 3) uint8``; ``depth``: ``(H, W)`` metres."""
    if name == "raw":
        return (convert.array_to_image(rgb, "rgb8", stamp, frame_id),
                convert.array_to_image(np.asarray(depth, np.float32), "32FC1", stamp, frame_id))
    messages = tuple(CompressedImage(format=fmt, data=data) for fmt, data in (encode_colour(rgb), encode_depth(depth)))
    for msg in messages:
        msg.header.frame_id = frame_id
        if stamp is not None:
            msg.header.stamp = stamp
    return messages


def camera_transport(node, name: str, max_pixels: int) -> CameraTransport:
    """The transport ``name`` (one of :data:`TRANSPORTS`) for ``node``'s ``image`` / ``depth``
    topics, refusing images of more than ``max_pixels`` pixels."""
    if name == "raw":
        return CameraTransport(name, Image, "image", "depth", max_pixels)
    return CameraTransport(name, CompressedImage, node.resolve_topic_name("image") + "/compressed",
                           node.resolve_topic_name("depth") + "/compressedDepth", max_pixels)
