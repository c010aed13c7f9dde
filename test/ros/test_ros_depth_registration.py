"""Depth from a camera of its own (an unregistered driver) re-projected into the colour camera by
the nodes (``depth_registration``): the decision, the frame sizes, and both nodes as real
processes fed over DDS with real TF."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from mirage_ros_msgs.msg import MovingRegions, PredictedView
from sensor_msgs.msg import Image
from transforms3d.euler import euler2mat

from mirage_ros.errors import InvalidInput
from mirage_ros.geometry import Intrinsics, invert_pose
from mirage_ros.messages import convert, outputs
from mirage_ros.ros.camera_feed import CameraFeed
from mirage_ros.ros.dds import large_message_env
from mirage_ros.ros.depth_registration import DepthRegistration
from mirage_ros.ros.pose_source import PoseUnavailable
from mirage_ros.ros.recorder import Recorder
from mirage_ros.ros.transport import CameraTransport, frame_messages
from mirage_ros.sim import SimConfig, Simulator

K_COLOUR = Intrinsics(120.0, 120.0, 79.5, 59.5, 160, 120)
T_COLOUR_DEPTH = np.eye(4)  # a depth camera 8 cm to the right of the colour one, turned 4 deg
T_COLOUR_DEPTH[:3, :3] = euler2mat(0.0, np.radians(4.0), 0.0)
T_COLOUR_DEPTH[0, 3] = 0.08


class Warnings:
    def __init__(self):
        self.texts = []

    def warn(self, cause, text, period=None):
        self.texts.append(text)
        return True


class StaticTf:
    """Stands in for a TfPoseSource in the node-less tests (the process tests use real TF)."""

    def __init__(self, transforms):
        self.transforms = transforms

    def lookup(self, target, source, stamp_ns):
        if (target, source) not in self.transforms:
            raise PoseUnavailable(f"TF {target} <- {source}: unknown", True)
        return self.transforms[target, source]


def registration(tf=None, mode="auto") -> tuple[DepthRegistration, Warnings]:
    warnings = Warnings()
    return DepthRegistration(None, mode, None, "auto", warnings, tf), warnings


def test_depth_is_re_projected_only_when_it_comes_from_a_camera_of_its_own():
    reg, warnings = registration()
    assert reg.depth_camera("color_optical", K_COLOUR, "color_optical") is None  # no depth CameraInfo: as is
    assert reg.depth_camera("color_optical", K_COLOUR, "depth_optical") is None
    assert "taken as registered" in warnings.texts[-1] and "depth_optical" in warnings.texts[-1]
    reg.K_depth = replace(K_COLOUR, fx=60.0, fy=60.0, cx=39.5, cy=29.5, width=80, height=60)  # resampled colour
    assert reg.depth_camera("color_optical", K_COLOUR, "color_optical") is None
    assert reg.depth_camera("color_optical", K_COLOUR, "") is None
    assert reg.depth_camera("color_optical", K_COLOUR, "depth_optical") == reg.K_depth  # another frame
    reg.K_depth = replace(K_COLOUR, fx=140.0)  # another lens, same frame name
    assert reg.depth_camera("color_optical", K_COLOUR, "color_optical") == reg.K_depth
    disabled, _ = registration(mode="disabled")
    disabled.K_depth = reg.K_depth
    assert disabled.depth_camera("color_optical", K_COLOUR, "depth_optical") is None
    with pytest.raises(InvalidInput, match="depth_registration"):
        registration(mode="off")  # YAML reads off as a boolean: not a choice


def test_one_stray_depth_camera_info_does_not_hold_up_later_frames():
    K_depth = Intrinsics(100.0, 100.0, 63.5, 47.5, 128, 96)
    reg, warnings = registration()
    reg._on_info(convert.camera_info_from_intrinsics(K_depth))  # the subscription callback, without a node
    assert reg.depth_camera("color_optical", K_COLOUR, "depth_optical", (128, 96)) == K_depth
    stray = Intrinsics(50.0, 50.0, 31.5, 23.5, 64, 48)
    reg._on_info(convert.camera_info_from_intrinsics(stray))  # newest, of another size
    assert reg.depth_camera("color_optical", K_COLOUR, "depth_optical", (128, 96)) == K_depth
    assert reg.depth_camera("color_optical", K_COLOUR, "depth_optical", (64, 48)) == stray
    # registered depth (the image's frame and size) beside a stray depth CameraInfo: taken as registered
    assert reg.depth_camera("color_optical", K_COLOUR, "color_optical", (160, 120)) is None
    assert "of 64x48 ignored: the depth images are 160x120" in warnings.texts[-1]
    reg._on_info(convert.camera_info_from_intrinsics(replace(K_depth, fx=1e-30)))
    assert "ignored: camera_info.k: horizontal field of view" in warnings.texts[-1] and reg.K_depth == stray


def test_registration_uses_the_optical_transform_and_waits_for_tf():
    K_depth = Intrinsics(100.0, 100.0, 63.5, 47.5, 128, 96)
    reg, _ = registration(StaticTf({("color_optical", "depth_optical"): T_COLOUR_DEPTH}))
    plane = np.full(K_depth.shape, 2.0, np.float32)  # a wall 2 m in front of the depth camera
    depth = reg.register(plane, K_depth, "depth_optical", K_COLOUR, "color_optical", 0)
    assert depth.shape == K_COLOUR.shape and reg.registered_frames == 1
    # the wall is turned 4 deg and 8 cm off in the colour camera: its depth there varies across the image
    seen = depth > 0
    assert seen.mean() > 0.6 and 1.8 < np.median(depth[seen]) < 2.2 and np.ptp(depth[seen]) > 0.1
    with pytest.raises(PoseUnavailable, match="depth registration: TF color_optical <- elsewhere") as info:
        reg.register(plane, K_depth, "elsewhere", K_COLOUR, "color_optical", 0)
    assert info.value.may_arrive


def test_decode_checks_depth_against_its_own_camera_info():
    transport = CameraTransport("raw", Image, "image", "depth", 10**6)
    rgb = np.zeros((120, 160, 3), np.uint8)
    info = convert.camera_info_from_intrinsics(K_COLOUR)
    K_depth = Intrinsics(100.0, 100.0, 63.5, 47.5, 128, 96)
    image, depth_msg = frame_messages(rgb, np.ones((96, 128), np.float32), "raw")
    _, depth, K = transport.decode(image, depth_msg, info, K_depth=K_depth)
    assert depth.shape == (96, 128) and K.shape == (120, 160)
    with pytest.raises(InvalidInput, match="sizes differ: image 160x120, depth 128x96"):
        transport.decode(image, depth_msg, info)  # taken as registered it must be the image's size
    with pytest.raises(InvalidInput, match="depth/depth camera_info sizes differ: depth 128x96, depth camera_info 64x48"):
        transport.decode(image, depth_msg, info, K_depth=replace(K_depth, width=64, height=48))


@pytest.mark.usefixtures("interfaces")
def test_world_model_registers_depth_from_a_camera_beside_the_colour_one(ros_process):
    """A 128x96 depth camera 8 cm beside a 160x120 colour camera, turned 4 deg, with its own
    CameraInfo and TF (an unregistered driver): the world model takes its frames and renders
    the colour camera's own depth at the live poses."""
    config = SimConfig(width=160, height=120, actors=False, path="loop")
    colour, depth_camera = Simulator(config), Simulator(replace(config, width=128, height=96))
    frames = list(colour.frames(24))
    K_depth = depth_camera.frame_at(0).K
    T_base_cam = invert_pose(colour.T_map_base(0.0)) @ frames[0].T_world_cam
    node = ros_process(module="mirage_ros.ros.world_model", env=large_message_env(), args=[
        "--ros-args", "-r", "__ns:=/mirage_reg", "-r", "image:=/reg_camera/color/image_raw",
        "-r", "depth:=/reg_camera/depth/image_raw", "-r", "camera_info:=/reg_camera/color/camera_info",
        "-p", "base_frame:=reg_base", "-p", "use_moving_mask:=false", "-p", "provider:=cpu",
        "-p", "horizons:=[0.5]", "-p", "tf_timeout:=1.5", "-p", "diagnostics_period:=0.3"])
    with Recorder("test_depth_registration") as rec:
        rendered = rec.record("/mirage_reg/rendered/view", PredictedView)
        feed = CameraFeed(rec, T_base_cam, prefix="/reg_camera", base_frame="reg_base",
                          optical_frame="reg_color_optical_frame", depth_camera=(K_depth, T_COLOUR_DEPTH))
        node.wait_for_output("world model ready", timeout=60)
        assert feed.wait_for_subscribers(timeout=60), node.output()
        for frame in frames:  # until 8 views came back (best-effort frames may be lost at first)
            if len(rendered) >= 8:
                break
            depth = depth_camera.render(frame.T_world_cam @ T_COLOUR_DEPTH, frame.stamp).depth
            feed.publish(frame.rgb, depth, frame.K, frame.stamp, colour.T_map_base(frame.stamp))
            rec.spin_until(lambda: False, timeout=0.4)
        assert rec.spin_until(lambda: len(rendered) >= 8, timeout=15), node.output()
    truth = {round(f.stamp, 6): f.depth for f in frames}
    errors = []
    for item in rendered[3:]:  # the memory holds a few frames by then
        view = item.msg
        predicted = convert.depth_from_image(view.depth)
        true = truth[round(convert.time_to_sec(view.header.stamp), 6)][: predicted.shape[0], : predicted.shape[1]]
        both = (predicted > 0) & (true > 0)
        assert both.mean() > 0.5
        errors.append(np.abs(predicted[both] - true[both]) / true[both])
    errors = np.concatenate(errors)
    assert np.median(errors) < 0.03 and np.mean(errors < 0.1) > 0.85, (np.median(errors), np.mean(errors < 0.1))
    assert "registered" not in node.output()  # no "taken as registered" warning


