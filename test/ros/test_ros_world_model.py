"""world_model as a real process over DDS: frames + TF in, predicted views out; path, services,
diagnostics, and bad input (each frame skipped with a warning naming the cause, node alive).

One node process serves the whole module (start-up costs seconds). The camera is a CameraFeed
publishing simulator frames with TF from this process, so stamps and bad messages are under the
test's control. Networks: the shipped weights.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from conftest import RosProcess
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseArray, PoseStamped
from mirage_ros_msgs.msg import PredictedView
from nav_msgs.msg import Path as PathMsg
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from std_srvs.srv import Trigger

from mirage_ros.geometry import invert_pose, pose_from_tq
from mirage_ros.messages import convert
from mirage_ros.ros.camera_feed import CameraFeed
from mirage_ros.ros.dds import large_message_env
from mirage_ros.ros.recorder import Recorder
from mirage_ros.sim import SimConfig, Simulator

HORIZONS = (0.5, 1.0)
SIZE = (160, 120)


class Run:
    """The node process, the test's recorder and camera, and what came back."""

    def __init__(self, tmp: Path):
        self.memory_file = tmp / "memory.npz"
        params = {
            "use_moving_mask": False, "horizons": list(HORIZONS),
            "diagnostics_period": 0.3, "pointcloud_period": 0.5, "tf_timeout": 1.5,
            "path_spacing": 0.5, "max_image_pixels": 20_000, "memory_file": str(self.memory_file),
            "path_max_poses": 500,
            "provider": "cpu",
        }
        args = ["--ros-args", "-r", "__ns:=/mirage", "-r", "image:=/camera/color/image_raw",
                "-r", "depth:=/camera/depth/image_raw", "-r", "camera_info:=/camera/color/camera_info",
                "-r", "path:=/plan"]
        for name, value in params.items():
            args += ["-p", f"{name}:={json.dumps(value) if not isinstance(value, str) else value}"]
        self.node = RosProcess(module="mirage_ros.ros.world_model", args=args, log_path=tmp / "world_model.log",
                               env=large_message_env())
        self.sim = Simulator(SimConfig(width=SIZE[0], height=SIZE[1], actors=False, path="loop"))
        self.frames = list(self.sim.frames(40))
        self.T_base_cam = invert_pose(self.sim.T_map_base(0.0)) @ self.frames[0].T_world_cam
        self.rec = Recorder("test_world_model")
        self.views = self.rec.record("/mirage/predicted/views", PredictedView)
        self.h05 = self.rec.record("/mirage/predicted/h0_5/image", Image)
        self.h05_info = self.rec.record("/mirage/predicted/h0_5/camera_info", CameraInfo)
        self.rendered = self.rec.record("/mirage/rendered/view", PredictedView)
        self.path_views = self.rec.record("/mirage/predicted/path_views", PredictedView)
        self.path_poses = self.rec.record("/mirage/predicted/path_poses", PoseArray)
        self.diagnostics = self.rec.record("/diagnostics", DiagnosticArray)
        self.clouds = self.rec.record("/mirage/memory/points", PointCloud2)
        self.feed = CameraFeed(self.rec, self.T_base_cam)
        self.path = self.rec.publisher("/plan", PathMsg, 1)
        self.next = 0

    def start(self) -> None:
        self.node.wait_for_output("world model ready", timeout=60)
        assert self.feed.wait_for_subscribers(timeout=60), self.node.output()
        assert self.rec.wait_for_subscribers(self.path, timeout=30)

    def send(self, count: int, period: float = 0.1, pace: float = 0.0) -> list[float]:
        """Publish the next ``count`` simulator frames with their poses; returns their stamps.

        With ``pace`` > 0, after each frame wait up to ``pace`` seconds for its predicted views,
        so that a slow (loaded) machine is not fed faster than the node integrates: the node drops
        the oldest waiting frames under overload, by design.
        """
        stamps = []
        for frame in self.frames[self.next:self.next + count]:
            predicted = len(self.view_sources())
            self.feed.publish(frame.rgb, frame.depth, frame.K, frame.stamp, self.sim.T_map_base(frame.stamp))
            stamps.append(frame.stamp)
            if pace > 0:
                self.rec.spin_until(lambda: len(self.view_sources()) > predicted, timeout=pace)
            self.rec.spin_for(period)
        self.next += count
        return stamps

    def view_sources(self) -> dict[int, int]:
        """Predicted views received, counted per source frame stamp (ns)."""
        sources: dict[int, int] = {}
        for v in self.views:
            key = convert.time_to_ns(v.msg.header.stamp) - round(v.msg.horizon * 1e9)
            sources[key] = sources.get(key, 0) + 1
        return sources

    def diag(self) -> dict[str, str]:
        mine = [d for d in self.diagnostics if d.msg.status[0].name == "mirage_ros: world_model"]
        return {kv.key: kv.value for kv in mine[-1].msg.status[0].values}

    def fresh_diag(self) -> dict[str, str]:
        """Diagnostics published after now."""
        count = len(self.diagnostics)
        assert self.rec.spin_until(lambda: len(self.diagnostics) > count + 1, timeout=10)
        return self.diag()

    def close(self) -> None:
        self.rec.close()
        self.node.stop()


