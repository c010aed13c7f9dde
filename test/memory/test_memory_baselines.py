"""Baselines (RGB point cloud, last-frame warp) and the benchmark scripts end to end (tiny runs)."""

import argparse
import json

import numpy as np
import pytest
from helpers.scene import box_room_depth, look_at

from mirage_ros import geometry as g
from mirage_ros.bench.latency import bench_encoder
from mirage_ros.cli import main as cli_main
from mirage_ros.memory import MemoryConfig
from mirage_ros.memory.baselines import POINT_BYTES, RGBPointCloudMemory
from mirage_ros.memory.last_frame import LastFrameWarp
from mirage_ros.runtime.networks import WEIGHTS_DIR, Networks
from mirage_ros.runtime.session import BoundSession

K = g.Intrinsics(48.0, 48.0, 31.5, 23.5, 64, 48)


def frame(seed, T):
    rgb = np.random.default_rng(seed).integers(0, 256, (*K.shape, 3), dtype=np.uint8)
    return rgb, box_room_depth(K, T)


def test_rgb_cloud_renders_its_frame_back_and_grows_with_frames():
    cloud = RGBPointCloudMemory("cpu")
    T = look_at([0, 0, 0], [3, 0.5, -0.2])
    rgb, depth = frame(0, T)
    mask = np.zeros(K.shape, bool)
    mask[:10, :10] = True
    cloud.insert(rgb, depth, K, T, dynamic_mask=mask)
    assert cloud.points == K.width * K.height - 100 and cloud.bytes == cloud.points * POINT_BYTES
    picture, covered = cloud.render(T, K)
    assert covered.sum() == cloud.points and not covered[:10, :10].any()
    np.testing.assert_array_equal(picture[covered], rgb[covered])
    cloud.insert(rgb, depth, K, T)  # the same view again: a point cloud duplicates it
    assert cloud.points == 2 * K.width * K.height - 100
    out = cloud.read_out(T, K, encode=lambda image: image.transpose(2, 0, 1)[:, ::8, ::8].astype(np.float32), stride=8)
    assert out.latent.shape == (3, 6, 8) and out.valid.all()


def test_empty_rgb_cloud_covers_nothing():
    cloud = RGBPointCloudMemory("cpu")
    T = look_at([0, 0, 0], [3, 0.5, -0.2])
    rgb, depth = frame(0, T)
    cloud.insert(rgb, np.zeros_like(depth), K, T)  # no valid depth: nothing to store
    assert cloud.points == 0
    picture, covered = cloud.render(T, K)
    assert not covered.any() and not picture.any()
    cloud.insert(rgb, depth, K, T)  # the rasteriser's buffers still work once points arrive
    assert cloud.render(T, K)[1].sum() == K.width * K.height


def test_rgb_cloud_keep_one_frame_is_a_last_frame_warp():
    cloud = RGBPointCloudMemory("cpu", keep_frames=1)
    T = look_at([0, 0, 0], [3, 0.5, -0.2])
    for seed in range(3):
        rgb, depth = frame(seed, T)
        cloud.insert(rgb, depth, K, T)
    assert cloud.points == K.width * K.height
    np.testing.assert_array_equal(cloud.render(T, K)[0], rgb)
    with pytest.raises(ValueError, match="keep_frames"):
        RGBPointCloudMemory("cpu", keep_frames=0)


def test_rgb_cloud_newest_frame_wins_ties_across_blocks():
    cloud = RGBPointCloudMemory("cpu", block_points=1000)  # a frame spans four blocks
    T = look_at([0, 0, 0], [3, 0.5, -0.2])
    for seed in range(25):
        rgb, depth = frame(seed, T)
        cloud.insert(rgb, depth, K, T)
    assert cloud.points == 25 * K.width * K.height
    picture, covered = cloud.render(T, K)  # equal depths: the newest frame wins
    assert covered.all() and len(cloud._blocks) == 77
    np.testing.assert_array_equal(picture, rgb)


