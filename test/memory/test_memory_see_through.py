"""Read-out cells seen through gaps in a nearer surface take that surface's point."""

import numpy as np

from mirage_ros import geometry as g
from mirage_ros.memory import LatentMemory, MemoryConfig, Readout
from mirage_ros.memory.see_through import fill_see_through, hidden_cells
from mirage_ros.sim import SimConfig, Simulator


def test_a_point_behind_a_surrounding_surface_is_hidden_an_edge_is_not():
    depth = np.full((7, 9), 2.0, np.float32)
    depth[3, 2] = 8.0  # a gap in the near surface: the far wall shows through
    depth[:, 6:] = 8.0  # the far wall beside the near surface: a depth edge
    depth[0, 0] = 2.3  # the same surface, slightly tilted: not clearly behind
    valid = np.ones_like(depth, bool)
    valid[5, 4] = False
    hidden = hidden_cells(valid, depth)
    assert np.argwhere(hidden).tolist() == [[3, 2]]
    # along a diagonal only: near neighbours at the corners, nothing in the row or column
    diagonal = np.full((5, 5), 8.0, np.float32)
    diagonal[1, 1] = diagonal[3, 3] = 2.0
    assert np.argwhere(hidden_cells(np.ones((5, 5), bool), diagonal)).tolist() == [[2, 2]]
    # empty cells neither hide nor are hidden
    assert not hidden_cells(np.zeros((5, 5), bool), diagonal).any()


def test_a_hidden_cell_takes_the_nearest_point_of_its_window():
    depth = np.full((5, 5), 3.0, np.float32)
    depth[2, 2] = 9.0
    depth[2, 3] = 2.5  # the nearest point around the gap
    latent = np.arange(2 * 25, dtype=np.float32).reshape(2, 5, 5)
    offset = np.full((2, 5, 5), 0.25, np.float32)
    readout = Readout(latent, np.ones((5, 5), bool), depth, offset)
    out = fill_see_through(readout)
    assert out.depth[2, 2] == 2.5
    np.testing.assert_array_equal(out.latent[:, 2, 2], latent[:, 2, 3])
    unchanged = np.ones((5, 5), bool)
    unchanged[2, 2] = False
    np.testing.assert_array_equal(out.depth[unchanged], depth[unchanged])
    np.testing.assert_array_equal(out.latent[:, unchanged], latent[:, unchanged])
    assert out.offset[:, 2, 2].tolist() == [0.0, 0.0]  # the borrowed point is drawn on its new cell
    np.testing.assert_array_equal(out.offset[:, unchanged], offset[:, unchanged])
    assert out.valid.all()
    assert fill_see_through(Readout(latent, np.ones((5, 5), bool), np.full((5, 5), 3.0, np.float32))) \
        .depth.tolist() == np.full((5, 5), 3.0).tolist()


def test_fill_removes_see_through_from_a_real_memory_read_out():
    """Corridor walk: read out 1 s ahead of the newest frame and count cells whose point lies far
    behind the true surface (30 % + 0.2 m) before and after the fill."""
    sim = Simulator(SimConfig(scene="corridor", seed=1000, width=320, height=240, rate_hz=5.0,
                              path="loop", actors=False))
    # every point drawn (readout_min_count 1): the most see-through (132 cells with the default 2);
    # fixed 5 cm voxels, where a near surface's fused points lie far apart (voxels that follow the
    # cell footprint, the default, keep them about a cell apart: 116 cells here)
    memory = LatentMemory(MemoryConfig(channels=2, stride=4, readout_min_count=1, voxel_size=0.05,
                                       voxel_per_footprint=0.0), provider="cpu")
    behind = {"raw": 0, "filled": 0}
    for i in range(60):
        frame = sim.frame_at(i)
        if i >= 10 and i % 5 == 0:
            target = sim.frame_at(i + 5)
            readout = memory.read_out(target.T_world_cam, target.K)
            true = g.pool_depth(target.depth, 4)
            for name, r in (("raw", readout), ("filled", fill_see_through(readout))):
                behind[name] += int(np.count_nonzero(r.valid & (true > 0) & (r.depth > 1.3 * true + 0.2)))
        latent = frame.rgb[::4, ::4, :2].transpose(2, 0, 1).astype(np.float32) / 255.0
        memory.insert(latent, frame.depth, frame.K, frame.T_world_cam, frame.stamp)
    assert behind["raw"] > 100  # the defect is there to fix (232 cells when written)
    assert behind["filled"] < behind["raw"] / 10
