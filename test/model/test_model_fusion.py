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
        p, o, d = lift_cells(f.depth, f.K, f.T_world_cam, stride, f.motion_mask, config)
        points.append(p)
        ok.append(o)
        depth.append(d)
    K_latent = frames[0].K.scaled(stride)
    cells = torch.from_numpy(latents).permute(0, 2, 3, 1).reshape(1, len(frames), h * w, channels)
    sample, position, latent = fuse_in_voxels(torch.from_numpy(np.stack(points))[None],
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


def test_fusion_is_per_sample_and_differentiable():
    points = torch.tensor([[[[0.01, 0.0, 1.0], [0.02, 0.0, 1.0], [0.3, 0.0, 1.0]]]]).repeat(2, 2, 1, 1)
    ok = torch.ones(2, 2, 3, dtype=torch.bool)
    ok[1, :, 2] = False
    latents = torch.arange(24, dtype=torch.float32).view(2, 2, 3, 2).requires_grad_()
    fixed = MemoryConfig(channels=2, stride=4, voxel_size=0.1, voxel_per_footprint=0.0, max_weight=20.0)
    depth = torch.ones(2, 2, 3)
    sample, position, fused = fuse_in_voxels(points, ok, latents, depth, fixed, cell_angle=0.01)
    assert sample.tolist() == [0, 0, 1]
    # sample 0, voxel of the first two cells: mean over both frames' two cells
    first = latents[0, :, :2].reshape(-1, 2).mean(0)
    assert torch.allclose(fused[0], first) or torch.allclose(fused[1], first)
    fused.sum().backward()
    assert latents.grad[1, :, 2].abs().sum() == 0 and latents.grad[0].abs().sum() > 0
