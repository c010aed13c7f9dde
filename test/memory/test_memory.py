"""LatentMemory behaviour on ORT CPU: lift, read out, fuse, evict, occlusion, dynamics, bad input."""

import time

import numpy as np
import onnxruntime as ort
import pytest
from helpers.scene import box_room_depth, look_at

from mirage_ros import geometry as g
from mirage_ros.errors import InvalidInput
from mirage_ros.memory import LatentMemory, MemoryConfig
from mirage_ros.runtime.session import BufferView

K = g.Intrinsics(48.0, 48.0, 31.5, 23.5, 64, 48)  # stride 8 -> 8 x 6 latent grid
C = 4


def memory(**overrides) -> LatentMemory:
    """A small CPU memory that draws every point (these tests follow single frames; the
    ``readout_min_count`` filter has its own test)."""
    return LatentMemory(MemoryConfig(**{"channels": C, "capacity_points": 4000, "voxel_size": 0.02,
                                        "readout_min_count": 1, **overrides}), provider="cpu")


def random_latent(seed=0, shape=(C, 6, 8)):
    # fp16-representable values, so stored latents compare exactly
    return np.random.default_rng(seed).normal(size=shape).astype(np.float16).astype(np.float32)


def plane(depth_m=2.0):
    return np.full(K.shape, depth_m, np.float32)


def test_empty_memory_reads_out_all_invalid():
    out = memory().read_out(np.eye(4), K)
    assert out.latent.shape == (C, 6, 8) and not out.valid.any()
    assert np.all(out.latent == 0) and np.all(out.depth == 0)


def test_lifted_cells_read_out_in_their_own_cell():
    mem, latent = memory(), random_latent()
    T = look_at([0.3, -0.2, 0.1], [3.0, 0.5, 0.0])
    depth = box_room_depth(K, T)
    mem.insert(latent, depth, K, T, stamp=10.0)
    out = mem.read_out(T, K)
    assert out.valid.all()
    np.testing.assert_allclose(out.latent, latent, atol=1e-6)
    np.testing.assert_allclose(out.depth, g.pool_depth(depth, 8), rtol=1e-4)
    assert mem.stats()["points"] == 48


def test_single_cell_lands_in_its_cell():
    mem, latent = memory(), random_latent(1)
    depth = np.zeros(K.shape, np.float32)
    depth[16:24, 40:48] = 1.5  # latent cell (2, 5)
    mem.insert(latent, depth, K, np.eye(4), 0.0)
    out = mem.read_out(np.eye(4), K)
    assert out.valid.sum() == 1 and out.valid[2, 5]
    np.testing.assert_allclose(out.latent[:, 2, 5], latent[:, 2, 5])
    assert out.depth[2, 5] == pytest.approx(1.5)


def test_read_out_at_other_intrinsics_and_pose():
    mem, latent = memory(), random_latent(2)
    mem.insert(latent, plane(2.0), K, np.eye(4), 0.0)
    K2 = g.Intrinsics(96.0, 96.0, 63.5, 47.5, 128, 96)  # same field of view, twice the size
    out = mem.read_out(np.eye(4), K2)
    assert out.latent.shape == (C, 12, 16) and 40 <= out.valid.sum() <= 48
    T_right = np.eye(4)
    T_right[0, 3] = 2.0 / 3.0  # camera moved right: content shifts left by fx_latent*d/z = 2 cells
    shifted = mem.read_out(T_right, K)
    assert shifted.valid[:, :6].all() and not shifted.valid[:, 6:].any()
    np.testing.assert_allclose(shifted.latent[:, :, :6], latent[:, :, 2:])


