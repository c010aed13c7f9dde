"""Free-space carving (memory_maths/carve.py): stale points the live depth sees through are removed;
surfaces seen again and points hidden behind nearer surfaces stay; ORT CPU matches the maths run
in torch; the shipped graphs are what the builder makes."""

import numpy as np
import pytest
import torch
from helpers.memory_reference import assert_state_matches, reference_carve, reference_update, torch_state
from helpers.scene import box_room_depth, look_at

from mirage_ros import geometry as g
from mirage_ros.errors import InvalidInput
from mirage_ros.memory import LatentMemory, MemoryConfig
from mirage_ros.memory import layout as L
from mirage_ros.memory.layout import CARVE_PARAMS, CARVE_STAT_NAMES, SLICES, slot_shares

K = g.Intrinsics(40.0, 40.0, 31.5, 23.5, 64, 48)
PERSON = (np.array([1.3, -0.25, -1.5]), np.array([1.7, 0.25, 0.3]))  # a person-sized box, metres


def box_depth(K: g.Intrinsics, T_world_cam: np.ndarray, lo, hi) -> np.ndarray:
    """``(H, W) float32`` z-depth of the axis-aligned box ``[lo, hi]`` (inf where missed)."""
    u, v = g.pixel_grid(K)
    rays = np.stack([(u - K.cx) / K.fx, (v - K.cy) / K.fy, np.ones_like(u)], -1) @ T_world_cam[:3, :3].T
    origin = T_world_cam[:3, 3]
    with np.errstate(divide="ignore", invalid="ignore"):
        t0, t1 = (np.asarray(lo) - origin) / rays, (np.asarray(hi) - origin) / rays
    near = np.nanmax(np.minimum(t0, t1), axis=-1)
    far = np.nanmin(np.maximum(t0, t1), axis=-1)
    return np.where((near <= far) & (near > 0), near, np.inf).astype(np.float32)


def scene_depth(T, person: bool, rng=None) -> np.ndarray:
    """Room (and the person box) with 1 % range noise when ``rng`` is given."""
    depth = box_room_depth(K, T)
    if person:
        depth = np.minimum(depth, box_depth(K, T, *PERSON))
    if rng is not None:
        depth = depth * (1.0 + 0.01 * rng.standard_normal(depth.shape)).astype(np.float32)
    return depth


def in_person(points: np.ndarray, pad: float = 0.15) -> np.ndarray:
    """Points of the person box (the floor it stands on excluded)."""
    inside = np.all((points > PERSON[0] - pad) & (points < PERSON[1] + pad), axis=1)
    return inside & (points[:, 2] > PERSON[0][2] + 0.1)


def in_view(points: np.ndarray, T: np.ndarray) -> np.ndarray:
    """Points that project into the image at ``T``."""
    p = g.transform_points(g.invert_pose(T), points)
    u, v = K.fx * p[:, 0] / p[:, 2] + K.cx, K.fy * p[:, 1] / p[:, 2] + K.cy
    return (p[:, 2] > 0) & (u > -0.5) & (u < K.width - 0.5) & (v > -0.5) & (v < K.height - 0.5)


def memory(**overrides) -> LatentMemory:
    return LatentMemory(MemoryConfig(**{"channels": 2, "stride": 4, "capacity_points": 4000, "voxel_size": 0.1,
                                        "readout_min_count": 1, **overrides}), provider="cpu")


def insert(mem, T, depth, stamp, dynamic=None):
    mem.insert(np.ones((2, 12, 16), np.float32), depth, K, T, stamp, dynamic)


POSE_A = look_at([0.0, 0.0, 0.0], [3.0, 0.0, -0.3])
POSE_B = look_at([0.2, 0.8, 0.1], [3.0, -0.6, -0.3])


@pytest.mark.parametrize("second_pose", [POSE_A, POSE_B], ids=["same_pose", "other_pose"])
def test_a_person_seen_through_is_removed(second_pose):
    mem, rng = memory(), np.random.default_rng(0)
    for i in range(4):
        insert(mem, POSE_A, scene_depth(POSE_A, True, rng), float(i))
    assert in_person(mem.points()["positions"]).sum() > 10
    for i in range(4, 4 + 5 * SLICES):  # the person has gone: the wall behind is seen through them
        insert(mem, second_pose, scene_depth(second_pose, False, rng), float(i))
    points = mem.points()["positions"]
    assert in_person(points[in_view(points, second_pose)]).sum() == 0
    stats = mem.stats()
    assert stats["points_carved"] > 10 and stats["points_live"] == len(points)
    assert stats["carve_frames"] == 4 + 5 * SLICES


