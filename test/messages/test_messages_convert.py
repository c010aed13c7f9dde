"""Message <-> numpy conversions (numpy path; cv_bridge is not installed here)."""

import array

import numpy as np
import pytest
from geometry_msgs.msg import Pose, Transform
from sensor_msgs.msg import CameraInfo, Image
from transforms3d.euler import euler2mat

from mirage_ros.errors import InvalidInput
from mirage_ros.geometry import Intrinsics
from mirage_ros.messages import convert
from mirage_ros.messages.frames import resolve_convention, to_optical


def _image(pixels: np.ndarray, encoding: str, pad: int = 0, bigendian: bool = False) -> Image:
    """Image with ``pad`` junk bytes at the end of each row."""
    dtype = pixels.dtype.newbyteorder(">" if bigendian else "<")
    rows = np.ascontiguousarray(pixels, dtype=dtype).reshape(pixels.shape[0], -1).view(np.uint8)
    padded = np.concatenate([rows, np.full((rows.shape[0], pad), 0xAB, np.uint8)], axis=1)
    msg = Image(height=pixels.shape[0], width=pixels.shape[1], encoding=encoding,
                is_bigendian=int(bigendian), step=padded.shape[1])
    msg.data = array.array("B", padded.tobytes())
    return msg


RNG = np.random.default_rng(0)
RGB = RNG.integers(0, 256, (5, 7, 3), dtype=np.uint8)


@pytest.mark.parametrize("pad", [0, 3])
def test_colour_encodings_give_rgb(pad):
    assert np.array_equal(convert.rgb_from_image(_image(RGB, "rgb8", pad)), RGB)
    assert np.array_equal(convert.rgb_from_image(_image(RGB[:, :, ::-1], "bgr8", pad)), RGB)
    alpha = np.full((5, 7, 1), 9, np.uint8)
    assert np.array_equal(convert.rgb_from_image(_image(np.concatenate([RGB, alpha], 2), "rgba8", pad)), RGB)
    bgra = np.concatenate([RGB[:, :, ::-1], alpha], 2)
    assert np.array_equal(convert.rgb_from_image(_image(bgra, "bgra8", pad)), RGB)
    mono = convert.rgb_from_image(_image(RGB[:, :, 0], "mono8", pad))
    assert mono.shape == (5, 7, 3) and np.array_equal(mono[:, :, 2], RGB[:, :, 0])


@pytest.mark.parametrize("bigendian", [False, True])
@pytest.mark.parametrize("pad", [0, 2])
def test_depth_32fc1_and_16uc1(pad, bigendian):
    depth = np.array([[1.5, np.nan, np.inf], [-np.inf, 0.0, -2.0]], np.float32)
    out = convert.depth_from_image(_image(depth, "32FC1", pad * 4, bigendian))
    assert out.dtype == np.float32
    assert np.array_equal(out, [[1.5, 0, 0], [0, 0, 0]])
    mm = np.array([[1500, 0, 65535]], np.uint16)
    out = convert.depth_from_image(_image(mm, "16UC1", pad * 2, bigendian))
    assert np.allclose(out, [[1.5, 0.0, 65.535]])


def test_unsupported_encoding_named():
    with pytest.raises(InvalidInput, match="yuv422"):
        convert.rgb_from_image(_image(RGB[:, :, :2].copy(), "yuv422"))
    with pytest.raises(InvalidInput, match="depth.encoding.*rgb8"):  # colour is not depth
        convert.depth_from_image(_image(RGB, "rgb8"))


def test_truncated_data_and_short_step_rejected():
    msg = _image(RGB, "rgb8")
    msg.data = msg.data[:-1]
    with pytest.raises(InvalidInput, match="image.data"):
        convert.rgb_from_image(msg)
    msg = _image(RGB, "rgb8")
    msg.step = 5
    with pytest.raises(InvalidInput, match="image.step"):
        convert.rgb_from_image(msg)


@pytest.mark.parametrize("encoding,pixels", [
    ("rgb8", RGB), ("mono8", RGB[:, :, 1]), ("32FC1", RNG.random((4, 6), dtype=np.float32)),
])
def test_array_to_image_round_trip(encoding, pixels):
    msg = convert.array_to_image(pixels, encoding, convert.sec_to_time(12.25), "cam")
    assert msg.header.frame_id == "cam" and convert.time_to_sec(msg.header.stamp) == 12.25
    assert np.array_equal(convert.image_to_array(msg), pixels)


