"""`mirage-ros eval` end to end: a simulator bag scores exactly like the same frames in memory;
a TUM folder made from the simulator evaluates; bad inputs fail in one line with nothing written.

The networks are randomly initialised tiny ones exported like the shipped weights (the property
tested, bag path == in-memory path, holds for any weights, and tiny ones keep the test fast).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from helpers.recordings import synthetic_frames, write_bag, write_tum

from mirage_ros.cli import main as cli_main
from mirage_ros.errors import InvalidInput
from mirage_ros.evaluation import replay
from mirage_ros.evaluation.methods import METHOD_NAMES, build_methods
from mirage_ros.evaluation.recordings import open_recording
from mirage_ros.evaluation.replay import MovingMasks
from mirage_ros.evaluation.scoring import ScoreConfig, score_sequence
from mirage_ros.sim import SimConfig, Simulator
from mirage_ros.sim.bag import record_bag

SIM = SimConfig(scene="corridor", seed=3, width=160, height=120, rate_hz=2.0, path="forward", speed=4.0)
FRAMES = 40  # 20 s: down the corridor and back to the start, facing forward again (revisits)
CAPACITY = 20_000  # read-out cost follows capacity: small keeps the test fast
FAST = ("--query-every", 1.0, "--capacity-points", CAPACITY)


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    import torch

    from mirage_ros.model.export import export_networks
    from mirage_ros.model.networks import Encoder, NetworkConfig, Renderer

    cfg = NetworkConfig(stride=8, channels=6, width=8, renderer_levels=1)
    out = tmp_path_factory.mktemp("weights")
    torch.manual_seed(0)
    entries = export_networks(Encoder(cfg), Renderer(cfg), cfg.stride, cfg.channels, out)
    (out / "manifest.json").write_text(json.dumps({"network": {"stride": cfg.stride, "channels": cfg.channels},
                                                   **entries}))
    return out


@pytest.fixture(scope="module")
def sim_bag(tmp_path_factory) -> Path:
    return record_bag(Simulator(SIM), tmp_path_factory.mktemp("bag") / "run.mcap", FRAMES, progress=False)


def run_cli(*argv) -> int:
    return cli_main(["eval", *map(str, argv), *map(str, FAST), "--no-progress", "--provider", "cpu"])


def in_memory_scores(frames, weights: Path, stamps, dynamics: str = "detector") -> list[dict]:
    """The same frames straight from the simulator, with the stamps the recording carries."""
    frames = [replace(f, stamp=float(t)) for f, t in zip(frames, stamps)]
    methods = build_methods(METHOD_NAMES, "cpu", weights_dir=weights, capacity_points=CAPACITY)
    result = score_sequence(frames, np.array(stamps), np.array([f.T_world_cam for f in frames]), methods,
                            ScoreConfig(query_every=1.0), dynamic_mask=MovingMasks(dynamics, methods[0], len(frames)))
    return result.scores_as_dicts()


def comparable(scores: list[dict]) -> list[tuple]:
    keys = ("kind", "method", "horizon", "anchor_stamp", "target_stamp")
    return sorted((tuple(round(s[k], 6) if isinstance(s[k], float) else s[k] for k in keys), s) for s in scores)


def test_bag_from_the_simulator_scores_like_the_frames_in_memory(sim_bag, weights, tmp_path):
    out = tmp_path / "report"
    assert run_cli(sim_bag, "--out", out, "--weights", weights) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["recording"]["frames"] == FRAMES and report["frames_replayed"] == FRAMES
    assert report["planned"]["revisit"] >= 2 and report["planned"]["future"] >= 3 * 5
    assert report["recording"]["details"]["topics"]["mask"] == "/camera/motion_mask"
    assert report["dynamics"]["source"] == "detector" and report["dynamics"]["frames"] == FRAMES
    assert {"report.md", "report.html", "figures"} <= {p.name for p in out.iterdir()}
    figures = {Path(f).name for f in report["figures"]}
    assert {"psnr_over_time.png", "memory_over_time.png", "latency_histogram.png", "moving_mask_overlay.png",
            "example_3_revisit.png"} <= figures and all((out / "figures" / f).stat().st_size for f in figures)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]  # no staging left behind

    stamps = open_recording(sim_bag).stamps
    expected = in_memory_scores(list(Simulator(SIM).frames(FRAMES)), weights, stamps)
    got, want = comparable(report["scores"]), comparable(expected)
    assert [k for k, _ in got] == [k for k, _ in want]
    for (_, a), (_, b) in zip(got, want):
        for key in ("psnr", "ssim", "psnr_covered", "ssim_covered", "coverage"):
            if b[key] is None or not np.isfinite(b[key]):
                assert a[key] is None
            else:
                assert a[key] == pytest.approx(b[key], abs=1e-6), (key, a)
    rows = {r["method"]: r for r in report["summary"]}
    assert set(rows) == set(METHOD_NAMES)
    assert all(np.isfinite(rows[m]["future@1s.psnr"]) for m in rows)
    assert "| latent_memory |" in (out / "report.md").read_text()


def test_tum_folder_made_by_the_simulator_evaluates(weights, tmp_path):
    sim_frames = list(Simulator(SIM).frames(12))
    folder = write_tum(tmp_path / "tum", [(f.stamp, f.rgb, f.depth, f.T_world_cam) for f in sim_frames])
    K = sim_frames[0].K
    out = tmp_path / "report"
    assert run_cli(folder, "--out", out, "--weights", weights, "--dynamics", "off",
                   "--intrinsics", K.fx, K.fy, K.cx, K.cy) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["recording"]["kind"] == "tum" and report["recording"]["frames"] == 12
    assert report["dynamics"]["source"] == "off" and report["summary"][0]["future@1s.n"] >= 4
    # TUM stores depth in 1/5000 m steps and poses as text: close to the frames in memory, not exact
    expected = in_memory_scores(sim_frames, weights, [f.stamp for f in sim_frames], dynamics="off")
    got, want = comparable(report["scores"]), comparable(expected)
    assert [k for k, _ in got] == [k for k, _ in want]
    gaps = np.array([a["psnr"] - b["psnr"] for (_, a), (_, b) in zip(got, want)])
    print("TUM vs in-memory PSNR differences: mean", gaps.mean(), "max", np.abs(gaps).max())
    assert np.abs(gaps).mean() < 0.05 and np.abs(gaps).max() < 0.5


def test_an_existing_report_is_replaced_and_a_failed_run_writes_nothing(sim_bag, weights, tmp_path, capsys):
    out = tmp_path / "report"
    assert run_cli(sim_bag, "--out", out, "--weights", weights, "--max-frames", "8", "--dynamics", "off",
                   "--methods", "latent_memory") == 0
    first = (out / "report.json").read_text()
    assert run_cli(sim_bag, "--out", out, "--weights", tmp_path / "no_weights", "--max-frames", "8") == 2
    assert "no weights manifest" in capsys.readouterr().err
    assert (out / "report.json").read_text() == first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]


def test_a_point_cloud_too_big_for_memory_is_refused_before_replay(sim_bag, weights, tmp_path, capsys, monkeypatch):
    """A machine with 1 MiB free is simulated (the only stand-in in this module: this one has 24 GiB).
    The 40-frame 160x120 bag's cloud may take 40 x 0.33 MiB: refused, the way out named; without
    the point cloud methods the same run goes ahead."""
    monkeypatch.setattr(replay, "available_memory", lambda: 2**20)
    out = tmp_path / "report"
    assert run_cli(sim_bag, "--out", out, "--weights", weights, "--dynamics", "off") == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("mirage-ros eval: error: --methods") and "\n" not in err and not out.exists()
    assert "40 frames" in err and "0.3 MiB a frame" in err and "--max-frames 3" in err
    assert run_cli(sim_bag, "--out", out, "--weights", weights, "--dynamics", "off", "--max-frames", "8",
                   "--methods", "latent_memory", "last_frame_warp") == 0


def test_cloud_fits_check():
    replay.check_cloud_fits(10, 100, 10 * 100 * 18)  # exactly fits
    replay.check_cloud_fits(10**6, 640 * 480, None)  # unknown: not checked
    with pytest.raises(InvalidInput, match="--max-frames 9"):
        replay.check_cloud_fits(10, 100, 10 * 100 * 18 - 1)


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda d: write_bag(d / "bag", synthetic_frames(4), images=False), "--color-topic"),
        (lambda d: write_bag(d / "bag", synthetic_frames(4), color_encoding="yuv422"), "yuv422"),
        (lambda d: write_bag(d / "bag", synthetic_frames(4), poses="none"), "no pose"),
        (lambda d: _truncate(write_bag(d / "bag", synthetic_frames(4))), "unreadable rosbag"),
        (lambda d: (d / "folder").mkdir() or d / "folder", "neither a rosbag"),
    ],
    ids=["no-images", "unknown-encoding", "no-poses", "truncated", "neither"],
)
def test_bad_inputs_exit_2_with_one_line_and_no_report(tmp_path, capsys, make, words):
    source = make(tmp_path)
    out = tmp_path / "report"
    assert run_cli(source, "--out", out) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("mirage-ros eval: error:") and words in err
    assert "\n" not in err and "Traceback" not in err
    assert not out.exists() and not any(p.name.startswith(".report") for p in tmp_path.iterdir())


def _truncate(bag: Path) -> Path:
    data = next(bag.glob("*.mcap"))
    data.write_bytes(data.read_bytes()[: data.stat().st_size * 2 // 3])
    return bag


def test_rgb_frame_warp_is_the_point_cloud_of_the_last_frame_only(weights):
    frames = list(Simulator(SIM).frames(3))
    ours, cloud, pixels = build_methods(("rgb_point_cloud", "rgb_frame_warp"), "cpu", weights_dir=weights,
                                        capacity_points=CAPACITY)
    assert (cloud.name, pixels.name) == ("rgb_point_cloud", "rgb_frame_warp")
    for f in frames:
        cloud.observe(f, None), pixels.observe(f, None)
    valid = [int((f.depth > 0.1).sum()) for f in frames]
    assert pixels.memory_bytes() == 15 * valid[-1] and cloud.memory_bytes() == 15 * sum(valid)
    rgb, covered = pixels.predict(frames[-1].T_world_cam, frames[-1].K)  # at its own pose: all it saw
    assert rgb.shape == frames[-1].rgb.shape and covered.mean() > 0.9


def test_rgb_point_cloud_direct_shows_the_cloud_without_the_networks(weights):
    """At a frame's own pose the direct cloud gives back that frame's pixels (fp16 colour: within a
    grey level) where it saw a surface, and fills the rest from them; the re-encoded cloud, whose
    cloud it reads, goes through the (random, tiny) networks and does not."""
    frame = next(Simulator(SIM).frames(1))
    ours, cloud, direct = build_methods(("rgb_point_cloud", "rgb_point_cloud_direct"), "cpu", weights_dir=weights,
                                        capacity_points=CAPACITY)
    assert direct.name == "rgb_point_cloud_direct"
    cloud.observe(frame, None), direct.observe(frame, None)
    seen = frame.depth > 0.1
    assert direct.source is cloud and cloud.cloud.points == seen.sum() == direct.memory_bytes() // 15
    rgb, covered = direct.predict(frame.T_world_cam, frame.K)
    assert covered.all() and rgb.dtype == np.uint8 and rgb.shape == frame.rgb.shape and (~seen).any()
    assert np.abs(rgb[seen].astype(int) - frame.rgb[seen]).max() <= 1
    rerendered, _ = cloud.predict(frame.T_world_cam, frame.K)
    assert np.abs(rerendered[seen].astype(int) - frame.rgb[seen]).mean() > 10
    alone = build_methods(("rgb_point_cloud_direct",), "cpu", weights_dir=weights, capacity_points=CAPACITY)[1]
    alone.observe(frame, None)  # without rgb_point_cloud it keeps its own cloud
    np.testing.assert_array_equal(alone.predict(frame.T_world_cam, frame.K)[0], rgb)


def test_rgb_frame_warp_direct_is_the_newest_frame_warped_without_networks(weights):
    """The free baseline keeps the newest frame's pixels only, shows them without networks, and
    reads rgb_frame_warp's cloud when both run."""
    first, second = list(Simulator(SIM).frames(2))
    _, warp, direct = build_methods(("rgb_frame_warp", "rgb_frame_warp_direct"), "cpu", weights_dir=weights,
                                    capacity_points=CAPACITY)
    assert direct.name == "rgb_frame_warp_direct" and direct.source is warp
    for frame in (first, second):
        warp.observe(frame, None), direct.observe(frame, None)
    seen = second.depth > 0.1
    assert warp.cloud.points == seen.sum()  # the first frame is gone
    rgb, covered = direct.predict(second.T_world_cam, second.K)
    assert covered.all() and np.abs(rgb[seen].astype(int) - second.rgb[seen]).max() <= 1
    alone = build_methods(("rgb_frame_warp_direct",), "cpu", weights_dir=weights, capacity_points=CAPACITY)[1]
    for frame in (first, second):
        alone.observe(frame, None)
    np.testing.assert_array_equal(alone.predict(second.T_world_cam, second.K)[0], rgb)


