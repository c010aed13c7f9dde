"""Reading recordings for `mirage-ros eval`: real bags written with rosbags, TUM folders, bad input."""

import shutil
from dataclasses import replace

import numpy as np
import pytest
from helpers.recordings import K_SMALL, T_BASE_LINK, synthetic_frames, write_bag, write_tum

from mirage_ros.errors import InvalidInput
from mirage_ros.evaluation.recordings import open_recording
from mirage_ros.evaluation.sources import SourceOptions, associate
from mirage_ros.evaluation.tum_source import tum_preset
from mirage_ros.sim import SimConfig, Simulator

FRAMES = synthetic_frames(n=12)


def check_frames(recording, frames=FRAMES, exact_rgb=True):
    observed = list(recording.frames())
    assert len(observed) == len(frames) == len(recording.stamps)
    for obs, (stamp, rgb, depth, T) in zip(observed, frames):
        assert obs.stamp == pytest.approx(stamp, abs=1e-6)
        np.testing.assert_allclose(obs.T_world_cam, T, atol=1e-6)
        if exact_rgb:
            np.testing.assert_array_equal(obs.rgb, rgb)
        np.testing.assert_allclose(obs.depth, np.nan_to_num(depth), atol=1e-3)
        assert obs.K == recording.K and obs.depth.dtype == np.float32


@pytest.mark.parametrize("storage", ["mcap", "sqlite3", "ros1"])
def test_every_bag_format_gives_the_recorded_frames_and_poses(tmp_path, storage):
    path = write_bag(tmp_path / ("rec.bag" if storage == "ros1" else "rec"), FRAMES, storage=storage)
    recording = open_recording(path)
    assert recording.kind == ("rosbag1" if storage == "ros1" else "rosbag2")
    assert recording.K == K_SMALL
    assert recording.details["world_frame"] == "map"
    assert recording.details["topics"]["color"] == "/camera/color/image_raw"
    assert recording.skipped == []
    check_frames(recording)


def test_bgr8_and_16uc1_are_decoded_to_rgb_and_metres(tmp_path):
    path = write_bag(tmp_path / "rec", FRAMES, color_encoding="bgr8", depth_encoding="16UC1")
    recording = open_recording(path)
    assert recording.details["encodings"] == {"color": "bgr8", "depth": "16UC1"}
    check_frames(recording)


def test_gazebo_style_body_frame_images_get_the_optical_pose(tmp_path):
    path = write_bag(tmp_path / "rec", FRAMES, image_frame="camera_link")
    recording = open_recording(path)
    assert recording.details["camera_frame"] == "camera_link"
    assert recording.details["camera_frame_convention"] == "body"
    check_frames(recording)  # camera_link pose @ T_LINK_OPTICAL == the optical frame's pose
    wrong = open_recording(path, SourceOptions(camera_frame_convention="optical"))
    assert not np.allclose(wrong.poses[0], FRAMES[0][3], atol=1e-3)