@pytest.fixture(scope="module")
def run(tmp_path_factory, interfaces):
    run = Run(tmp_path_factory.mktemp("world_model"))
    try:
        run.start()
        sent = run.send(15, period=0.2, pace=3.0)  # at most 5 Hz, slower when the node is

        def settled() -> bool:  # most frames predicted, every started set of views complete
            sources = run.view_sources()
            return len(sources) >= 0.6 * len(sent) and all(n == len(HORIZONS) for n in sources.values())

        run.rec.spin_until(settled, timeout=20)
        run.sent = sent
        yield run
    finally:
        run.close()


def _stamp(msg) -> float:
    return convert.time_to_sec(msg.header.stamp)


def test_predicted_views_are_future_stamped_in_the_camera_frame(run):
    sent = set(np.round(run.sent, 6))
    by_source: dict[float, list] = {}
    for item in run.views:
        view = item.msg
        assert view.source == PredictedView.SOURCE_HORIZON
        by_source.setdefault(round(_stamp(view) - view.horizon, 6), []).append(view)
    assert len(by_source) >= 0.6 * len(sent), run.node.output()  # best-effort camera QoS may drop a few
    for source, views in by_source.items():
        assert source in sent
        assert sorted(v.horizon for v in views) == list(HORIZONS)
        for view in views:
            assert view.header.frame_id == "camera_color_optical_frame" and view.world_frame_id == "map"
            assert (view.image.width, view.image.height, view.image.encoding) == (*SIZE, "rgb8")
            assert (view.depth.width, view.depth.height, view.depth.encoding) == (*SIZE, "32FC1")
            assert view.camera_info.k[0] == pytest.approx(run.frames[0].K.fx)
            assert _stamp(view.image) == _stamp(view)
            if source >= min(by_source) + 0.3:  # motion known: the sim drives smoothly here
                truth = run.sim.pose_at(_stamp(view))
                error = np.linalg.norm(convert.pose_to_matrix(view.camera_pose)[:3, 3] - truth[:3, 3])
                assert error < 0.1 * view.horizon + 0.05
    plain = {round(_stamp(m.msg), 6) for m in run.h05}
    assert plain == {round(_stamp(v), 6) for vs in by_source.values() for v in vs if v.horizon == 0.5}
    assert run.h05_info and run.h05_info[-1].msg.width == SIZE[0]


def test_rendered_view_is_at_the_live_pose_and_stamp(run):
    assert len(run.rendered) >= 0.6 * len(run.sent)
    poses = {round(f.stamp, 6): f.T_world_cam for f in run.frames}
    for item in run.rendered:
        view = item.msg
        assert view.source == PredictedView.SOURCE_LIVE and view.horizon == 0.0
        np.testing.assert_allclose(convert.pose_to_matrix(view.camera_pose), poses[round(_stamp(view), 6)], atol=1e-6)
    assert run.rendered[-1].msg.coverage > 0.3  # the memory covers most of what was just seen