def test_revisits_fuse_instead_of_growing():
    mem, T = memory(), look_at([0, 0, 0], [3, 1, -0.5])
    depth, latent = box_room_depth(K, T), random_latent(3)
    mem.insert(latent, depth, K, T, 0.0)
    first = mem.stats()["points"]
    for k in range(1, 10):
        mem.insert(latent + k, depth, K, T, float(k))
    stats = mem.stats()
    assert stats["points"] == first and stats["evictions"] == 0
    assert stats["fuse_ratio"] == pytest.approx(0.9)
    out = mem.read_out(T, K)  # running mean of latent + 0..9
    np.testing.assert_allclose(out.latent[:, out.valid], (latent + 4.5)[:, out.valid], atol=1e-2)
    weights = mem.points()["weights"]
    assert weights.max() == 10.0


def test_loop_path_memory_follows_explored_volume_not_path_length():
    mem = memory(capacity_points=20000, voxel_size=0.15)
    angles = np.linspace(0, 2 * np.pi, 24, endpoint=False)
    counts = []
    for lap in range(3):
        for k, a in enumerate(angles):
            T = look_at([0.5 * np.cos(a), 0.5 * np.sin(a), 0], [3 * np.cos(a + 0.3), 3 * np.sin(a + 0.3), -0.3])
            mem.insert(random_latent(k), box_room_depth(K, T), K, T, lap * 100.0 + k)
        counts.append(mem.stats()["points"])
    assert counts[1] <= counts[0] * 1.05 and counts[2] <= counts[1] * 1.02, counts
    assert mem.stats()["evictions"] == 0


def test_capacity_holds_under_a_10k_frame_stream_and_evicts_least_recent():
    cfg = MemoryConfig(channels=2, stride=8, capacity_points=200, voxel_size=0.1, readout_min_count=1)
    mem = LatentMemory(cfg, provider="cpu")
    Ks = g.Intrinsics(16.0, 16.0, 7.5, 7.5, 16, 16)  # 2 x 2 cells per frame
    latent, depth = np.ones((2, 2, 2), np.float32), np.full((16, 16), 1.0, np.float32)
    T = np.eye(4)
    start = time.perf_counter()
    for frame in range(10_000):
        T[0, 3] = 0.25 * frame  # a straight line: every frame sees new voxels
        mem.insert(latent, depth, Ks, T, float(frame))
        if frame % 1000 == 999:
            assert mem.stats()["points"] <= cfg.slots
    assert time.perf_counter() - start < 30
    stats, pts = mem.stats(), mem.points()
    assert stats["points"] == len(pts["weights"]) <= cfg.slots
    assert stats["evictions"] > 9000 and stats["cells_dropped"] == 0
    # every written cell either revisited a stored voxel, filled an empty slot or evicted one
    assert stats["points_created"] + stats["evictions"] + stats["cells_revisited"] == stats["cells_fused"]
    assert pts["last_seen"].max() == 9999.0
    assert pts["last_seen"].min() > 9999 - 4 * cfg.slots / 4  # survivors are recent ones
    recent = mem.read_out(T, Ks)
    assert recent.valid.all()  # the newest frame is always kept


def test_nearer_points_win_the_z_test():
    mem = memory()
    far_latent, near_latent = random_latent(4), random_latent(5)
    mem.insert(far_latent, plane(4.0), K, np.eye(4), 0.0)
    near = np.zeros(K.shape, np.float32)
    near[:, :32] = 1.0  # left half of the view: an object at 1 m
    mem.insert(near_latent, near, K, np.eye(4), 1.0)
    out = mem.read_out(np.eye(4), K)
    assert out.valid.all()
    np.testing.assert_allclose(out.latent[:, :, :4], near_latent[:, :, :4])
    np.testing.assert_allclose(out.latent[:, :, 4:], far_latent[:, :, 4:])
    np.testing.assert_allclose(out.depth[:, :4], 1.0)
    np.testing.assert_allclose(out.depth[:, 4:], 4.0)
    far_plane = np.full((6, 8), 2.0, np.float32)  # a far plane at 2 m hides the wall
    clipped = mem.read_out(np.eye(4), K, far=far_plane)
    assert clipped.valid[:, :4].all() and not clipped.valid[:, 4:].any()