def test_depth_from_a_camera_beside_the_colour_one_is_registered_into_it(tmp_path):
    """The simulator's office seen by a 96x72 colour camera and, 10 cm to its right, a 64x48 depth
    camera with its own CameraInfo and TF (an unregistered driver's recording): eval re-projects
    the depth into the colour camera, close to the colour camera's own depth; taken as registered
    (``off``) it is not."""
    config = SimConfig(scene="office", seed=3, width=96, height=72, rate_hz=2.0, path="loop", actors=False)
    colour, depth_camera = Simulator(config), Simulator(replace(config, width=64, height=48))
    T_colour_depth = np.eye(4)
    T_colour_depth[0, 3] = 0.1
    truth = list(colour.frames(3))
    frames = [(100.0 + f.stamp, f.rgb, depth_camera.render(f.T_world_cam @ T_colour_depth, f.stamp).depth,
               f.T_world_cam) for f in truth]
    K_depth = depth_camera.frame_at(0).K
    path = write_bag(tmp_path / "rec", frames, truth[0].K, depth_camera=(K_depth, T_colour_depth))
    recording = open_recording(path)
    assert recording.details["topics"]["depth_info"] == "/camera/depth/camera_info"
    assert "64x48 -> camera_optical_frame 96x72: re-projected (offset 100.0 mm, 0.00 deg)" in \
        recording.details["depth_registration"]
    unregistered = open_recording(path, SourceOptions(depth_registration="disabled"))
    assert "nearest" in unregistered.details["depth_resampled"]
    for registered, taken_as_is, f in zip(recording.frames(), unregistered.frames(), truth):
        seen = registered.depth > 0
        assert seen[f.depth > 0].mean() > 0.85  # parallax: the colour camera sees a strip and edges it cannot
        both = seen & (f.depth > 0)
        error = np.abs(registered.depth[both] - f.depth[both]) / f.depth[both]
        error_as_is = np.abs(taken_as_is.depth[both] - f.depth[both]) / f.depth[both]
        # 1 % is what resampling 64x48 to 96x72 costs without any offset (nearest upsampling too)
        assert np.median(error) < 0.015 and np.mean(error < 0.05) > 0.94
        assert np.mean(error_as_is < 0.05) < 0.8
    no_tf = write_bag(tmp_path / "no_tf", frames, truth[0].K, depth_camera=(K_depth, T_colour_depth),
                      depth_camera_tf=False)
    with pytest.raises(InvalidInput, match="--depth-registration.*no transform"):
        open_recording(no_tf)
    assert open_recording(no_tf, SourceOptions(depth_registration="disabled")).details["depth_resampled"]


def test_smaller_depth_of_the_same_aspect_is_upsampled_and_another_aspect_refused(tmp_path):
    frames = [(t, rgb, np.full_like(depth, 2.5), T) for t, rgb, depth, T in FRAMES]
    recording = open_recording(write_bag(tmp_path / "half", frames, depth_step=(2, 2)))
    assert "nearest" in recording.details["depth_resampled"]
    check_frames(recording, frames)
    with pytest.raises(InvalidInput) as info:
        open_recording(write_bag(tmp_path / "skewed", frames, depth_step=(2, 1)))
    assert info.value.parameter == "--depth-topic" and "aligned" in info.value.reason


def test_odometry_poses_need_the_camera_offset_and_then_match(tmp_path):
    path = write_bag(tmp_path / "rec", FRAMES, poses="odom")
    with pytest.raises(InvalidInput) as info:
        open_recording(path)
    assert info.value.parameter == "--camera-frame" and "--camera-offset" in info.value.reason
    offset = (*T_BASE_LINK[:3, 3], 0.0, 0.0, 0.0)
    recording = open_recording(path, SourceOptions(camera_offset=offset, camera_frame_convention="body"))
    assert recording.details["world_frame"] == "odom" and "base_link" in recording.details["odometry"]
    check_frames(recording)


def test_a_damaged_message_is_skipped_with_its_reason(tmp_path):
    recording = open_recording(write_bag(tmp_path / "rec", FRAMES, short_frame=3, garbage_frame=6))
    assert [s.what.split()[0] for s in recording.skipped] == ["/camera/color/image_raw"] * 2
    assert "bytes, need" in recording.skipped[0].reason and "deserialize" in recording.skipped[1].reason
    check_frames(recording, FRAMES[:3] + FRAMES[4:6] + FRAMES[7:])


def test_a_repeated_colour_stamp_is_skipped(tmp_path):
    frames = FRAMES[:5] + [FRAMES[4]] + FRAMES[5:]
    recording = open_recording(write_bag(tmp_path / "rec", frames))
    assert [s.reason for s in recording.skipped] == ["same stamp as the previous colour image"]
    check_frames(recording)