def test_path_gives_one_view_per_sampled_pose(run):
    path = PathMsg()
    path.header.frame_id = "map"
    path.header.stamp = convert.sec_to_time(run.sent[-1] + 0.5)
    start = run.sim.T_map_base(run.sent[-1])
    for k in range(41):  # 2 m ahead of the robot in 5 cm steps, orientations left unset
        pose = PoseStamped()
        pose.header = path.header
        x, y, _ = start[:3, 3] + start[:3, 0] * 0.05 * k
        pose.pose.position.x, pose.pose.position.y = x, y
        pose.pose.orientation.w = 0.0
        path.poses.append(pose)
    views, poses = len(run.path_views), len(run.path_poses)
    run.path.publish(path)
    # two topics: no order between them (the views are rendered in one batch, then sent together)
    assert run.rec.spin_until(lambda: len(run.path_poses) > poses and len(run.path_views) >= views + 5,
                              timeout=10), run.node.output()
    got = [v.msg for v in run.path_views[views:]]
    assert [v.path_index for v in got] == [0, 10, 20, 30, 40]
    assert all(v.source == PredictedView.SOURCE_PATH and _stamp(v) == _stamp(path) for v in got)
    assert len(run.path_poses[-1].msg.poses) == 5
    heading = np.arctan2(start[1, 0], start[0, 0])
    for view in got:  # camera pose = path pose (yaw from the path direction) @ T_base_cam
        T_base = pose_from_tq(np.array([*start[:3, 3] + start[:3, 0] * 0.05 * view.path_index]),
                              [np.cos(heading / 2), 0, 0, np.sin(heading / 2)])
        T_base[2, 3] = 0.0
        np.testing.assert_allclose(convert.pose_to_matrix(view.camera_pose), T_base @ run.T_base_cam, atol=1e-5)


def test_diagnostics_and_point_cloud(run):
    values = run.fresh_diag()
    assert int(values["integrated"]) >= 0.6 * len(run.sent)
    assert int(values["memory_points"]) > 0 and int(values["memory_bytes"]) > 0
    assert values["provider"] == "CPUExecutionProvider" and values["pose_source"] in ("tf2_msgs", "tf2_ros")
    assert 0 < float(values["latency_ms_mean"]) < 5000
    assert run.rec.spin_until(lambda: len(run.clouds) > 0, timeout=10)
    cloud = run.clouds[-1].msg
    assert cloud.header.frame_id == "map" and cloud.width > 0 and [f.name for f in cloud.fields] == ["x", "y", "z", "rgb"]


def test_services_save_reset_load(run):
    before = int(run.fresh_diag()["memory_points"])
    saved = run.rec.call("/mirage/world_model/save", Trigger)
    assert saved.success and run.memory_file.is_file(), saved.message
    assert run.rec.call("/mirage/world_model/reset", Trigger).success
    assert int(run.fresh_diag()["memory_points"]) == 0
    loaded = run.rec.call("/mirage/world_model/load", Trigger)
    assert loaded.success, loaded.message
    assert int(run.fresh_diag()["memory_points"]) == before


