"""WorldModel on the shipped ONNX networks and the real latent memory (CPU), on simulator frames."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from mirage_ros.errors import InvalidInput
from mirage_ros.evaluation import metrics
from mirage_ros import geometry as g
from mirage_ros.geometry import Intrinsics
from mirage_ros.memory import MemoryConfig, Readout
from mirage_ros.pipeline import WorldModel, memory_config_for
from mirage_ros.runtime.networks import WEIGHTS_DIR, Networks
from mirage_ros.sim import SimConfig, Simulator


@pytest.fixture(scope="module")
def networks():
    return Networks.load(provider="cpu")


@pytest.fixture(scope="module")
def frames():
    sim = Simulator(SimConfig(scene="office", seed=2001, width=160, height=120, rate_hz=4.0,
                              path="loop", actors=False))
    return list(sim.frames(6))


def observed_model(networks, frames) -> WorldModel:
    wm = WorldModel(networks, provider="cpu")
    for f in frames:
        wm.observe(f.rgb, f.depth, f.K, f.T_world_cam, f.stamp, dynamic_mask=f.motion_mask)
    return wm


def test_prediction_at_an_observed_pose_matches_the_frame(networks, frames):
    wm = observed_model(networks, frames)
    empty = WorldModel(networks, provider="cpu")
    last = frames[-1]
    pred = wm.predict(last.T_world_cam, last.K)
    assert pred.rgb.shape == (120, 160, 3) and pred.rgb.dtype == np.uint8
    assert pred.depth.shape == (120, 160) and pred.depth.dtype == np.float32
    assert pred.valid.dtype == bool and pred.valid.mean() > 0.8
    ours = metrics.psnr(pred.rgb, last.rgb)
    blind = metrics.psnr(empty.predict(last.T_world_cam, last.K).rgb, last.rgb)
    assert ours > 20.0 and ours > blind + 5.0, (ours, blind)
    covered = pred.valid & (last.depth > 0)
    rel = np.abs(pred.depth[covered] - last.depth[covered]) / last.depth[covered]
    assert np.median(rel) < 0.05
    stats = wm.stats()
    assert stats["frames_observed"] == len(frames) and stats["points"] > 0
    assert {"encode_ms", "insert_ms", "read_out_ms", "render_ms"} <= set(stats)


def test_ragged_size_reset_and_save_load(networks, frames, tmp_path):
    wm = observed_model(networks, frames[:2])
    K = frames[0].K
    ragged = Intrinsics(K.fx, K.fy, K.cx, K.cy, 158, 118)  # not a multiple of the stride
    pred = wm.predict(frames[1].T_world_cam, ragged)
    s = wm.stride
    assert pred.rgb.shape == (118, 158, 3)
    assert not pred.valid[118 // s * s:].any() and not pred.valid[:, 158 // s * s:].any()
    # the file holds the memory, not the newest frame: after load the memory alone is rendered
    before = wm.networks.render(wm.memory.read_out(frames[1].T_world_cam, K), K.shape)
    path = wm.save(tmp_path / "memory.npz")
    wm.reset()
    assert not wm.predict(frames[1].T_world_cam, K).valid.any()
    wm.load(path)
    np.testing.assert_array_equal(wm.predict(frames[1].T_world_cam, K).rgb, before)


def test_see_through_fill_renders_the_filled_read_out(networks, frames):
    from mirage_ros.memory.see_through import fill_see_through, hidden_cells

    wm = WorldModel(networks, provider="cpu", newest_overlay=False, see_through_fill=True)
    for f in frames:
        wm.observe(f.rgb, f.depth, f.K, f.T_world_cam, f.stamp)
    T, K = frames[0].T_world_cam, frames[0].K
    raw = wm.memory.read_out(T, K)
    assert hidden_cells(raw.valid, raw.depth).any()  # the fill has work here (28 cells when written)
    expected = networks.render(fill_see_through(wm.memory.read_out(T, K)), K.shape)
    np.testing.assert_array_equal(wm.predict(T, K).rgb, expected)


def test_bad_input_names_the_parameter(networks, frames):
    wm = WorldModel(networks, provider="cpu")
    f = frames[0]
    with pytest.raises(InvalidInput, match="rgb"):
        wm.observe(f.rgb[:-8], f.depth, f.K, f.T_world_cam, f.stamp)
    with pytest.raises(InvalidInput, match="T_world_cam"):
        wm.observe(f.rgb, f.depth, f.K, np.eye(3), f.stamp)
    with pytest.raises(InvalidInput, match="memory_config"):
        WorldModel(networks, MemoryConfig(channels=networks.channels + 1, stride=networks.stride),
                   provider="cpu")


def test_memory_runs_with_the_fusion_the_networks_were_trained_on(tmp_path):
    for name in ("encoder.onnx", "renderer.onnx"):
        shutil.copy(WEIGHTS_DIR / name, tmp_path / name)
    manifest = json.loads((WEIGHTS_DIR / "manifest.json").read_text())
    manifest["memory"] = {"voxel_size": 0.04, "max_weight": 3.0}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    networks = Networks.load(tmp_path, provider="cpu")
    config = WorldModel(networks, provider="cpu").memory_config
    # the training voxel is not the runtime's: its voxels follow the camera's cell footprint
    assert (config.voxel_size, config.max_weight) == (MemoryConfig.voxel_size, 3.0)
    assert (config.channels, config.stride) == (networks.channels, networks.stride)
    assert memory_config_for(networks, max_weight=5.0).max_weight == 5.0
    # weights trained with footprint voxels name their policy: the runtime follows all of it
    manifest["memory"] = {"voxel_size": 0.004, "voxel_per_footprint": 0.5, "max_weight": 2.0}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    config = WorldModel(Networks.load(tmp_path, provider="cpu"), provider="cpu").memory_config
    assert (config.voxel_size, config.voxel_per_footprint, config.max_weight) == (0.004, 0.5, 2.0)
    manifest.pop("memory")
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    untold = WorldModel(Networks.load(tmp_path, provider="cpu"), provider="cpu").memory_config
    assert untold.max_weight == MemoryConfig(channels=1).max_weight  # older manifests: defaults


def test_device_path_draws_what_the_host_path_draws(networks, frames):
    """``predict`` keeps data on the networks' device from read-out to 8-bit image; the host path
    (host read-outs, the overlay rule written out in numpy here, ``Networks.render``) gives the
    same images, validity and depth, bit for bit on the CPU provider."""
    wm = observed_model(networks, frames)
    K = frames[0].K
    poses = [frames[-1].T_world_cam, frames[2].T_world_cam,
             frames[-1].T_world_cam @ g.pose_from_tq([0.2, 0.0, 0.3], [1, 0, 0, 0])]
    for pose, pred in zip(poses, wm.predict_views(poses, K, with_readout=True)):
        memory, newest = wm.memory.read_out(pose, K), wm._newest.read_out(pose, K)
        use = newest.valid & (~memory.valid | (newest.depth <= memory.depth * np.float32(1.05)))
        latent = np.where(use[None], newest.latent, memory.latent)
        valid, depth = memory.valid | newest.valid, np.where(use, newest.depth, memory.depth)
        np.testing.assert_array_equal(pred.rgb, networks.render(Readout(latent, valid, depth), K.shape))
        np.testing.assert_array_equal(pred.cell_valid, valid)
        np.testing.assert_array_equal(pred.readout.latent, latent)
        np.testing.assert_array_equal(pred.depth, g.upsample_cells(depth, wm.stride, K.shape))
        assert use.any() and (~use & memory.valid).any()  # both sources drawn
    assert wm.predict(poses[0], K).readout is None  # downloaded only when asked for
    np.testing.assert_array_equal(wm.newest_latent(), networks.encode(frames[-1].rgb))


def test_overlay_follows_the_newest_frame_and_resets(networks, frames):
    plain = WorldModel(networks, provider="cpu", newest_overlay=False)
    wm = observed_model(networks, frames)
    for f in frames:
        plain.observe(f.rgb, f.depth, f.K, f.T_world_cam, f.stamp, dynamic_mask=f.motion_mask)
    last = frames[-1]
    with_overlay = metrics.psnr(wm.predict(last.T_world_cam, last.K).rgb, last.rgb)
    memory_only = plain.predict(last.T_world_cam, last.K)
    assert with_overlay > metrics.psnr(memory_only.rgb, last.rgb)
    wm.reset()
    assert not wm.predict(last.T_world_cam, last.K).valid.any()


def test_depth_holes_fill_the_newest_overlay_only(networks):
    """A real Kinect frame (TUM fr1_rpy clip): a fifth of it has no depth reading. Filled at the
    frame's far depth in the newest-frame overlay, the view at its own pose is drawn from the frame
    everywhere (36.3 dB against 25.0 dB with the holes left to the renderer, when written), and the
    fused memory holds exactly what it held before."""
    from mirage_ros.evaluation.recordings import open_recording
    from mirage_ros.pipeline import hole_depth

    frame = next(iter(open_recording(Path(__file__).parent / "data/rgbd_dataset_freiburg1_rpy_clip").frames()))
    holes = ~(frame.depth > 0)
    assert 0.05 < holes.mean() < 0.5
    far = hole_depth(frame.depth, MemoryConfig(channels=1))
    assert np.percentile(frame.depth[~holes], 90) <= far <= frame.depth[~holes].max()
    assert hole_depth(np.zeros((4, 4), np.float32), MemoryConfig(channels=1)) == 0.0
    assert hole_depth(np.array(["1", "2"]), MemoryConfig(channels=1)) == 0.0  # observe names depth instead
    wm = WorldModel(networks, provider="cpu")
    with pytest.raises(InvalidInput, match="depth"):
        wm.observe(frame.rgb, frame.depth[0], frame.K, frame.T_world_cam, frame.stamp)
    psnr, points = {}, {}
    for fill in (True, False):
        wm = WorldModel(networks, provider="cpu", fill_holes=fill)
        wm.observe(frame.rgb, frame.depth, frame.K, frame.T_world_cam, frame.stamp)
        pred = wm.predict(frame.T_world_cam, frame.K)
        psnr[fill], points[fill] = metrics.psnr(pred.rgb, frame.rgb), wm.stats()["points"]
    assert psnr[True] > psnr[False] + 5.0, psnr
    assert points[True] == points[False]


def test_views_along_a_path_render_like_single_predictions(networks, frames):
    """``predict_views``: one read-out per memory and one renderer call for K poses; the same images."""
    wm = observed_model(networks, frames)
    K = frames[0].K
    poses = [f.T_world_cam for f in frames] + [frames[-1].T_world_cam @ g.pose_from_tq([0.1, 0.0, 0.4], [1, 0, 0, 0])]
    views = wm.predict_views(poses, K)
    assert len(views) == len(poses)
    for pose, view in zip(poses, views):
        single = wm.predict(pose, K)
        np.testing.assert_array_equal(view.valid, single.valid)
        np.testing.assert_array_equal(view.depth, single.depth)
        # one renderer call over a batch vs one per view: the same maths, float rounding apart
        assert np.abs(view.rgb.astype(int) - single.rgb.astype(int)).max() <= 1
    with pytest.raises(InvalidInput, match="poses"):
        wm.predict_views([], K)


def test_graph_batches_beyond_eight_views_are_padded_to_a_power_of_two(networks, frames):
    """With CUDA graphs every batch size is a captured graph per stage: 12 path views render as a
    batch of 16 (the last pose repeated) and come back as 12, the same as single predictions.
    (Exercised on the CPU provider by setting the flag the CUDA path sets.)"""
    from mirage_ros.pipeline import GRAPH_EXACT_VIEWS

    wm = observed_model(networks, frames)
    wm._cuda_graph = True
    K = frames[0].K
    poses = [f.T_world_cam for f in frames] * 2
    assert len(poses) > GRAPH_EXACT_VIEWS
    views = wm.predict_views(poses, K)
    assert len(views) == len(poses)
    assert (16, K.height // wm.stride, K.width // wm.stride) in wm.networks._views._sets
    for pose, view in zip(poses, views):
        assert np.abs(view.rgb.astype(int) - wm.predict(pose, K).rgb.astype(int)).max() <= 1
