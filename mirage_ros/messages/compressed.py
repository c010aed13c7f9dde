"""``sensor_msgs/CompressedImage`` (image_transport's ``compressed`` / ``compressedDepth``) -> numpy.

Recordings often hold the compressed copies of a camera's streams only, because raw ones are
large: ``.../image_raw/compressed`` (JPEG or PNG colour, ``format`` like
``"bgr8; jpeg compressed bgr8"``) and ``.../image_raw/compressedDepth`` (``format`` like
``"16UC1; compressedDepth png"``). The colour image is an ordinary JPEG / PNG file. The depth one
is a 12-byte header (int32 format, float32 ``depthQuantA``, ``depthQuantB``), then a 16-bit PNG:

- ``16UC1``: the PNG holds millimetres, 0 = no reading;
- ``32FC1``: it holds quantised inverse depth ``q``; depth = ``depthQuantA / (q - depthQuantB)``
  metres, ``q = 0`` = no reading (compressed_depth_image_transport's codec).

The ``rvl`` codec of newer image_transport_plugins is not decoded here: such bags need
``ros2 run image_transport republish`` to raw first, and the error says so. The encoders
(:func:`encode_colour`, :func:`encode_depth`) write the same payloads, for the test cameras.
"""

from __future__ import annotations

import io
import struct
import warnings

import numpy as np

from mirage_ros.errors import InvalidInput

COMPRESSED_IMAGE = "sensor_msgs/msg/CompressedImage"
_DEPTH_HEADER = struct.Struct("<iff")  # format, depthQuantA, depthQuantB


def is_compressed_depth(fmt: str) -> bool:
    """Whether a ``CompressedImage.format`` is image_transport's ``compressedDepth``."""
    return "compresseddepth" in fmt.lower()


def is_compressed_colour(fmt: str) -> bool:
    """Whether a ``CompressedImage.format`` is a JPEG / PNG colour (or mono) picture."""
    lower = fmt.lower()
    return not is_compressed_depth(fmt) and any(word in lower for word in ("jpeg", "jpg", "png"))