def _bad_frames(run):
    """(cause expected in the warning, frame messages) of each bad input."""
    frame = run.frames[0]
    stamp = convert.sec_to_time(0.0)  # CameraFeed re-stamps every message
    image = convert.array_to_image(frame.rgb, "rgb8", stamp)
    depth = convert.array_to_image(frame.depth, "32FC1", stamp)
    info = convert.camera_info_from_intrinsics(frame.K, stamp)
    yuv = Image(height=image.height, width=image.width, encoding="yuv422", step=2 * image.width,
                data=convert.byte_array(bytes(2 * image.width * image.height)))
    zero_k = CameraInfo(width=image.width, height=image.height)
    small = convert.array_to_image(frame.depth[::2, ::2], "32FC1", stamp)
    nan = convert.array_to_image(np.full(frame.depth.shape, np.nan, np.float32), "32FC1", stamp)
    huge = dict(image=convert.array_to_image(np.zeros((150, 200, 3), np.uint8), "rgb8", stamp),
                depth_msg=convert.array_to_image(np.ones((150, 200), np.float32), "32FC1", stamp),
                info=convert.camera_info_from_intrinsics(type(frame.K)(150.0, 150.0, 99.5, 74.5, 200, 150)))
    def intrinsics(**fields):
        return convert.camera_info_from_intrinsics(replace(frame.K, **fields), stamp)

    far = convert.array_to_image(np.full(frame.depth.shape, 1e30, np.float32), "32FC1", stamp)
    return [
        ("camera_info.k: horizontal field of view 180 deg", dict(image=image, depth_msg=depth,
                                                                 info=intrinsics(fx=1e-30))),
        ("camera_info.k: horizontal field of view .* deg \\(focal length 1e\\+30 px", dict(image=image, depth_msg=depth,
                                                                     info=intrinsics(fx=1e30))),
        ("camera_info.k: principal point 1e\\+12 px", dict(image=image, depth_msg=depth, info=intrinsics(cx=1e12))),
        ("depth: no reading inside depth_range", dict(image=image, depth_msg=far, info=info)),
        ("image.encoding: unsupported encoding 'yuv422'", dict(image=yuv, depth_msg=depth, info=info)),
        ("sizes differ: image 160x120, depth 80x60", dict(image=image, depth_msg=small, info=info)),
        ("camera_info.k: all zero", dict(image=image, depth_msg=depth, info=zero_k)),
        ("depth: no valid reading", dict(image=image, depth_msg=nan, info=info)),
        ("image.size: 200x150 exceeds max_image_pixels", huge),
    ]


def _expect(run, pattern: str, stamps, publish) -> None:
    """``publish(t)`` for each ``t`` in ``stamps`` until the node logs ``pattern`` (with ``{t}``):
    best-effort camera topics may lose a message on a busy machine, so up to three tries."""
    for attempt, t in enumerate(stamps[:3]):
        publish(t)
        try:
            run.node.wait_for_output(pattern.format(t=f"{t:.3f}"), timeout=6)
            return
        except AssertionError:
            if attempt == 2:
                raise


def test_bad_frames_are_skipped_with_a_warning_naming_the_cause(run):
    frame, start, pose = run.frames[0], run.sent[-1] + 5.0, run.sim.T_map_base(run.sent[-1])
    points = int(run.fresh_diag()["memory_points"])
    for k, (cause, msgs) in enumerate(_bad_frames(run)):
        _expect(run, "frame {t} skipped: .*" + cause, [start + 0.1 * k + 0.01 * a for a in range(3)],
                lambda t: run.feed.publish(frame.rgb, frame.depth, frame.K, t, pose, **msgs))
    # no TF for this stamp: waited for (tf_timeout), then skipped
    _expect(run, "frame {t} skipped: no camera pose after .*extrapolation into the future",
            [start + 1.0 + 0.01 * a for a in range(3)],
            lambda t: run.feed.publish(frame.rgb, frame.depth, frame.K, t, None))
    # a stamp before the last frame
    _expect(run, "frame {t} skipped: out-of-order stamp", [start + 0.9 + 0.01 * a for a in range(3)],
            lambda t: run.feed.publish(frame.rgb, frame.depth, frame.K, t, pose))
    # images without camera_info
    for k in range(4):
        ros_stamp = convert.sec_to_time(start + 1.1 + 0.1 * k)
        run.feed.image.publish(convert.array_to_image(frame.rgb, "rgb8", ros_stamp, "camera_color_optical_frame"))
        run.rec.spin_for(0.15)
    run.node.wait_for_output("images arrive but no camera_info on /camera/color/camera_info", timeout=15)
    values = run.fresh_diag()
    assert int(values["memory_points"]) == points, "a bad frame changed the memory"
    assert run.node.running()
    # still working: a good frame is integrated and predicted
    count = len(run.views)
    for t in (start + 2.0, start + 2.1, start + 2.2):
        run.feed.publish(frame.rgb, frame.depth, frame.K, t, run.sim.T_map_base(0.0))
        if run.rec.spin_until(lambda: any(v.msg.horizon == 0.5 for v in run.views[count:]), timeout=5):
            break
    assert any(v.msg.horizon == 0.5 for v in run.views[count:]), run.node.output()