def test_mask_round_trip():
    mask = RNG.random((4, 5)) > 0.5
    assert np.array_equal(convert.mask_from_image(convert.array_to_image(mask, "mono8")), mask)


def test_camera_info_round_trip_and_zero_k():
    K = Intrinsics(500.0, 510.0, 319.5, 239.5, 640, 480)
    msg = convert.camera_info_from_intrinsics(K)
    assert convert.intrinsics_from_camera_info(msg) == K
    assert convert.intrinsics_from_camera_info(msg, use_projection=True) == K
    with pytest.raises(InvalidInput, match="camera_info.k"):
        convert.intrinsics_from_camera_info(CameraInfo(width=640, height=480))
    msg.width = 0
    with pytest.raises(InvalidInput, match="camera_info.width"):
        convert.intrinsics_from_camera_info(msg)


def test_pose_and_transform_quaternion_order():
    T = np.eye(4)
    T[:3, :3] = euler2mat(0.1, -0.4, 1.2)
    T[:3, 3] = [1.0, -2.0, 0.5]
    pose = convert.matrix_to_pose(T)
    assert np.allclose(convert.pose_to_matrix(pose), T)
    assert np.allclose(convert.transform_to_matrix(convert.matrix_to_transform(T)), T)
    yaw90 = Pose()
    yaw90.orientation.z, yaw90.orientation.w = np.sin(np.pi / 4), np.cos(np.pi / 4)  # ROS x,y,z,w
    assert np.allclose(convert.pose_to_matrix(yaw90)[:3, 0], [0, 1, 0])
    zero = Transform()
    zero.rotation.w = 0.0
    with pytest.raises(InvalidInput, match="transform"):
        convert.transform_to_matrix(zero)


def test_body_frame_convention():
    assert resolve_convention("auto", "camera_color_optical_frame") == "optical"
    assert resolve_convention("auto", "robot/camera_link/rgbd") == "body"
    assert resolve_convention("optical", "camera_link") == "optical"
    with pytest.raises(InvalidInput, match="camera_frame_convention"):
        resolve_convention("ned", "x")
    # A body frame looking along world +x: the optical z axis must point along world +x.
    T_cam = to_optical(np.eye(4), "body")
    assert np.allclose(T_cam[:3, 2], [1, 0, 0]) and np.allclose(T_cam[:3, 1], [0, 0, -1])


def test_a_depth_label_on_bytes_of_another_encoding_is_refused():
    metres = RNG.random((8, 100), dtype=np.float32) + 1.0
    wrong = _image(metres, "32FC1")
    wrong.encoding = "16UC1"  # 32FC1 bytes: each row is twice what 100 16-bit pixels take
    with pytest.raises(InvalidInput, match="depth.step: step 400 is 2 times a row of 100 16UC1 pixels"):
        convert.depth_from_image(wrong)
    padded = _image(RNG.integers(0, 5000, (8, 100)).astype(np.uint16), "16UC1", pad=56)  # alignment padding
    assert convert.depth_from_image(padded).shape == (8, 100)
    tiny = _image(RGB[:, :1, 0], "mono8", pad=63)  # a 1-pixel row padded to 64 bytes
    assert convert.mask_from_image(tiny).shape == (5, 1)


def test_predicted_depth_marks_cells_without_a_value_as_nan():
    from mirage_ros.messages import outputs

    depth = np.array([[1.5, 0.0], [np.inf, 2.0]], np.float32)
    request = outputs.ViewRequest(np.eye(4), convert.sec_to_time(1.0), 0.5, 1)
    view = outputs.predicted_view(request, np.zeros((2, 2, 3), np.uint8), depth, np.ones((2, 2), np.float32),
                                  Intrinsics(2.0, 2.0, 0.5, 0.5, 2, 2), "cam", "map")
    published = convert.image_to_array(view.depth, ("32FC1",), "depth")
    np.testing.assert_array_equal(np.isnan(published), [[False, True], [True, False]])
    np.testing.assert_array_equal(convert.depth_from_image(view.depth), [[1.5, 0.0], [0.0, 2.0]])