def _decode_file(data: bytes, name: str, max_pixels: int | None):
    """The picture in ``data``, its size checked against ``max_pixels`` (None: PIL's own limit)
    from the file's header, before any pixel is decoded: a PNG of a few kilobytes can hold
    20000x20000 pixels."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():  # PIL's bomb warning: the size is checked here
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
        width, height = image.size
        if max_pixels is not None and width * height > max_pixels:
            raise InvalidInput(f"{name}.size", f"{width}x{height} exceeds max_image_pixels={max_pixels} "
                               "(not decoded)")
        image.load()
    except InvalidInput:
        raise
    except Image.DecompressionBombError as exc:  # over twice PIL's own limit: refused while opening
        limit = "" if max_pixels is None else f" (max_image_pixels={max_pixels})"
        raise InvalidInput(f"{name}.size", f"not decoded: {exc}{limit}") from exc
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:  # PIL: SyntaxError for a broken PNG
        raise InvalidInput(f"{name}.data", f"not a decodable JPEG / PNG ({exc})") from exc
    return image


def rgb_from_compressed(msg, max_pixels: int | None = None) -> np.ndarray:
    """JPEG / PNG ``CompressedImage`` -> ``(H, W, 3) uint8`` RGB (``max_pixels``: larger pictures
    are refused before they are decoded).

    The file itself is in RGB order whatever the ``format`` says (``bgr8`` there is the encoding
    of the raw image it was made from), so it decodes as any picture does.

    Raises:
        InvalidInput: ``"image.format"`` not a colour format, ``"image.data"`` undecodable,
            ``"image.size"`` over ``max_pixels``.
    """
    if not is_compressed_colour(msg.format):
        raise InvalidInput("image.format", f"{msg.format!r} is not a JPEG / PNG colour image")
    image = _decode_file(bytes(msg.data), "image", max_pixels)
    return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()


def depth_from_compressed(msg, max_pixels: int | None = None) -> np.ndarray:
    """``compressedDepth`` ``CompressedImage`` -> ``(H, W) float32`` metres, 0 where there is no
    reading (``max_pixels``: larger pictures are refused before they are decoded).

    Raises:
        InvalidInput: ``"depth.format"`` not ``compressedDepth`` PNG (e.g. ``rvl``) or of an
            encoding other than 16UC1 / 32FC1; ``"depth.data"`` too short or undecodable;
            ``"depth.size"`` over ``max_pixels``.
    """
    fmt = msg.format
    encoding, _, codec = (part.strip() for part in fmt.partition(";"))
    if not is_compressed_depth(fmt) and codec:
        raise InvalidInput("depth.format", f"{fmt!r} is not compressedDepth")
    if "rvl" in codec.lower():
        raise InvalidInput("depth.format", f"{fmt!r}: RVL-compressed depth is not decoded here; republish it raw "
                           "(ros2 run image_transport republish --ros-args -p in_transport:=compressedDepth "
                           "-p out_transport:=raw) and record that")
    if encoding not in ("16UC1", "32FC1"):
        raise InvalidInput("depth.format", f"{fmt!r}: compressedDepth of {encoding!r} (16UC1 or 32FC1 expected)")
    data = bytes(msg.data)
    if len(data) <= _DEPTH_HEADER.size:
        raise InvalidInput("depth.data", f"{len(data)} bytes: no compressedDepth header + PNG")
    _, quant_a, quant_b = _DEPTH_HEADER.unpack_from(data)
    pixels = np.asarray(_decode_file(data[_DEPTH_HEADER.size :], "depth", max_pixels))
    if pixels.ndim != 2 or pixels.dtype.kind not in "ui":
        raise InvalidInput("depth.data", f"PNG of {pixels.dtype}{pixels.shape}, not a 16-bit single-channel image")
    if encoding == "16UC1":
        return pixels.astype(np.float32) * np.float32(1e-3)
    q = pixels.astype(np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        depth = np.float32(quant_a) / (q - np.float32(quant_b))
    return np.where((pixels > 0) & np.isfinite(depth) & (depth > 0), depth, np.float32(0.0)).astype(np.float32)


#: compressed_depth_image_transport's defaults for 32FC1: quantisation 100, depth_max 10 m
DEPTH_QUANTIZATION, DEPTH_MAX = 100.0, 10.0


def encode_colour(rgb: np.ndarray, codec: str = "png") -> tuple[str, bytes]:
    """``(H, W, 3) uint8`` RGB -> ``(format, data)`` of image_transport's ``compressed``
    (``codec`` ``"png"`` lossless or ``"jpeg"`` quality 95)."""
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(np.asarray(rgb, np.uint8)).save(out, format="JPEG" if codec == "jpeg" else "PNG", quality=95)
    return f"rgb8; {codec} compressed rgb8", out.getvalue()


def encode_depth(depth: np.ndarray, encoding: str = "32FC1", codec: str = "png") -> tuple[str, bytes]:
    """``(H, W)`` metres (0 / NaN = no reading) -> ``(format, data)`` of ``compressedDepth``:
    millimetres (``16UC1``) or the codec's quantised inverse depth (``32FC1``). ``codec="rvl"``
    only labels the payload (it stays PNG): for testing the refusal."""
    from PIL import Image

    depth = np.nan_to_num(np.asarray(depth, np.float32))
    quant_a = quant_b = 0.0
    if encoding == "16UC1":
        pixels = np.clip(depth * 1000.0, 0, 65535).astype(np.uint16)
    else:
        quant_a = DEPTH_QUANTIZATION * (DEPTH_QUANTIZATION + 1.0)
        quant_b = 1.0 - quant_a / DEPTH_MAX
        with np.errstate(divide="ignore"):
            pixels = np.where((depth > 0) & (depth < DEPTH_MAX), quant_a / depth + quant_b, 0).astype(np.uint16)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return f"{encoding}; compressedDepth {codec}", _DEPTH_HEADER.pack(0, quant_a, quant_b) + out.getvalue()
