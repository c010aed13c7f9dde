"""image_transport's compressed / compressedDepth payloads decoded without ROS (mirage_ros.messages.compressed).

The messages are plain objects with the two fields the decoders read; the end-to-end path through
real rosbags CompressedImage messages is in test_eval_replay_sources.py.
"""

import io
import struct
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from mirage_ros.errors import InvalidInput
from mirage_ros.messages.compressed import (
    depth_from_compressed,
    encode_colour,
    encode_depth,
    is_compressed_colour,
    is_compressed_depth,
    rgb_from_compressed,
)


def png(pixels: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


def test_formats_are_told_apart():
    assert is_compressed_colour("bgr8; jpeg compressed bgr8") and is_compressed_colour("png")
    assert is_compressed_depth("16UC1; compressedDepth png") and is_compressed_depth("32FC1; compressedDepth")
    assert not is_compressed_colour("16UC1; compressedDepth png")
    assert not is_compressed_depth("rgb8; jpeg compressed bgr8")
    assert not is_compressed_colour("theora")


def test_mono_png_becomes_grey_rgb_and_garbage_is_refused():
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    rgb = rgb_from_compressed(SimpleNamespace(format="mono8; png compressed mono8", data=png(grey)))
    assert rgb.shape == (3, 4, 3) and (rgb == grey[..., None]).all()
    with pytest.raises(InvalidInput) as info:
        rgb_from_compressed(SimpleNamespace(format="rgb8; jpeg compressed bgr8", data=b"not a jpeg"))
    assert info.value.parameter == "image.data"
    with pytest.raises(InvalidInput, match="not a JPEG"):
        rgb_from_compressed(SimpleNamespace(format="16UC1; compressedDepth png", data=png(grey)))


def test_compressed_depth_header_and_png_give_metres():
    mm = np.array([[0, 500], [1500, 4000]], np.uint16)
    header = struct.pack("<iff", 0, 0.0, 0.0)
    depth = depth_from_compressed(SimpleNamespace(format="16UC1; compressedDepth png", data=header + png(mm)))
    np.testing.assert_allclose(depth, [[0, 0.5], [1.5, 4.0]])
    a, b = 100.0 * 101.0, 1.0 - 100.0 * 101.0 / 10.0  # the codec's defaults: quantisation 100, 10 m
    q = np.array([[0, a / 1.0 + b], [a / 2.5 + b, a / 9.0 + b]]).astype(np.uint16)
    depth = depth_from_compressed(SimpleNamespace(format="32FC1; compressedDepth png",
                                                  data=struct.pack("<iff", 0, a, b) + png(q)))
    assert depth[0, 0] == 0 and depth.dtype == np.float32
    np.testing.assert_allclose(depth[[0, 1, 1], [1, 0, 1]], [1.0, 2.5, 9.0], atol=0.01)


@pytest.mark.parametrize("fmt, data, parameter, words", [
    ("16UC1; compressedDepth rvl", b"\0" * 40, "depth.format", "republish"),
    ("8UC3; compressedDepth png", b"\0" * 40, "depth.format", "16UC1 or 32FC1"),
    ("16UC1; compressedDepth png", b"\0" * 12, "depth.data", "header"),
    ("16UC1; compressedDepth png", b"\0" * 12 + b"garbage", "depth.data", "PNG"),
])
def test_bad_compressed_depth_names_the_field(fmt, data, parameter, words):
    with pytest.raises(InvalidInput) as info:
        depth_from_compressed(SimpleNamespace(format=fmt, data=data))
    assert info.value.parameter == parameter and words in info.value.reason


def test_encoders_round_trip_through_the_decoders():
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    fmt, data = encode_colour(rgb)
    np.testing.assert_array_equal(rgb_from_compressed(SimpleNamespace(format=fmt, data=data)), rgb)
    depth = rng.uniform(0.4, 9.0, (6, 8)).astype(np.float32)
    depth[0, 0], depth[0, 1] = 0.0, np.nan
    for encoding, atol in (("16UC1", 1e-3), ("32FC1", 9.0**2 / 10100 + 1e-4)):  # a quantisation step at 9 m
        fmt, data = encode_depth(depth, encoding)
        assert fmt == f"{encoding}; compressedDepth png"
        back = depth_from_compressed(SimpleNamespace(format=fmt, data=data))
        np.testing.assert_allclose(back, np.nan_to_num(depth), atol=atol)


def _claimed_size(data: bytes, width: int, height: int) -> bytes:
    """``data`` (a PNG) with its header claiming ``width x height``: a decompression bomb's few
    kilobytes announce a picture they would take gigabytes to decode."""
    import zlib

    ihdr = bytearray(data[12:29])  # chunk type + 13 bytes of IHDR
    ihdr[4:12] = struct.pack(">II", width, height)
    return data[:12] + bytes(ihdr) + struct.pack(">I", zlib.crc32(bytes(ihdr))) + data[33:]


@pytest.mark.parametrize("width, height", [(12000, 12000), (20000, 20000)])
def test_a_picture_over_max_pixels_is_refused_from_its_header_before_decoding(width, height):
    import tracemalloc

    bomb = _claimed_size(png(np.zeros((8, 8), np.uint8)), width, height)
    tracemalloc.start()
    with pytest.raises(InvalidInput) as colour:
        rgb_from_compressed(SimpleNamespace(format="mono8; png compressed mono8", data=bomb), max_pixels=2_500_000)
    with pytest.raises(InvalidInput) as depth:
        depth_from_compressed(SimpleNamespace(format="16UC1; compressedDepth png",
                                              data=struct.pack("<iff", 0, 0.0, 0.0) + bomb), max_pixels=2_500_000)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert colour.value.parameter == "image.size" and depth.value.parameter == "depth.size"
    assert "max_image_pixels=2500000" in colour.value.reason and "not decoded" in colour.value.reason
    assert peak < 5_000_000, f"{peak} bytes allocated refusing it"


def test_pil_own_bomb_limit_is_a_clear_refusal_without_max_pixels():
    bomb = _claimed_size(png(np.zeros((8, 8), np.uint8)), 20000, 20000)
    with pytest.raises(InvalidInput, match="image.size: not decoded: .*decompression bomb"):
        rgb_from_compressed(SimpleNamespace(format="png", data=bomb))