def test_dynamic_cells_never_enter():
    mem, latent = memory(), random_latent(6)
    mask = np.zeros(K.shape, bool)
    mask[0:8, 0:16] = True  # cells (0, 0) and (0, 1) entirely
    mask[20, 60] = True  # one pixel of cell (2, 7): any flagged pixel makes the cell dynamic
    mem.insert(latent, plane(2.0), K, np.eye(4), 0.0, dynamic_mask=mask)
    out = mem.read_out(np.eye(4), K)
    assert not out.valid[0, 0] and not out.valid[0, 1] and not out.valid[2, 7]
    assert out.valid.sum() == 45 and mem.stats()["points"] == 45
    lenient = memory(dynamic_max_fraction=0.5)
    lenient.insert(latent, plane(2.0), K, np.eye(4), 0.0, dynamic_mask=mask)
    assert lenient.stats()["points"] == 46  # the single-pixel cell stays, its 63 others pool depth


def test_bad_depth_and_latent_cells_are_skipped_not_stored():
    mem, latent = memory(), random_latent(7)
    depth = plane(2.0)
    depth[0:8, 0:8] = np.nan
    depth[0:8, 8:16] = np.inf
    depth[0:8, 16:24] = -1.0
    depth[0:8, 24:32] = 0.0
    depth[0:8, 32:40] = 50.0  # beyond max_depth
    latent[:, 5, 7] = np.nan
    latent[0, 5, 6] = np.inf
    mem.insert(latent, depth, K, np.eye(4), 0.0)
    out = mem.read_out(np.eye(4), K)
    assert not out.valid[0, :5].any() and out.valid[0, 5:].all()
    assert not out.valid[5, 6] and not out.valid[5, 7] and out.valid.sum() == 48 - 7
    pts = mem.points()
    assert all(np.isfinite(v).all() for v in pts.values())


@pytest.mark.parametrize(
    "change, parameter",
    [
        (dict(T_world_cam=np.full((4, 4), np.nan)), "T_world_cam"),
        (dict(T_world_cam=np.eye(3)), "T_world_cam"),
        (dict(T_world_cam=np.diag([2.0, 1.0, 1.0, 1.0])), "T_world_cam"),
        (dict(latent=np.zeros((C, 5, 8), np.float32)), "latent"),
        (dict(latent=np.zeros((C + 1, 6, 8), np.float32)), "latent"),
        # an encoder output left on the device, of the wrong grid (Networks.encode_device's kind)
        (dict(latent=BufferView(ort.OrtValue.ortvalue_from_numpy(np.zeros((1, C, 5, 8), np.float32)), (C, 5, 8))),
         "latent"),
        (dict(depth=np.zeros((48, 63), np.float32)), "depth"),
        (dict(stamp=float("nan")), "stamp"),
        (dict(dynamic_mask=np.zeros((48, 64), np.uint8)), "dynamic_mask"),
        (dict(K=np.eye(3)), "K"),
    ],
)
def test_bad_arguments_raise_and_leave_memory_untouched(change, parameter):
    mem = memory()
    mem.insert(random_latent(), plane(), K, np.eye(4), 0.0)
    before = mem.host_state()
    args = dict(latent=random_latent(8), depth=plane(), K=K, T_world_cam=np.eye(4), stamp=1.0,
                dynamic_mask=None)
    with pytest.raises(InvalidInput) as err:
        mem.insert(**{**args, **change})
    assert err.value.parameter == parameter
    after = mem.host_state()
    assert all(np.array_equal(before[n], after[n], equal_nan=True) for n in before)


def test_zero_intrinsics_and_bad_read_out_arguments():
    with pytest.raises(InvalidInput, match="K.fx"):
        g.Intrinsics(0.0, 48.0, 31.5, 23.5, 64, 48)
    mem = memory()
    with pytest.raises(InvalidInput, match="T_world_cam"):
        mem.read_out(np.full((4, 4), np.inf), K)
    with pytest.raises(InvalidInput, match="far"):
        mem.read_out(np.eye(4), K, far=np.ones((3, 3)))
    with pytest.raises(InvalidInput, match="stride"):
        mem.read_out(np.eye(4), g.Intrinsics(4.0, 4.0, 2.0, 2.0, 4, 4))