def test_eval_of_a_bag_needs_no_ros_install(sim_bag, weights, tmp_path):
    """Reading a bag needs rosbags alone: the eval runs in a process where importing rclpy, or any
    ROS message package, fails (a venv without ROS)."""
    import subprocess
    import sys

    script = f"""
import importlib.abc, sys
ROS = {{"rclpy", "rosidl_runtime_py", "builtin_interfaces", "std_msgs", "sensor_msgs", "geometry_msgs",
       "nav_msgs", "tf2_msgs", "tf2_ros", "diagnostic_msgs", "mirage_ros_msgs", "message_filters", "cv_bridge"}}

class NoRos(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in ROS:
            raise ImportError(f"no ROS install here: {{name}}")

sys.meta_path.insert(0, NoRos())
from mirage_ros.cli import main
code = main(["eval", {str(sim_bag)!r}, "--out", {str(tmp_path / 'report')!r}, "--weights", {str(weights)!r},
             *{[str(a) for a in FAST]!r}, "--no-progress", "--provider", "cpu", "--max-frames", "12"])
print("ROS modules loaded:", sorted(m for m in sys.modules if m.split(".")[0] in ROS))
sys.exit(code)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ROS modules loaded: []" in done.stdout
    assert json.loads((tmp_path / "report" / "report.json").read_text())["frames_replayed"] == 12