def test_rgb_cloud_in_blocks_renders_exactly_as_in_one():
    """Blocks of 1000 points z-buffered one after the other give the same picture, coverage and
    depth as one run over the whole cloud, with all frames kept and with the last two."""
    whole, blocked = RGBPointCloudMemory("cpu"), RGBPointCloudMemory("cpu", block_points=1000)
    last_whole, last_blocked = (RGBPointCloudMemory("cpu", keep_frames=2, block_points=n) for n in (None, 1000))
    T = look_at([0, 0, 0], [3, 0.5, -0.2])
    for seed in range(6):
        moved = look_at([0.1 * seed, 0.05 * seed, 0], [3, 0.5 - 0.1 * seed, -0.2])
        for cloud in (whole, blocked, last_whole, last_blocked):
            cloud.insert(*frame(seed, T), K, T)
            cloud.insert(*frame(100 + seed, moved), K, moved)
    assert blocked.points == whole.points == 12 * K.width * K.height
    assert last_blocked.points == last_whole.points == 2 * K.width * K.height
    for pose in (T, look_at([0.2, -0.1, 0.1], [2, 1, 0.3]), look_at([0.3, 0, 0], [3, -1, -0.5])):
        for one, blocks in ((whole, blocked), (last_whole, last_blocked)):
            expected = {name: BoundSession.to_host(buffer) for name, buffer in one.render_device(pose, K).items()}
            for name, buffer in blocks.render_device(pose, K).items():
                np.testing.assert_array_equal(BoundSession.to_host(buffer), expected[name], err_msg=name)
    assert len(blocked._blocks) == 37 and len(last_blocked._blocks) == 7 and len(whole._blocks) == 1


def test_last_frame_warp_forgets_earlier_frames():
    warp = LastFrameWarp(MemoryConfig(channels=2, capacity_points=800, voxel_size=0.02), "cpu")
    T_a, T_b = look_at([0, 0, 0], [3, 0, 0]), look_at([0, 0, 0], [-3, 0, 0])
    warp.insert(np.ones((2, 6, 8), np.float32), box_room_depth(K, T_a), K, T_a, 0.0)
    warp.insert(np.ones((2, 6, 8), np.float32), box_room_depth(K, T_b), K, T_b, 1.0)
    assert not warp.read_out(T_a, K).valid.any() and warp.read_out(T_b, K).valid.all()


