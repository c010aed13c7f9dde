"""A node's camera input decoding (ros/transport.py), raw and compressed, without a node."""

from dataclasses import replace

import numpy as np
import pytest
from sensor_msgs.msg import CompressedImage, Image

from mirage_ros.errors import InvalidInput
from mirage_ros.geometry import Intrinsics
from mirage_ros.messages import convert
from mirage_ros.ros.transport import CameraTransport, frame_messages

K = Intrinsics(40.0, 40.0, 15.5, 11.5, 32, 24)
RAW = CameraTransport("raw", Image, "image", "depth", 10_000)
PACKED = CameraTransport("compressed", CompressedImage, "/cam/image/compressed", "/cam/depth/compressedDepth", 10_000)
RGB = np.random.default_rng(0).integers(0, 256, (24, 32, 3), dtype=np.uint8)
DEPTH = np.full((24, 32), 2.0, np.float32)


@pytest.mark.parametrize("transport", [RAW, PACKED], ids=["raw", "compressed"])
def test_both_transports_give_the_same_frame(transport):
    image, depth = frame_messages(RGB, DEPTH, transport.name)
    rgb, metres, intrinsics = transport.decode(image, depth, convert.camera_info_from_intrinsics(K))
    np.testing.assert_array_equal(rgb, RGB)
    np.testing.assert_allclose(metres, DEPTH, atol=1e-3)
    assert intrinsics == K


@pytest.mark.parametrize("transport", [RAW, PACKED], ids=["raw", "compressed"])
def test_sizes_are_checked_whatever_the_transport(transport):
    info = convert.camera_info_from_intrinsics(K)
    image, depth = frame_messages(RGB, DEPTH[::2, ::2], transport.name)
    with pytest.raises(InvalidInput, match="sizes differ: image 32x24, depth 16x12"):
        transport.decode(image, depth, info)
    image, depth = frame_messages(RGB, DEPTH, transport.name)
    with pytest.raises(InvalidInput) as info_error:
        replace(transport, max_pixels=500).decode(image, depth, info)
    assert info_error.value.parameter == "image.size" and "32x24" in info_error.value.reason
