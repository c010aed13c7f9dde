"""``LastFrameWarp``: the newest frame as one point per latent cell (the update graph's frame
points, ``memory_maths.update.frame_points``), on ORT CPU against the same maths in torch and
against the host geometry, and read out."""

import numpy as np
import pytest
import torch
from helpers.scene import box_room_depth, look_at

from mirage_ros import geometry as g
from mirage_ros.errors import InvalidInput
from mirage_ros.memory import LatentMemory, MemoryConfig
from mirage_ros.memory.frame_inputs import latent_rays
from mirage_ros.memory.last_frame import LastFrameWarp
from mirage_ros.memory_maths.update import update
from mirage_ros.memory_maths.torch_ops import TorchOps

K = g.Intrinsics(40.0, 40.0, 31.5, 23.5, 64, 48)
CONFIG = MemoryConfig(channels=3, stride=4, capacity_points=800, voxel_size=0.02)
T = look_at([0.2, -0.1, 0.1], [3, 1, -0.3])


def frame(seed=0):
    """A box-room frame with depth holes and a strip of moving pixels."""
    rng = np.random.default_rng(seed)
    depth = box_room_depth(K, T)
    depth[rng.random(depth.shape) < 0.3] = 0.0
    depth[:8, :8] = np.nan  # a whole cell without a reading
    dynamic = np.zeros(K.shape, bool)
    dynamic[20:28, 40:48] = True
    latent = rng.normal(size=(CONFIG.channels, *K.scaled(4).shape)).astype(np.float32)
    return latent, depth, dynamic


def test_points_are_the_cells_lifted_one_each():
    latent, depth, dynamic = frame()
    warp = LastFrameWarp(CONFIG, "cpu")
    warp.insert(latent, depth, K, T, 3.0, dynamic)
    points = warp.points()
    K_latent = K.scaled(4)

    # the same maths in torch
    state = {n: torch.from_numpy(v) for n, v in warp.memory.host_state().items()}
    expected = update(TorchOps(), torch.from_numpy(depth), torch.from_numpy(dynamic), torch.from_numpy(latent),
                      torch.from_numpy(latent_rays(K_latent)), torch.from_numpy(T.astype(np.float32)),
                      torch.from_numpy(warp.memory.config.update_params(0.0, K_latent)), state, 4)
    for name, value in points.items():
        np.testing.assert_allclose(value.astype(np.float64), expected[f"frame_{name}"].numpy().astype(np.float64),
                                   atol=1e-5, err_msg=name)

    # and the host geometry: pooled depth along each cell centre's ray, moving cells left out
    pooled = g.pool_depth(np.where(dynamic, 0.0, depth), 4).reshape(-1)
    moving = g.pool_mask(dynamic, 4).reshape(-1) > 0
    has_point = (pooled > 0) & ~moving
    np.testing.assert_array_equal(points["counts"], has_point.astype(np.int32))
    assert warp.stats() == {"points": has_point.sum(), "bytes": has_point.sum() * (12 + 2 * 3 + 4)}
    assert 0 < has_point.mean() < 1 and np.isnan(points["positions"][~has_point]).all()
    rays = latent_rays(K_latent).reshape(2, -1).T
    p_cam = np.concatenate([rays * pooled[:, None], pooled[:, None]], 1)[has_point]
    np.testing.assert_allclose(points["positions"][has_point], p_cam @ T[:3, :3].T + T[:3, 3], atol=1e-4)
    cells = latent.reshape(CONFIG.channels, -1).T
    np.testing.assert_array_equal(points["latents"][has_point], cells[has_point].astype(np.float16))


def test_every_cell_with_a_reading_comes_back_at_its_own_pose():
    """No voxel hashing: a frame read out where it was taken covers every cell it has a point for."""
    latent, depth, dynamic = frame(1)
    warp = LastFrameWarp(CONFIG, "cpu")
    warp.insert(latent, depth, K, T, 0.0, dynamic)
    has_point = warp.points()["counts"].reshape(K.scaled(4).shape) > 0
    readout = warp.read_out(T, K)
    np.testing.assert_array_equal(readout.valid, has_point)
    np.testing.assert_allclose(readout.latent[:, has_point], latent[:, has_point], atol=2e-3)  # float16 storage


def test_holes_take_the_hole_depth_moving_pixels_stay_out():
    latent, depth, dynamic = frame(2)
    warp = LastFrameWarp(CONFIG, "cpu")
    warp.insert(latent, depth, K, T, 0.0, dynamic, hole_depth=7.5)
    readout = warp.read_out(T, K)
    moving = g.pool_mask(dynamic, 4) > 0
    np.testing.assert_array_equal(readout.valid, ~moving)
    np.testing.assert_allclose(readout.depth[0, :2], 7.5, rtol=1e-5)  # the cells of the NaN block


def test_a_memory_gives_its_frames_points_and_a_bad_frame_changes_nothing():
    """Reading a fused memory's frames (the world model's newest-frame overlay: no second graph)
    gives the points a one-frame warp of its own makes; a bad frame leaves the kept one unchanged;
    the memory's reset forgets it."""
    latent, depth, dynamic = frame(3)
    memory = LatentMemory(CONFIG, "cpu")
    shared, own = LastFrameWarp(CONFIG, "cpu", memory=memory), LastFrameWarp(CONFIG, "cpu")
    assert shared.read_out_views_device([T], K) is None and not own.read_out(T, K).valid.any()
    memory.insert(latent, depth, K, T, 5.0, dynamic, hole_depth=4.0)
    own.insert(latent, depth, K, T, 5.0, dynamic, hole_depth=4.0)
    for name, value in own.points().items():
        np.testing.assert_array_equal(shared.points()[name], value, err_msg=name)
    assert memory.stats()["points"] == (g.pool_depth(np.where(dynamic, 0.0, depth), 4) > 0).sum()  # no hole in it
    with pytest.raises(InvalidInput, match="memory"):
        shared.insert(latent, depth, K, T, 6.0)
    kept = own.points()
    with pytest.raises(InvalidInput, match="latent"):
        own.insert(latent[:, :-1], depth, K, T, 6.0)
    with pytest.raises(InvalidInput, match="hole_depth"):
        own.insert(latent, depth, K, T, 6.0, hole_depth=float("nan"))
    for name, value in own.points().items():
        np.testing.assert_array_equal(kept[name], value, err_msg=name)
    memory.reset()
    assert not shared.read_out(T, K).valid.any() and shared.read_out_views_device([T], K) is None