def test_frames_without_depth_or_pose_are_skipped_with_reasons(tmp_path):
    path = write_bag(tmp_path / "rec", FRAMES, depth_dt=0.05)
    with pytest.raises(InvalidInput, match="no depth image within 0.02 s"):
        open_recording(path)
    recording = open_recording(path, SourceOptions(max_depth_dt=0.06, max_frames=5))
    assert len(recording.stamps) == 5
    recording = open_recording(path, SourceOptions(max_depth_dt=0.06, max_pose_extrapolation=0.0))
    assert len(recording.stamps) == len(FRAMES)  # TF at the colour stamps: no extrapolation needed


def test_intrinsics_option_overrides_and_is_required_without_camera_info(tmp_path):
    path = write_bag(tmp_path / "rec", FRAMES, camera_info=False)
    with pytest.raises(InvalidInput) as info:
        open_recording(path)
    assert info.value.parameter == "--intrinsics"
    recording = open_recording(path, SourceOptions(intrinsics=(40.0, 40.0, 23.5, 17.5)))
    assert recording.K == K_SMALL


@pytest.mark.parametrize(
    ("kwargs", "parameter", "words"),
    [
        ({"images": False}, "--color-topic", "no sensor_msgs/Image"),
        ({"color_encoding": "yuv422"}, "--color-topic", "yuv422"),
        ({"poses": "none"}, "--camera-frame", "no pose"),
    ],
)
def test_bags_missing_what_eval_needs_fail_naming_the_option(tmp_path, kwargs, parameter, words):
    path = write_bag(tmp_path / "rec", FRAMES, **kwargs)
    with pytest.raises(InvalidInput) as info:
        open_recording(path)
    assert info.value.parameter == parameter and words in str(info.value)