@pytest.mark.usefixtures("interfaces")
def test_monitor_registers_depth_from_a_camera_of_its_own(ros_process):
    """The monitor's live depth from a 64x48 depth camera beside the 128x96 colour one: an object
    missing from the memory is flagged where the colour camera sees it."""
    K = Intrinsics(80.0, 80.0, 63.5, 47.5, 128, 96)
    K_depth = Intrinsics(40.0, 40.0, 31.5, 23.5, 64, 48)
    T_colour_depth = np.eye(4)
    T_colour_depth[0, 3] = 0.05
    monitor = ros_process(module="mirage_ros.ros.consistency_monitor", env=large_message_env(), args=[
        "--ros-args", "-r", "__ns:=/reg_monitor", "-r", "image:=/reg_live/color/image_raw",
        "-r", "depth:=/reg_live/depth/image_raw"])
    box = (slice(30, 70), slice(40, 80))
    with Recorder("test_monitor_registration") as rec:
        masks = rec.record("/reg_monitor/moving/memory_mask", Image)
        regions = rec.record("/reg_monitor/moving/regions", MovingRegions)
        feed = CameraFeed(rec, np.eye(4), prefix="/reg_live", base_frame="reg_live_base",
                          optical_frame="reg_live_optical_frame", depth_camera=(K_depth, T_colour_depth))
        pub_view = rec.publisher("/reg_monitor/rendered/view", PredictedView)
        assert rec.wait_for_subscribers(pub_view, timeout=20), monitor.output()
        feed.wait_for_subscribers(timeout=20, tf=False)
        for k in range(14):  # until 5 masks came back
            if len(masks) >= 5:
                break
            stamp = 100.0 + 0.1 * k
            rng = np.random.default_rng(k)
            background = np.full((96, 128, 3), 120, np.uint8) + rng.integers(0, 10, (96, 128, 3), dtype=np.uint8)
            live = background.copy()
            live[box] = [200, 40, 40]
            # the depth camera sees a wall at 3 m and the box at 1.5 m where the colour camera does
            colour_depth = np.full((96, 128), 3.0, np.float32)
            colour_depth[box] = 1.5
            depth = _seen_from(colour_depth, K, K_depth, T_colour_depth)
            request = outputs.ViewRequest(np.eye(4), convert.sec_to_time(stamp), 0.0, PredictedView.SOURCE_LIVE)
            pub_view.publish(outputs.predicted_view(request, background, np.full((96, 128), 3.0, np.float32),
                                                    np.ones((96, 128), np.float32), K, "reg_live_optical_frame", "map"))
            feed.publish(live, depth, K, stamp, np.eye(4))
            rec.spin_for(0.3)
        assert rec.spin_until(lambda: len(masks) >= 5 and len(regions) >= 5, timeout=15), monitor.output()
    kept_out = convert.mask_from_image(masks[-1].msg)
    assert kept_out[box].mean() > 0.9, "the object absent from memory must be kept out of it"
    kept_out[30 - 8:70 + 8, 40 - 8:80 + 8] = False  # feedback dilation around the box
    assert kept_out.mean() < 0.01
    found = regions[-1].msg.regions
    assert len(found) == 1 and abs(found[0].box.x_offset - 40) <= 2 and abs(found[0].box.width - 40) <= 3
    assert "taken as registered" not in monitor.output()


def _seen_from(depth: np.ndarray, K: Intrinsics, K_other: Intrinsics, T_colour_other: np.ndarray) -> np.ndarray:
    """What a camera at ``T_colour_other`` with ``K_other`` reads of the surfaces ``depth`` shows."""
    from mirage_ros.geometry import register_depth

    return register_depth(depth, K, invert_pose(T_colour_other), K_other)