def test_config_validation_and_cap():
    assert MemoryConfig(channels=8, capacity_points=1000).slots <= 1000
    for field, value in (("channels", 0), ("stride", 3), ("voxel_size", 0.0), ("capacity_points", 8),
                         ("max_depth", float("nan")), ("dynamic_max_fraction", 1.0), ("voxel_per_footprint", -1.0),
                         ("voxel_per_footprint", float("inf"))):
        with pytest.raises(InvalidInput) as err:
            MemoryConfig(**{"channels": 8, field: value})
        assert err.value.parameter == field


def test_reset_forgets_everything():
    mem = memory()
    mem.insert(random_latent(), plane(), K, np.eye(4), 0.0)
    mem.reset()
    assert mem.stats()["points"] == 0 and not mem.read_out(np.eye(4), K).valid.any()


def test_read_out_draws_points_seen_at_least_readout_min_count_times():
    T = look_at([0.3, -0.2, 0.1], [3.0, 0.5, 0.0])
    depth = box_room_depth(K, T)
    once, twice = memory(readout_min_count=2), memory(readout_min_count=2)
    once.insert(random_latent(), depth, K, T, stamp=1.0)
    assert not once.read_out(T, K).valid.any()  # a point seen once may be someone walking by
    for stamp in (1.0, 1.1):
        twice.insert(random_latent(), depth, K, T, stamp=stamp)
    assert twice.read_out(T, K).valid.all()
    with pytest.raises(InvalidInput, match="readout_min_count"):
        MemoryConfig(channels=C, readout_min_count=0)


def _plane_depth(K: g.Intrinsics, distance: float, tilt_deg: float) -> np.ndarray:
    """``(H, W) float32`` z-depth of a plane ``distance`` ahead, turned ``tilt_deg`` about the
    camera's y axis."""
    u, _ = g.pixel_grid(K)
    return (distance / (1.0 - (u - K.cx) / K.fx * np.tan(np.radians(tilt_deg)))).astype(np.float32)


@pytest.mark.parametrize("width, height, fx", [(320, 240, 262.5), (640, 480, 525.0)])
def test_one_frame_read_out_at_its_pose_covers_every_cell_with_depth(width, height, fx):
    """Voxels follow the cell footprint: from 0.4 m to 6 m, head-on and at 50 degrees, a read-out at
    the observing pose fills >= 95 % of the cells with depth (fixed 5 cm voxels: 1 to 32 % at 640x480
    up to 2 m)."""
    K = g.Intrinsics(fx, fx, width / 2 - 0.5, height / 2 - 0.5, width, height)
    T = g.pose_from_tq([0.3, -0.2, 1.0], [0.96, 0.1, 0.2, 0.1])
    rng = np.random.default_rng(0)
    for voxels, expect in (({}, lambda c: c >= 0.95), ({"voxel_size": 0.05, "voxel_per_footprint": 0.0}, None)):
        cfg = MemoryConfig(channels=2, stride=4, capacity_points=100_000, readout_min_count=1, carve=False, **voxels)
        for distance in (0.4, 1.0, 2.0, 6.0):
            for tilt in (0.0, 50.0):
                memory = LatentMemory(cfg, provider="cpu")
                depth = _plane_depth(K, distance, tilt)
                memory.insert(rng.normal(size=(2, height // 4, width // 4)).astype(np.float32), depth, K, T, 0.0)
                pooled = g.pool_depth(depth, 4)
                has_depth = (pooled > cfg.min_depth) & (pooled < cfg.max_depth)
                coverage = memory.read_out(T, K).valid[has_depth].mean()
                if expect is not None:
                    assert expect(coverage), (distance, tilt, coverage)
                elif width == 640 and distance <= 2.0:
                    assert coverage < 0.35, (distance, tilt, coverage)  # what the footprint voxels fix
