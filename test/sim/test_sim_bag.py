"""`mirage-ros sim record|preview`: bags read back by rosbags, re-projection through the written
intrinsics and TF chain lands on the scene, atomic writes, clear errors."""

import os

import numpy as np
import pytest
from rosbags.highlevel import AnyReader

from mirage_ros.cli import main
from mirage_ros.geometry import backproject, compose, pose_from_tq, transform_points
from mirage_ros.sim import SimConfig, Simulator
from mirage_ros.sim.bag import STAMP_OFFSET, TOPICS, record_bag

ARGS = ["--scene", "corridor", "--seed", "3", "--width", "64", "--height", "48", "--rate", "5"]
FRAMES = 8


def _read(path):
    out = {}
    with AnyReader([path]) as reader:
        types = {c.topic: c.msgtype for c in reader.connections}
        for conn, stamp, raw in reader.messages():
            out.setdefault(conn.topic, []).append((stamp, reader.deserialize(raw, conn.msgtype)))
    return types, out


def _T(transform) -> np.ndarray:
    t, q = transform.translation, transform.rotation
    return pose_from_tq(np.array([t.x, t.y, t.z]), np.array([q.w, q.x, q.y, q.z]))


@pytest.fixture(scope="module")
def mcap_bag(tmp_path_factory):
    out = tmp_path_factory.mktemp("bags") / "run.mcap"
    assert main(["sim", "record", *ARGS, "--frames", str(FRAMES), "--out", str(out), "--quiet"]) == 0
    return out.with_suffix("")


def test_bag_topics_types_counts_and_stamps(mcap_bag):
    assert sorted(os.listdir(mcap_bag)) == ["metadata.yaml", "run.mcap"]
    types, msgs = _read(mcap_bag)
    assert types == {topic: msgtype for topic, msgtype in TOPICS.values()}
    expected = [int(round((STAMP_OFFSET + i / 5.0) * 1e9)) for i in range(FRAMES)]
    for topic, _ in TOPICS.values():
        if topic == "/tf_static":
            assert len(msgs[topic]) == 1
            continue
        stamps = [s for s, _ in msgs[topic]]
        assert stamps == expected, topic
        if topic != "/tf":
            header = [m.header.stamp.sec * 10**9 + m.header.stamp.nanosec for _, m in msgs[topic]]
            assert header == expected, topic
    color = msgs["/camera/color/image_raw"][0][1]
    depth = msgs["/camera/depth/image_raw"][0][1]
    assert (color.encoding, color.width, color.height, color.step) == ("rgb8", 64, 48, 192)
    assert (depth.encoding, depth.step, depth.header.frame_id) == ("32FC1", 256, "camera_optical_frame")
    assert msgs["/camera/motion_mask"][0][1].encoding == "mono8"
    static = {(t.header.frame_id, t.child_frame_id) for t in msgs["/tf_static"][0][1].transforms}
    assert static == {("map", "odom"), ("base_link", "camera_link"), ("camera_link", "camera_optical_frame")}
    assert [(t.header.frame_id, t.child_frame_id) for t in msgs["/tf"][0][1].transforms] == [("odom", "base_link")]


def test_depth_pixels_reproject_through_intrinsics_and_tf_onto_the_scene(mcap_bag):
    _, msgs = _read(mcap_bag)
    static = {t.child_frame_id: _T(t.transform) for t in msgs["/tf_static"][0][1].transforms}
    sim = Simulator(SimConfig(scene="corridor", seed=3, width=64, height=48, rate_hz=5.0))
    from mirage_ros.geometry import Intrinsics

    for k in (0, FRAMES - 1):
        info = msgs["/camera/depth/camera_info"][k][1]
        K = Intrinsics(info.k[0], info.k[4], info.k[2], info.k[5], info.width, info.height)
        img = msgs["/camera/depth/image_raw"][k][1]
        depth = np.frombuffer(img.data.tobytes(), np.float32).reshape(img.height, img.width)
        odom_base = _T(msgs["/tf"][k][1].transforms[0].transform)
        T_map_cam = compose(static["odom"], odom_base, static["camera_link"], static["camera_optical_frame"])
        t = k / 5.0
        assert np.allclose(T_map_cam, sim.pose_at(t), atol=1e-6)
        points = backproject(depth, K).reshape(-1, 3)[depth.ravel() > 0]
        world = transform_points(T_map_cam, points)
        bodies, _ = sim.walkers.prisms(t)
        distance = sim.scene.surface_distance(world, bodies)
        assert np.percentile(distance, 99) < 0.01 and len(world) > 0.5 * depth.size
        # and a wrong pose would not fit the scene (the check can fail)
        shifted = transform_points(T_map_cam, points + [0.3, 0.0, 0.0])
        assert np.median(sim.scene.surface_distance(shifted, bodies)) > 0.05


def test_sqlite3_storage_from_the_suffix(tmp_path):
    out = tmp_path / "run.db3"
    assert main(["sim", "record", *ARGS, "--frames", "3", "--out", str(out), "--quiet"]) == 0
    assert sorted(os.listdir(tmp_path / "run")) == ["metadata.yaml", "run.db3"]
    types, msgs = _read(tmp_path / "run")
    assert len(msgs["/camera/color/image_raw"]) == 3 and types["/odom"] == "nav_msgs/msg/Odometry"


def test_a_failed_recording_leaves_nothing(tmp_path, monkeypatch):
    sim = Simulator(SimConfig(width=32, height=24))
    original = sim.frame_at

    def failing(index):
        if index == 3:
            raise RuntimeError("disk on fire")
        return original(index)

    monkeypatch.setattr(sim, "frame_at", failing)
    with pytest.raises(RuntimeError, match="disk on fire"):
        record_bag(sim, tmp_path / "run.mcap", 10, progress=False)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--rate", "0"], "--rate"),
        (["--rate", "-2"], "--rate"),
        (["--scene", "castle"], "--scene"),
        (["--width", "0"], "--width"),
        (["--frames", "0"], "--frames"),
        (["--path", "spiral"], "--path"),
        (["--storage", "sqlite3"], "--storage"),
    ],
)
def test_bad_record_options_exit_2_naming_them(tmp_path, capsys, extra, message):
    assert main(["sim", "record", "--out", str(tmp_path / "x.mcap"), "--quiet", *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert os.listdir(tmp_path) == []


def test_unwritable_or_existing_output_is_refused(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert main(["sim", "record", "--out", str(blocker / "run.mcap"), "--quiet"]) == 2
    (tmp_path / "run").mkdir()
    assert main(["sim", "record", "--out", str(tmp_path / "run.mcap"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("--out") == 2 and "exists" in err


def test_preview_writes_a_contact_sheet(tmp_path, capsys):
    out = tmp_path / "sheet.png"
    assert main(["sim", "preview", *ARGS, "--count", "2", "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["sim", "preview", "--out", str(tmp_path / "sheet.jpg")]) == 2