def test_body_frame_images_are_rotated_to_optical(run):
    """Gazebo-style images stamped in a link frame (x forward): auto convention applies T_LINK_OPTICAL."""
    from mirage_ros.geometry import T_LINK_OPTICAL

    gazebo = CameraFeed(run.rec, run.T_base_cam @ invert_pose(T_LINK_OPTICAL), optical_frame="camera_link")
    frame, t = run.frames[0], run.sent[-1] + 20.0
    count = len(run.rendered)
    for attempt in range(3):
        gazebo.publish(frame.rgb, frame.depth, frame.K, t + 0.01 * attempt, run.sim.T_map_base(0.0))
        if run.rec.spin_until(lambda: any(r.msg.header.frame_id == "camera_link_optical"
                                          for r in run.rendered[count:]), timeout=5):
            break
    view = next(r.msg for r in run.rendered[count:] if r.msg.header.frame_id == "camera_link_optical")
    np.testing.assert_allclose(convert.pose_to_matrix(view.camera_pose), run.frames[0].T_world_cam, atol=1e-6)


def _path_msg(positions, quats=None, frame_id: str = "map", stamp: float = 0.0) -> PathMsg:
    path = PathMsg()
    path.header.frame_id, path.header.stamp = frame_id, convert.sec_to_time(stamp)
    for k, position in enumerate(positions):
        pose = PoseStamped()
        pose.header = path.header
        pose.pose.position.x, pose.pose.position.y, pose.pose.position.z = (float(v) for v in position)
        if quats is not None:
            o = pose.pose.orientation
            o.w, o.x, o.y, o.z = (float(v) for v in quats[k])
        path.poses.append(pose)
    return path


def test_a_path_in_the_base_frame_goes_through_tf(run):
    t, T_map_base = run.sent[-1] + 22.0, run.sim.T_map_base(run.sent[-1])  # after the stamps of earlier tests
    steps = np.stack([0.05 * np.arange(41), np.zeros(41), np.zeros(41)], axis=1)
    identity = np.tile([1.0, 0.0, 0.0, 0.0], (41, 1))
    views, poses = len(run.path_views), len(run.path_poses)
    run.feed.publish_pose(T_map_base, t)
    run.rec.spin_for(0.3)
    run.path.publish(_path_msg(steps, identity, "base_link", t))
    # two topics: no order between them (the views are rendered in one batch, then sent together)
    assert run.rec.spin_until(lambda: len(run.path_poses) > poses and len(run.path_views) >= views + 5,
                              timeout=10), run.node.output()
    got = [v.msg for v in run.path_views[views:]]
    assert [v.path_index for v in got] == [0, 10, 20, 30, 40]
    for view in got:  # camera pose = T_map_base(t) @ path pose in base_link @ T_base_cam
        T_step = np.eye(4)
        T_step[0, 3] = 0.05 * view.path_index
        expected = T_map_base @ T_step @ run.T_base_cam
        np.testing.assert_allclose(convert.pose_to_matrix(view.camera_pose), expected, atol=1e-5)


def test_bad_paths_are_ignored_with_a_warning_and_predicting_goes_on(run):
    line = np.stack([np.linspace(0, 2, 5), np.zeros(5), np.zeros(5)], axis=1)
    cases = []
    for value in (np.nan, np.inf, -np.inf):
        bad = line.copy()
        bad[2, 1] = value
        cases.append(("path ignored: path: pose 2 of 5 has a non-finite position", _path_msg(bad)))
    cases.append(("path ignored: path: pose 1 at .* beyond max_coordinate", _path_msg(line * 5e11)))  # to 1e12 m
    cases.append(("path of 501 poses ignored: more than path_max_poses=500", _path_msg(np.zeros((501, 3)))))
    cases.append(("path in 'nowhere' ignored: not in world_frame 'map' and TF", _path_msg(line, frame_id="nowhere")))
    for cause, msg in cases:  # each answered by a warning of its own (warnings of one cause: one per 2 s)
        seen = len(re.findall(cause, run.node.output()))
        for _ in range(3):
            run.path.publish(msg)
            if run.rec.spin_until(lambda: len(re.findall(cause, run.node.output())) > seen, timeout=2.5):
                break
        assert len(re.findall(cause, run.node.output())) > seen, (cause, run.node.output())
    # NaN orientations are unset (they follow the path): views come, with finite poses
    quats = np.full((5, 4), np.nan)
    views = len(run.path_views)
    run.path.publish(_path_msg(run.sim.T_map_base(run.sent[-1])[:3, 3] + line, quats))
    assert run.rec.spin_until(lambda: len(run.path_views) >= views + 4, timeout=10), run.node.output()
    assert all(np.isfinite(convert.pose_to_matrix(v.msg.camera_pose)).all() for v in run.path_views[views:])
    values = run.fresh_diag()
    assert run.node.running() and values["callback_errors"] == "0", values