def test_wrong_topic_options_name_the_option(tmp_path):
    path = write_bag(tmp_path / "rec", FRAMES)
    with pytest.raises(InvalidInput) as info:
        open_recording(path, SourceOptions(depth_topic="/camera/color/camera_info"))
    assert info.value.parameter == "--depth-topic" and "CameraInfo" in info.value.reason
    with pytest.raises(InvalidInput) as info:
        open_recording(path, SourceOptions(depth_info_topic="/camera/depth/image_raw"))
    assert info.value.parameter == "--depth-info-topic" and "Image" in info.value.reason
    with pytest.raises(InvalidInput, match="--depth-registration"):
        SourceOptions(depth_registration="on")


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_truncated_or_garbage_bags_fail_clearly(tmp_path, storage):
    path = write_bag(tmp_path / "rec", FRAMES, storage=storage)
    data_file = next(p for p in path.iterdir() if p.suffix in (".mcap", ".db3"))
    data_file.write_bytes(data_file.read_bytes()[: data_file.stat().st_size // 2])
    with pytest.raises(InvalidInput) as info:
        open_recording(path)
    assert info.value.parameter == "INPUT" and "unreadable rosbag" in info.value.reason
    garbage = tmp_path / f"garbage.{'mcap' if storage == 'mcap' else 'db3'}"
    garbage.write_bytes(b"not a bag at all" * 100)
    with pytest.raises(InvalidInput, match="unreadable rosbag"):
        open_recording(garbage)


def test_missing_metadata_and_unknown_inputs_fail_clearly(tmp_path):
    path = write_bag(tmp_path / "rec", FRAMES)
    (path / "metadata.yaml").unlink()
    with pytest.raises(InvalidInput, match="neither a rosbag"):
        open_recording(path)
    with pytest.raises(InvalidInput, match="does not exist"):
        open_recording(tmp_path / "nothing")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(InvalidInput, match="neither a rosbag"):
        open_recording(tmp_path / "notes.txt")


def test_tum_folder_round_trip(tmp_path):
    folder = write_tum(tmp_path / "rgbd_dataset_freiburg1_xyz", FRAMES)
    with pytest.raises(InvalidInput) as info:  # TUM presets are 640x480; these images are not
        open_recording(folder)
    assert info.value.parameter == "--intrinsics"
    recording = open_recording(folder, SourceOptions(intrinsics=(40.0, 40.0, 23.5, 17.5)))
    assert recording.kind == "tum" and recording.K == K_SMALL
    check_frames(recording)
    assert tum_preset(folder, "auto") == "fr1"


def test_tum_folder_with_broken_parts(tmp_path):
    folder = write_tum(tmp_path / "tum", FRAMES)
    options = SourceOptions(intrinsics=(40.0, 40.0, 23.5, 17.5))
    first_depth = sorted((folder / "depth").iterdir())[0]
    first_depth.unlink()
    recording = open_recording(folder, options)
    assert len(recording.stamps) == len(FRAMES) - 1
    assert any("missing file" in s.reason for s in recording.skipped)
    sorted((folder / "rgb").iterdir())[3].write_bytes(b"truncated png")
    with pytest.raises(InvalidInput, match="unreadable image"):
        list(recording.frames())
    (folder / "groundtruth.txt").write_text("# nothing\n")
    with pytest.raises(InvalidInput, match="must each list entries"):
        open_recording(folder, options)
    shutil.rmtree(folder / "rgb")
    (folder / "depth.txt").unlink()
    with pytest.raises(InvalidInput, match="lacks depth.txt"):
        open_recording(folder, options)


def test_associate_takes_the_nearest_stamp_within_the_limit():
    reference = np.array([0.30, 0.00, 0.10, 0.21])
    found = associate(np.array([0.0, 0.09, 0.16, 0.5, 0.26]), reference, 0.05)
    np.testing.assert_array_equal(found, [1, 2, 3, -1, 0])
    assert associate(np.array([1.0]), np.array([]), 1.0).tolist() == [-1]
    assert associate(np.array([0.4, 0.0]), np.array([0.0, np.nan]), 1.0).tolist() == [0, 0]


@pytest.mark.parametrize("depth_encoding", ["16UC1", "32FC1"])
def test_image_transport_compressed_copies_decode_like_the_raw_images(tmp_path, depth_encoding):
    path = write_bag(tmp_path / "rec", FRAMES, compression="png", depth_encoding=depth_encoding)
    recording = open_recording(path)
    assert recording.details["topics"]["color"] == "/camera/color/image_raw/compressed"
    assert recording.details["topics"]["depth"] == "/camera/depth/image_raw/compressedDepth"
    assert recording.details["topics"]["info"] == "/camera/color/camera_info"  # the raw topic's namespace
    assert recording.details["encodings"] == {"color": "rgb8; png compressed rgb8",
                                              "depth": f"{depth_encoding}; compressedDepth png"}
    assert recording.skipped == []
    observed = list(recording.frames())
    assert len(observed) == len(FRAMES)
    for obs, (_, rgb, depth, _) in zip(observed, FRAMES):
        np.testing.assert_array_equal(obs.rgb, rgb)  # PNG is lossless
        # 32FC1 goes through the codec's quantised inverse depth: 100 * 101 / z steps, 0.4 mm at 2 m
        np.testing.assert_allclose(obs.depth, np.nan_to_num(depth), atol=1e-3)
        assert obs.depth[0, 0] == 0  # the NaN pixel: no reading


def test_jpeg_colour_is_decoded_to_rgb_and_rvl_depth_is_refused_with_the_way_out(tmp_path):
    red, green = np.meshgrid(np.linspace(0, 255, K_SMALL.width), np.linspace(0, 255, K_SMALL.height))
    ramp = np.dstack([red, green, np.full_like(red, 90.0)]).astype(np.uint8)
    smooth = [(t, ramp, d, T) for t, _, d, T in FRAMES]
    recording = open_recording(write_bag(tmp_path / "jpeg", smooth, compression="jpeg", depth_encoding="16UC1"))
    for obs, (_, rgb, _, _) in zip(recording.frames(), smooth):
        assert np.abs(obs.rgb.astype(int) - rgb).mean() < 3  # channel order kept: red ramps along x
    with pytest.raises(InvalidInput) as info:
        open_recording(write_bag(tmp_path / "rvl", FRAMES, compression="rvl", depth_encoding="16UC1"))
    assert info.value.parameter == "--depth-topic"
    assert "RVL" in info.value.reason and "republish" in info.value.reason
