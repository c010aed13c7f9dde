"""The training-time fusion (``memory_data.fuse_in_voxels``) against the runtime memory (ONNX, CPU)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mirage_ros.memory import LatentMemory, MemoryConfig
from mirage_ros.model.memory_data import fuse_in_voxels, lift_cells
from mirage_ros.sim import SimConfig, Simulator


@pytest.mark.parametrize("voxel_size, voxel_per_footprint, max_weight, min_capped",
                         [(0.05, 0.0, 20.0, 0), (0.2, 0.0, 3.0, 20), (0.002, 1.0, 2.0, 5)])
def test_fusion_matches_the_runtime_memory(voxel_size, voxel_per_footprint, max_weight, min_capped):
    stride, channels = 4, 3
    sim = Simulator(SimConfig(scene="office", seed=2001, width=96, height=72, rate_hz=4.0,
                              path="loop", actors=True))
    frames = list(sim.frames(6))
    config = MemoryConfig(channels=channels, stride=stride, capacity_points=100_000,
                          voxel_size=voxel_size, voxel_per_footprint=voxel_per_footprint, max_weight=max_weight)
    memory = LatentMemory(config, provider="cpu")
    rng = np.random.default_rng(0)
    h, w = 72 // stride, 96 // stride
    latents = rng.normal(size=(len(frames), channels, h, w)).astype(np.float32)
    points, ok, depth = [], [], []
    for f, latent in zip(frames, latents):
        memory.insert(latent, f.depth, f.K, f.T_world_cam, f.stamp, f.motion_mask)
        p, o, _, d, _ = lift_cells(f.depth, f.K, f.T_world_cam, stride, f.motion_mask, config)
        points.append(p)
        ok.append(o)
        depth.append(d)
    K_latent = frames[0].K.scaled(stride)
    cells = torch.from_numpy(latents).permute(0, 2, 3, 1).reshape(1, len(frames), h * w, channels)
    sample, position, latent, count = fuse_in_voxels(torch.from_numpy(np.stack(points))[None],
                                              torch.from_numpy(np.stack(ok))[None], cells,
                                              torch.from_numpy(np.stack(depth))[None], config,
                                              1.0 / np.sqrt(K_latent.fx * K_latent.fy))
    stored = memory.points()
    assert (sample == 0).all()
    assert stored["positions"].shape[0] > 100 and (stored["counts"] > max_weight).sum() >= min_capped
    # same voxels: a cell on a voxel face (or a level boundary) may fall on either side in
    # float32 vs the graph's maths
    assert abs(len(position) - len(stored["positions"])) <= 0.01 * len(position)
    dist = np.linalg.norm(position.numpy()[:, None] - stored["positions"][None], axis=2)
    nearest = dist.argmin(axis=1)
    close = dist[np.arange(len(nearest)), nearest] < 1e-4
    assert close.mean() > 0.98
    diff = np.abs(latent.numpy()[close] - stored["latents"][nearest[close]].astype(np.float32))
    assert diff.max() < 5e-3  # float16 storage in the runtime
    assert (count.numpy()[close] == stored["counts"][nearest[close]]).mean() > 0.98  # what min_count tests


def test_fusion_is_per_sample_and_differentiable():
    points = torch.tensor([[[[0.01, 0.0, 1.0], [0.02, 0.0, 1.0], [0.3, 0.0, 1.0]]]]).repeat(2, 2, 1, 1)
    ok = torch.ones(2, 2, 3, dtype=torch.bool)
    ok[1, :, 2] = False
    latents = torch.arange(24, dtype=torch.float32).view(2, 2, 3, 2).requires_grad_()
    fixed = MemoryConfig(channels=2, stride=4, voxel_size=0.1, voxel_per_footprint=0.0, max_weight=20.0)
    depth = torch.ones(2, 2, 3)
    sample, position, fused, count = fuse_in_voxels(points, ok, latents, depth, fixed, cell_angle=0.01)
    assert sample.tolist() == [0, 0, 1] and sorted(count.tolist()[:2]) == [2, 4] and count.tolist()[2] == 4
    # sample 0, voxel of the first two cells: mean over both frames' two cells
    first = latents[0, :, :2].reshape(-1, 2).mean(0)
    assert torch.allclose(fused[0], first) or torch.allclose(fused[1], first)
    fused.sum().backward()
    assert latents.grad[1, :, 2].abs().sum() == 0 and latents.grad[0].abs().sum() > 0


def test_training_read_out_is_the_world_models():
    """``MemoryTargets.read_memory`` (fusion, ``readout_min_count``, the newest frame overlaid
    with its cells without depth at the far depth) against the runtime: ``LatentMemory`` with
    the newest frame's points (``LastFrameWarp``) and ``views.overlay``, as ``WorldModel`` composes
    them, at the newest frame's own pose and at an older frame's."""
    from mirage_ros.memory.last_frame import LastFrameWarp
    from mirage_ros.memory_maths.torch_ops import TorchOps
    from mirage_ros.memory_maths.views import overlay
    from mirage_ros.model.config import MemoryTaskConfig
    from mirage_ros.model.memory_data import MemoryTargets, Sequence, lift_frames
    from mirage_ros.pipeline import hole_depth

    stride, channels = 4, 3
    sim = Simulator(SimConfig(scene="office", seed=2001, width=96, height=72, rate_hz=4.0, path="loop", actors=True))
    frames = list(sim.frames(4))
    frames[-1].depth[8:40, 16:64] = 0.0  # no reading: the runtime puts these cells at the far depth
    task = MemoryTaskConfig(context_frames=len(frames))
    config = MemoryConfig(channels=channels, stride=stride, capacity_points=100_000, voxel_size=task.voxel_size,
                          voxel_per_footprint=task.voxel_per_footprint, max_weight=task.max_weight,
                          readout_min_count=task.readout_min_count)
    memory = LatentMemory(config, provider="cpu")
    newest = LastFrameWarp(config, provider="cpu", memory=memory)
    h, w = 72 // stride, 96 // stride
    latents = np.random.default_rng(1).normal(size=(len(frames), channels, h, w)).astype(np.float32)
    for f, latent in zip(frames, latents):
        memory.insert(latent, f.depth, f.K, f.T_world_cam, f.stamp, f.motion_mask, hole_depth=hole_depth(f.depth, config))
    sequence = Sequence.from_arrays({**lift_frames(frames, stride, config), "rate_hz": 4.0}, torch.device("cpu"))
    targets = MemoryTargets(task, [sequence], [], frames[0].K, stride, "test", torch.device("cpu"))
    context = np.arange(len(frames))
    picks = [(0, 3, 0, context), (0, 1, 0, context)]
    batch = targets._batch([sequence], picks, None)
    trained = targets.read_memory(batch, torch.from_numpy(latents)[None].repeat(2, 1, 1, 1, 1))
    xp = TorchOps(torch.device("cpu"))
    holes = 0
    for j, (_, t, _, _) in enumerate(picks):
        pose, K = frames[t].T_world_cam, frames[t].K
        runtime = [memory.read_out(pose, K), newest.read_out(pose, K)]
        runtime = [[torch.from_numpy(np.asarray(getattr(r, name)))[None] for name in ("latent", "valid", "depth", "offset")]
                   for r in runtime]
        latent, valid, depth, _ = overlay(xp, *runtime)
        same = trained[1][j, 0].bool() == valid[0]
        assert same.float().mean() > 0.98, t
        both = (trained[1][j, 0].bool() & valid[0]).numpy()
        assert np.abs(trained[2][j, 0].numpy() - depth[0].numpy())[both].max() < 1e-3
        close = np.abs(trained[0][j].numpy() - latent[0].numpy()).max(axis=0)[both] < 5e-3  # float16 in the runtime
        assert close.mean() > 0.98, t
        holes += int((trained[2][j, 0].numpy()[8 // stride: 40 // stride, 16 // stride: 64 // stride]
                      > 0.9 * hole_depth(frames[-1].depth, config)).sum())
    assert holes > 20  # the hole's cells are drawn, at the far depth, in both views