@pytest.mark.parametrize("argv", [
    ["bench", "latency", "--provider", "cpu", "--width", "64", "--height", "48", "--frames", "8", "--warmup", "2",
     "--views", "2", "--repeats", "1", "--capacity", "4000", "--channels", "4", "--check-cpu", "--json"],
    ["bench", "memory", "--provider", "cpu", "--width", "64", "--height", "48", "--frames", "12", "--every", "4",
     "--capacity", "4000", "--json"],
    ["bench", "latency", "--provider", "cpu", "--width", "64", "--height", "48", "--frames", "4", "--warmup", "1",
     "--views", "1", "--repeats", "1", "--capacity", "4000", "--json"],
])
def test_bench_scripts_print_json(argv, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the stand-in encoder is written under runs/bench/
    assert cli_main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    network = json.loads((WEIGHTS_DIR / "manifest.json").read_text())["network"]
    assert result["ratio"] > 0 and result["stride"] == network["stride"]
    if "--channels" in argv:  # not the shipped network's: the stand-in, and the output says so
        assert result["channels"] == 4 and result["encoder"].startswith("stand-in")
    else:
        assert result["channels"] == network["channels"] and result["encoder"].startswith("shipped")
    if "--check-cpu" in argv:
        assert result["cpu_parity"]["slots_differing"] == 0 and result["update_ms"]["n"] == 6
    elif argv[1] == "memory":
        assert result["rgb_bytes"] == result["rgb_points"] * POINT_BYTES and len(result["series"]) == 3
        assert result["ratio"] > 1  # 12 frames of pixels vs fused voxels


def test_bench_reencode_is_the_shipped_encoder():
    """The benchmarks' device re-encode (a (3, H, W) raster bound as (1, 3, H, W)) gives
    Networks.encode's latent for the shipped stride/channels."""
    args = argparse.Namespace(stride=None, channels=None, provider="cpu")
    encoder = bench_encoder(args)
    rgb = np.random.default_rng(0).integers(0, 256, (48, 64, 3), np.uint8)
    raster = encoder.bound.upload(rgb.transpose(2, 0, 1).astype(np.float32) / np.float32(255))
    device = BoundSession.to_host(encoder.run_device(raster))[0]
    expected = Networks.load(provider="cpu").encode(rgb)
    assert device.shape == expected.shape == (args.channels, 48 // args.stride, 64 // args.stride)
    np.testing.assert_allclose(device, expected, atol=1e-5)
    np.testing.assert_allclose(encoder(rgb), expected, atol=1e-5)


def test_bench_pipeline_times_both_overlay_settings_and_path_views(capsys):
    argv = ["bench", "pipeline", "--provider", "cpu", "--width", "64", "--height", "48", "--frames", "14",
            "--views", "3", "--warmup", "2", "--json"]
    assert cli_main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    for setting in ("overlay_on", "overlay_off"):
        assert result[setting]["observe_ms"]["n"] == 12 and result[setting]["predict_ms"]["median"] > 0
    assert result["ratio_overlay_on_vs_off"] > 0
    views = result["views"]
    assert views["k"] == 3 and views["batch_ms_per_view"]["n"] == 10 and views["ratio_batch_vs_single"] > 0
    for calls in ("single_stages_ms", "batch_stages_ms"):  # warm-up calls left out of the means
        assert set(views[calls]) == {"read_out", "render"} and min(views[calls].values()) > 0
    assert cli_main(argv[:-3] + ["--warmup", "14", "--json"]) == 2
    assert "--frames" in capsys.readouterr().err
    assert cli_main(argv[:-1] + ["--views", "0", "--json"]) == 2
    assert "--views" in capsys.readouterr().err


def test_rgb_cloud_fills_splat_gaps_up_to_fill_px_before_re_encoding():
    T = look_at([0, 0, 0], [3, 0.5, -0.2])
    rgb, depth = frame(0, T)
    gaps = np.zeros(K.shape, bool)
    gaps[::3, ::3] = True  # one-pixel holes, as a cloud seen from closer leaves them
    gaps[:, 40:] = True  # and a wide one, past any fill radius
    seen = {}

    def encode(image):
        seen["image"] = image
        return image.transpose(2, 0, 1)[:, ::4, ::4].astype(np.float32)

    for fill_px in (0.0, 1.5):
        cloud = RGBPointCloudMemory("cpu", fill_px=fill_px)
        cloud.insert(rgb, depth, K, T, dynamic_mask=gaps)
        out = cloud.read_out(T, K, encode, stride=4)
        image, covered = seen["image"], cloud.render(T, K)[1]
        if fill_px == 0:
            assert not image[gaps].any() and not covered[gaps].any()
            continue
        small = gaps.copy()
        small[:, 40:] = False
        rows, cols = np.nonzero(small)
        # each one-pixel hole takes a neighbouring pixel's colour and depth; the wide hole stays empty
        neighbours = np.stack([rgb[rows + dr, cols + dc] for dr, dc in ((0, 1), (1, 0), (0, -1), (-1, 0))
                               if (rows + dr).max() < K.height and (cols + dc).max() < K.width])
        assert (neighbours == image[rows, cols][None]).all(axis=-1).any(axis=0).all()
        assert not image[:, 42:].any() and image[:, :40].all(axis=-1).mean() > 0.95
        assert out.valid[:, :10].all() and not out.valid[:, 11:].any() and (out.depth[:, :10] > 0).all()
    with pytest.raises(ValueError, match="fill_px"):
        RGBPointCloudMemory("cpu", fill_px=-1)