def test_walls_seen_again_are_kept():
    mem, rng = memory(), np.random.default_rng(1)
    for i, T in enumerate([POSE_A] * 3 + [POSE_B] * 3 + [look_at([-1, -0.5, 0.2], [3, 1.5, -0.5])] * 3):
        insert(mem, T, scene_depth(T, False, rng), float(i))
    stats = mem.stats()
    assert stats["points_live"] > 200
    assert stats["points_carved"] == 0 and stats["points_seen_through"] == 0


def test_points_behind_a_nearer_surface_are_not_carved():
    mem, rng = memory(), np.random.default_rng(2)
    for i in range(3):
        insert(mem, POSE_A, scene_depth(POSE_A, False, rng), float(i))
    walls = set(mem.host_state()["keys"][:-1]) - {-1}
    for i in range(3, 3 + 2 * SLICES):  # a person steps in front of the wall
        insert(mem, POSE_A, scene_depth(POSE_A, True, rng), float(i))
    assert mem.stats()["points_seen_through"] == 0
    assert walls <= set(mem.host_state()["keys"])  # every wall voxel is still stored


def test_dynamic_pixels_and_holes_do_not_carve():
    mem, rng = memory(), np.random.default_rng(3)
    for i in range(3):
        insert(mem, POSE_A, scene_depth(POSE_A, True, rng), float(i))
    flagged = np.isfinite(box_depth(K, POSE_A, PERSON[0] - 0.3, PERSON[1] + 0.3))
    holes = scene_depth(POSE_A, False, rng)
    holes[flagged] = 0.0
    for i in range(3, 3 + 2 * SLICES):
        insert(mem, POSE_A, scene_depth(POSE_A, False, rng), float(i), dynamic=flagged)
        insert(mem, POSE_A, holes, i + 0.5)
    assert mem.stats()["points_carved"] == 0
    assert in_person(mem.points()["positions"]).sum() > 10


def test_carving_can_be_turned_off_and_is_validated():
    mem = memory(carve=False)
    for i in range(3):
        insert(mem, POSE_A, scene_depth(POSE_A, True), float(i))
    for i in range(3, 3 + 4 * SLICES):
        insert(mem, POSE_A, scene_depth(POSE_A, False), float(i))
    assert in_person(mem.points()["positions"]).sum() > 10 and "points_carved" not in mem.stats()
    for name, value in (("carve_min_valid_fraction", 0.0), ("carve_decrement", 0.0), ("carve_margin", -1.0),
                        ("carve", "yes")):
        with pytest.raises(InvalidInput, match=name):
            MemoryConfig(channels=2, **{name: value})


def test_ort_cpu_matches_torch_carve_then_update():
    cfg = MemoryConfig(channels=2, stride=4, capacity_points=800, voxel_size=0.1, max_weight=3.0)
    mem = LatentMemory(cfg, provider="cpu")
    state = {**torch_state(mem.host_state()), "carve_stats": torch.zeros(len(CARVE_STAT_NAMES), dtype=torch.long)}
    rng = np.random.default_rng(4)
    K_latent = K.scaled(4)
    for frame in range(16):
        a = 0.2 * frame
        T = look_at([0.3 * np.cos(a), 0.2 * np.sin(a), 0.0], [3.0, 1.5 * np.sin(a + 1), -0.3])
        depth = scene_depth(T, frame < 5, rng)
        depth[rng.random(depth.shape) < 0.05] = np.nan
        dynamic = np.zeros(K.shape, bool)
        dynamic[rng.integers(0, 48), :20] = True
        latent = rng.normal(size=(2, 12, 16)).astype(np.float32)
        mem.insert(latent, depth, K, T, float(frame), dynamic_mask=dynamic)
        carve_params = torch.tensor([16, 12, cfg.near, cfg.min_depth, cfg.max_depth, cfg.carve_margin,
                                     cfg.carve_rel_margin, cfg.carve_min_valid_fraction, cfg.carve_decrement * SLICES],
                                    dtype=torch.float32)
        assert len(carve_params) == len(CARVE_PARAMS)
        depth_t, dynamic_t = torch.from_numpy(depth), torch.from_numpy(dynamic)
        projection = torch.from_numpy(L.projection_matrix(K_latent, g.invert_pose(T)))
        share = torch.from_numpy(slot_shares(cfg.slots)[frame % SLICES])
        state.update(reference_carve(state, depth_t, dynamic_t, projection, carve_params, share, 4))
        state.update(reference_update(state, cfg, frame, depth, dynamic, latent, K_latent, T))
        assert_state_matches(mem.host_state(), state)
    stats = mem.stats()
    assert [stats[n] for n in CARVE_STAT_NAMES] == state["carve_stats"].tolist()
    assert stats["points_carved"] > 0  # the stream exercised the removal path