def test_implausible_stamps_and_poses_never_reset_the_memory(run):
    frame, t0 = run.frames[0], run.sent[-1] + 25.0  # after the stamps of earlier tests
    pose = run.sim.T_map_base(0.0)
    far = pose.copy()
    far[0, 3] = 1e30
    _expect(run, "frame {t} skipped: no camera pose: camera pose: translation .* beyond max_coordinate", [t0, t0 + 0.01, t0 + 0.02],
            lambda t: run.feed.publish(frame.rgb, frame.depth, frame.K, t, far))
    ahead = time.time() + 3 * 3600  # the node's clock is the wall clock here
    _expect(run, "frame {t} skipped: header.stamp: 10[0-9.]+ s ahead of the node's clock",
            [ahead, ahead + 0.01, ahead + 0.02], lambda t: run.feed.publish(frame.rgb, frame.depth, frame.K, t, pose))
    observed = int(run.fresh_diag()["memory_frames_observed"])
    assert observed > 0
    resets = len(re.findall("resetting the memory", run.node.output()))
    # one frame stamped 3 h after the others (still behind the clock), then the camera goes on
    for t in (t0 + 0.2, t0 + 0.4 + 3 * 3600, t0 + 0.6, t0 + 0.8, t0 + 1.0, t0 + 1.2):
        run.feed.publish(frame.rgb, frame.depth, frame.K, t, pose)
        run.rec.spin_for(0.3)
    run.rec.spin_for(1.0)
    assert len(re.findall("resetting the memory", run.node.output())) == resets, run.node.output()
    assert int(run.fresh_diag()["memory_frames_observed"]) >= observed


def test_time_jump_back_resets_the_memory(run):
    frame, sent = run.frames[0], []

    def publish(t):
        sent.append(t)
        run.feed.publish(frame.rgb, frame.depth, frame.K, t, run.sim.T_map_base(0.0))

    # a memory of more frames than this test sends after the jump (earlier tests may have reset it)
    start, before = run.sent[-1] + 40.0, int(run.fresh_diag()["memory_frames_observed"])
    for k in range(16):
        if before > 6:
            break
        publish(start + 0.2 * k)
        run.rec.spin_for(0.3)
        before = int(run.fresh_diag()["memory_frames_observed"])
    sent.clear()
    count = len(run.views)
    reset = re.compile("time jumped back .* confirmed by 3 frame.*resetting the memory")
    for k in range(8):  # bag loop: t back to 0; reset once time_jump_frames (3) frames in order confirm it
        publish(0.01 * k)
        if run.rec.spin_until(lambda: reset.search(run.node.output()), timeout=2):
            break
    run.node.wait_for_output(reset.pattern, timeout=5)
    run.node.wait_for_output("skipped: .* behind the last frame; the memory is reset if 2 more frame", timeout=1)
    for t in (0.1, 0.2, 0.3):  # the next frames of the new loop are integrated (with tf2_ros the first may not)
        publish(t)
        run.rec.spin_for(0.3)
    assert run.rec.spin_until(lambda: any(_stamp(v.msg) < 1.5 for v in run.views[count:]), timeout=15)
    # the memory holds at most the frames of the new loop (a slow warning means more than one jumped back)
    assert before > len(sent), "too few frames before the jump for this test to tell a reset"
    assert 1 <= int(run.fresh_diag()["memory_frames_observed"]) <= len(sent)


