"""How the nodes receive camera images: raw ``sensor_msgs/Image`` or image_transport's compressed copies.

With ``image_transport: compressed`` a node subscribes, like an image_transport subscriber does,
to ``<image>/compressed`` (JPEG / PNG) and ``<depth>/compressedDepth`` (PNG), where ``<image>``
and ``<depth>`` are its ``image`` and ``depth`` topics after remapping, and decodes them with
:mod:`mirage_ros.ros.compressed`. Useful when the camera streams over a network link.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sensor_msgs.msg import CompressedImage, Image

from mirage_ros.ros import convert
from mirage_ros.ros.compressed import depth_from_compressed, rgb_from_compressed

TRANSPORTS = ("raw", "compressed")


@dataclass(frozen=True)
class CameraTransport:
    """Message type, topics and decoders of a node's colour + depth inputs.

    Attributes:
        name: ``"raw"`` or ``"compressed"``.
        msg_type: ``Image`` or ``CompressedImage``.
        image_topic, depth_topic: what the node subscribes to.
    """

    name: str
    msg_type: type
    image_topic: str
    depth_topic: str

    @property
    def raw(self) -> bool:
        return self.name == "raw"

    def rgb(self, msg) -> np.ndarray:
        """``(H, W, 3) uint8`` RGB of a colour message."""
        return convert.rgb_from_image(msg) if self.raw else rgb_from_compressed(msg)

    def depth(self, msg) -> np.ndarray:
        """``(H, W) float32`` metres (0 = no reading) of a depth message."""
        return convert.depth_from_image(msg) if self.raw else depth_from_compressed(msg)


def camera_transport(node, name: str) -> CameraTransport:
    """The transport ``name`` (one of :data:`TRANSPORTS`) for ``node``'s ``image`` / ``depth`` topics."""
    if name == "raw":
        return CameraTransport(name, Image, "image", "depth")
    return CameraTransport(name, CompressedImage, node.resolve_topic_name("image") + "/compressed",
                           node.resolve_topic_name("depth") + "/compressedDepth")