@pytest.mark.usefixtures("interfaces")
def test_odometry_pose_source_with_camera_offset(ros_process):
    """Poses from nav_msgs/Odometry + the camera_offset parameter, no TF at all; the camera sends
    image_transport's compressed copies (``image_transport: compressed``)."""
    from nav_msgs.msg import Odometry
    from transforms3d.euler import mat2euler

    sim = Simulator(SimConfig(width=SIZE[0], height=SIZE[1], actors=False))
    frames = list(sim.frames(30))
    T_base_cam = invert_pose(sim.T_map_base(0.0)) @ frames[0].T_world_cam
    offset = [*T_base_cam[:3, 3], *mat2euler(T_base_cam[:3, :3], "sxyz")]
    # Topics of its own: the module's `run` world model (TF poses) is still up on /mirage and
    # /camera; fed these frames, it published views of them at its own poses into this test.
    node = ros_process(module="mirage_ros.ros.world_model", env=large_message_env(), args=[
        "--ros-args", "-r", "__ns:=/mirage_odom", "-r", "image:=/odom_camera/color/image_raw",
        "-r", "depth:=/odom_camera/depth/image_raw", "-r", "camera_info:=/odom_camera/color/camera_info",
        "-r", "pose:=/odom", "-p", "pose_source:=odometry", "-p", f"camera_offset:={json.dumps(offset)}",
        "-p", "image_transport:=compressed",
        "-p", "use_moving_mask:=false", "-p", "provider:=cpu", "-p", "horizons:=[0.5]",
        "-p", "subcell_placement:=enabled"])  # renders through the placement graph too
    with Recorder("test_odometry") as rec:
        rendered = rec.record("/mirage_odom/rendered/view", PredictedView)
        feed = CameraFeed(rec, T_base_cam, prefix="/odom_camera", transport="compressed")
        odom = rec.publisher("/odom", Odometry, 50)
        node.wait_for_output("world model ready.*sub-cell placement on", timeout=60)
        assert feed.wait_for_subscribers(timeout=60, tf=False) and rec.wait_for_subscribers(odom, timeout=30)
        # until 6 views came back: on a loaded machine the node's readers may match the camera's
        # best-effort writers later than the writers see them, and the first frames are lost
        for frame in frames:
            if len(rendered) >= 6:
                break
            msg = Odometry()
            msg.header.stamp, msg.header.frame_id, msg.child_frame_id = convert.sec_to_time(frame.stamp), "map", "base_link"
            msg.pose.pose = convert.matrix_to_pose(sim.T_map_base(frame.stamp))
            odom.publish(msg)
            feed.publish(frame.rgb, frame.depth, frame.K, frame.stamp, None)
            rec.spin_for(0.3)
        assert rec.spin_until(lambda: len(rendered) >= 6, timeout=15), node.output()
    truth = {round(f.stamp, 6): f.T_world_cam for f in frames}
    for item in rendered:
        np.testing.assert_allclose(convert.pose_to_matrix(item.msg.camera_pose), truth[round(_stamp(item.msg), 6)],
                                   atol=1e-5)


def test_memory_parameters_reach_the_engine():
    from mirage_ros.pipeline import build_world_model

    model = build_world_model("cpu", "", capacity_points=4000, carve=False, newest_overlay=False,
                        see_through_fill=True, readout_min_count=3, subcell_placement="enabled")
    assert model.memory_config.capacity_points == 4000 and not model.memory_config.carve
    assert model.memory_config.readout_min_count == 3
    assert not model.newest_overlay and model.see_through_fill and model.networks.subcell_placement
    assert model.memory.stats()["capacity"] <= 4000
    default = build_world_model("cpu")
    assert default.memory_config.carve and default.newest_overlay and not default.see_through_fill
    assert not default.networks.subcell_placement  # the shipped networks were trained without it
    assert default.memory_config.max_weight == default.networks.memory_settings.get("max_weight", 20.0)
