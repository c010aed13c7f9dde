"""Moving-object detector on an analytic corridor (ray-cast planes + boxes, exact depth).

The "memory rendering" is the same corridor rendered without the new objects at the live pose,
i.e. a perfect memory: these tests check the detector's logic (moving vs new static, unknown
frames, robustness to sensor effects), not the networks.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers.corridor import RATE, K, person, pose, render
from scipy import ndimage

from mirage_ros.dynamics import (
    STATE_MOVING,
    STATE_NEW_STATIC,
    STATE_UNKNOWN,
    DetectorConfig,
    FrameDifferencing,
    MovingObjectDetector,
)
from mirage_ros.dynamics.cues import latent_cue
from mirage_ros.errors import InvalidInput
from mirage_ros.geometry import Intrinsics


def run(detector, poses, boxes_at, memory_boxes_at=lambda i: (), live=lambda rgb, depth: (rgb, depth)):
    """Feed frames; the memory renders ``memory_boxes_at(i)`` at the true pose."""
    out = []
    for i, T in enumerate(poses):
        rgb, depth, ids = render(T, boxes_at(i))
        mem_rgb, mem_depth, _ = render(T, memory_boxes_at(i))
        rgb, depth = live(rgb, depth)
        det = detector.update(rgb, depth, K, T, i / RATE, mem_rgb, mem_depth, mem_depth > 0)
        out.append((det, ids))
    return out


def f1(mask, truth):
    tp = np.count_nonzero(mask & truth)
    return 2 * tp / max(np.count_nonzero(mask) + np.count_nonzero(truth), 1)


def test_box_moving_across_corridor_is_flagged_moving_with_velocity():
    poses = [pose(z=0.03 * i) for i in range(15)]  # camera walks forward at 0.3 m/s
    frames = run(MovingObjectDetector(), poses, lambda i: [person(-1.0 + 0.1 * i)])
    scores = [f1(det.mask, ids == 1) for det, ids in frames[2:]]
    assert min(scores) > 0.85, scores
    det, _ = frames[-1]
    moving = [r for r in det.regions if r.state == STATE_MOVING]
    assert len(moving) == 1
    assert moving[0].velocity_valid
    np.testing.assert_allclose(moving[0].velocity_world, [1.0, 0.0, 0.0], atol=0.25)
    assert abs(moving[0].centroid_world[0] - (-1.0 + 0.1 * 14)) < 0.2
    # the memory does not get the person (bar the floor-contact row, whose depth is the floor's)
    assert min(det.memory_mask[ids == 1].mean() for det, ids in frames) > 0.97


def test_person_walking_towards_camera_is_flagged():
    poses = [pose() for _ in range(12)]
    frames = run(MovingObjectDetector(), poses, lambda i: [person(0.4, z=7.0 - 0.13 * i)])
    assert all(f1(det.mask, ids == 1) > 0.85 for det, ids in frames[3:])


def test_static_new_box_is_absorbed_after_persistence_window():
    config = DetectorConfig()
    box = [((0.3, 0.4, 4.0), (1.1, 1.2, 4.8))]
    frames = round(config.tracking.persistence_s * RATE) + 10
    poses = [pose(z=0.02 * i, yaw_deg=0.4 * i) for i in range(frames)]
    absorbed_at = None
    detector = MovingObjectDetector(config)
    for i, T in enumerate(poses):
        rgb, depth, ids = render(T, box)
        # once the detector lets it in, the memory holds the box (what the world model does)
        mem_rgb, mem_depth, _ = render(T, box if absorbed_at is not None else ())
        det = detector.update(rgb, depth, K, T, i / RATE, mem_rgb, mem_depth, mem_depth > 0)
        assert not det.mask.any(), f"frame {i}: static box flagged as moving"
        if absorbed_at is None:
            (region,) = det.regions
            if region.state == STATE_NEW_STATIC:
                absorbed_at = i
                assert not det.memory_mask[ids == 1].any()
            else:
                assert region.state == STATE_UNKNOWN
                # undecided: kept out of memory (bar the floor-contact row)
                assert det.memory_mask[ids == 1].mean() > 0.95
        else:
            assert det.regions == []
    assert absorbed_at is not None
    assert absorbed_at / RATE == pytest.approx(config.tracking.persistence_s, abs=0.15)


def test_empty_memory_reports_unknown_not_moving():
    rgb, depth, _ = render(pose(), [person(0.0)])
    empty = np.zeros(K.shape, bool)
    detector = MovingObjectDetector()
    det = detector.update(rgb, depth, K, pose(), 0.0, rgb, depth * 0, empty)
    assert det.status == "unknown" and "memory" in det.reason
    assert det.regions == [] and not det.mask.any()
    assert det.memory_mask.all()  # first frame: nothing to compare with, nothing written
    # still empty, but the person moved since the last frame: kept out, nothing reported
    rgb, depth, ids = render(pose(), [person(0.15)])
    det = detector.update(rgb, depth, K, pose(), 0.1, rgb, depth * 0, empty)
    assert det.status == "unknown" and det.regions == [] and not det.mask.any()
    assert det.memory_mask[ids == 1].mean() > 0.9 and det.memory_mask[ids == 0].mean() < 0.1


def test_undecided_region_does_not_keep_out_uncovered_floor_next_to_it():
    # The memory covers the view except the floor band beside a new box (as a sparsely held surface
    # reads). Growth into such pixels is for an empty memory only: here the floor must be written.
    T = pose()
    rgb, depth, ids = render(T, [person(0.0)])
    mem_rgb, mem_depth, _ = render(T)
    rows = np.nonzero((ids == 1).any(axis=1))[0]
    strip = np.zeros(K.shape, bool)
    strip[rows[-1] - 10 :, :] = True
    strip &= ids == 0
    beyond_dilation = strip & ~ndimage.binary_dilation(ids == 1, iterations=8)
    # At 160x120 the floor's depth changes 3-6 % per row, which the default 5 % would call edges
    # (growth stops there); 10 % lets growth reach the strip, as on a finer image.
    detector = MovingObjectDetector(DetectorConfig(edge_rel_gap=0.1))
    for i in range(3):
        det = detector.update(rgb, depth, K, T, i / RATE, mem_rgb, mem_depth, (mem_depth > 0) & ~strip)
    (region,) = det.regions
    assert region.state == STATE_UNKNOWN
    assert det.memory_mask[ids == 1].mean() > 0.95
    assert det.memory_mask[beyond_dilation].mean() < 0.02


def test_pose_jump_reports_unknown_and_no_flood_after():
    detector = MovingObjectDetector()
    poses = [pose(z=0.03 * i) for i in range(5)] + [pose(x=1.0, z=2.0)]
    frames = run(detector, poses, lambda i: [])
    assert [d.status for d, _ in frames] == ["ok"] * 5 + ["unknown"]
    assert "jump" in frames[-1][0].reason
    # a wrong pose (live seen from elsewhere than the memory renders): unknown, never moving
    true_T, wrong_T = pose(x=1.0, z=2.1), pose(x=0.4, z=2.1)
    rgb, depth, _ = render(true_T)
    mem_rgb, mem_depth, _ = render(wrong_T)
    det = detector.update(rgb, depth, K, wrong_T, 0.6, mem_rgb, mem_depth, mem_depth > 0)
    assert not det.mask.any()
    assert det.status == "unknown" or all(r.state != STATE_MOVING for r in det.regions)


def test_time_going_backwards_resets():
    detector = MovingObjectDetector()
    run(detector, [pose()] * 3, lambda i: [])
    rgb, depth, _ = render(pose())
    det = detector.update(rgb, depth, K, pose(), 0.0, rgb, depth, depth > 0)
    assert det.status == "unknown" and "backwards" in det.reason


def kinect_like(seed):
    """Exposure gain, range-dependent depth noise, holes and a 1-pixel depth/colour offset."""
    rng = np.random.default_rng(seed)

    def apply(rgb, depth):
        rgb = np.clip(rgb.astype(np.float32) * 1.35, 0, 255).astype(np.uint8)
        noisy = depth + rng.normal(size=depth.shape) * (0.0012 + 0.0019 * (depth - 0.4) ** 2)
        noisy[rng.random(depth.shape) < 0.05] = 0.0
        return rgb, np.roll(noisy, 1, axis=1).astype(np.float32)

    return apply


def test_static_scene_with_sensor_effects_gives_no_flood():
    poses = [pose(z=0.04 * i, yaw_deg=1.0 * i) for i in range(10)]
    frames = run(MovingObjectDetector(), poses, lambda i: [], live=kinect_like(0))
    for det, _ in frames:
        assert det.status == "ok"
        assert det.gain == pytest.approx(1.35, abs=0.1)
        assert not det.mask.any()
        assert det.memory_mask.mean() < 0.01


def test_sparsely_held_near_wall_is_not_flagged():
    # A memory holds near walls (seen at a grazing angle) sparsely: in gaps 7 px wide its
    # rendering shows farther points seen through them. The live wall is nearer there, yet nothing
    # moved: the nearest memory depth over the window must still find the wall (a 5 px window
    # kept 11 % of the view out of memory here).
    poses = [pose(z=0.04 * i) for i in range(6)]

    def see_through(T, wall):
        _, beyond, _ = render(T @ pose(z=1.5))  # the same view, 1.5 m on: farther points
        gaps = (np.arange(K.width) // 7 % 2 == 1)[None, :] & (wall < 3.0)
        return np.where(gaps, beyond + 1.5, wall).astype(np.float32)

    detector = MovingObjectDetector()
    for i, T in enumerate(poses):
        rgb, depth, _ = render(T)
        det = detector.update(rgb, depth, K, T, i / RATE, rgb, see_through(T, depth), depth > 0)
        assert det.status == "ok"
        assert det.memory_mask.mean() < 0.01, f"frame {i}"


def test_moving_box_under_sensor_effects_still_flagged():
    poses = [pose(z=0.03 * i) for i in range(12)]
    frames = run(MovingObjectDetector(), poses, lambda i: [person(-1.0 + 0.1 * i)],
                 live=kinect_like(1))
    assert np.mean([f1(det.mask, ids == 1) for det, ids in frames[3:]]) > 0.8


def test_full_vga_is_subsampled_and_upsampled():
    big = Intrinsics(480.0, 480.0, 319.5, 239.5, 640, 480)
    detector = MovingObjectDetector()
    for i in range(5):
        T = pose(z=0.03 * i)
        rgb, depth, ids = render(T, [person(-0.6 + 0.1 * i)], K=big)
        mem_rgb, mem_depth, _ = render(T, (), K=big)
        det = detector.update(rgb, depth, big, T, i / RATE, mem_rgb, mem_depth, mem_depth > 0)
    assert det.mask.shape == (480, 640) and det.labels.shape == (480, 640)
    assert f1(det.mask, ids == 1) > 0.85
    (region,) = det.regions
    x, y, w, h = region.box
    truth_rows, truth_cols = np.nonzero(ids == 1)
    assert abs(x - truth_cols.min()) <= 2 and abs(x + w - 1 - truth_cols.max()) <= 2
    assert region.pixel_count == np.count_nonzero(det.labels == region.mask_label)


def test_frame_differencing_baseline_flags_the_mover_only():
    baseline = FrameDifferencing()
    for i in range(4):
        T = pose(z=0.03 * i)
        rgb, depth, ids = render(T, [person(-1.0 + 0.1 * i)])
        mask = baseline.update(rgb, depth, K, T)
    assert mask[ids == 0].mean() < 0.02
    assert mask[ids == 1].mean() > 0.05


def test_latent_cue_is_cosine_distance():
    rng = np.random.default_rng(0)
    live = rng.normal(size=(8, 4, 5)).astype(np.float32)
    other = live.copy()
    other[:, 0, 0] = -live[:, 0, 0]
    valid = np.ones((4, 5), bool)
    valid[3, 4] = False
    evidence = latent_cue(live, other, valid, (16, 20), (0.3, 0.6))
    assert evidence[:4, :4].min() == 1.0 and evidence[4:, 4:].max() == 0.0


def test_bad_input_names_the_parameter():
    rgb, depth, _ = render(pose())
    detector = MovingObjectDetector()
    with pytest.raises(InvalidInput, match="rendered_depth"):
        detector.update(rgb, depth, K, pose(), 0.0, rgb, depth[:-1], depth > 0)
    with pytest.raises(InvalidInput, match="T_world_cam"):
        detector.update(rgb, depth, K, np.eye(3), 0.0, rgb, depth, depth > 0)
    with pytest.raises(InvalidInput, match="depth_window"):
        DetectorConfig(depth_window=4)


def test_person_who_stops_is_not_moving_but_stays_out_of_memory_then_moves_again():
    def x_at(i):  # walk 1 s, stand 3 s, walk on
        return -1.0 + 0.1 * min(i, 10) + 0.1 * max(i - 40, 0)

    poses = [pose(z=0.01 * i) for i in range(50)]
    frames = run(MovingObjectDetector(), poses, lambda i: [person(x_at(i))])
    standing = frames[20:40]  # stopped for >= 1 s
    assert all(not det.mask.any() for det, _ in standing)
    assert all(det.memory_mask[ids == 1].mean() > 0.95 for det, ids in standing)
    assert all(r.state == STATE_UNKNOWN for det, _ in standing for r in det.regions)
    assert all(f1(det.mask, ids == 1) > 0.85 for det, ids in frames[44:])


def test_depth_change_counts_movers_not_disocclusions():
    from mirage_ros.dynamics.warp import depth_change

    T = pose()
    wall = np.full(K.shape, 4.0, np.float32)
    before = wall.copy()
    before[40:80, 60:100] = 2.0  # something 2 m in front of the wall
    now = before.copy()
    now[40:80, 60:80] = 2.1  # its left half receded 10 cm
    now[40:80, 80:100] = 4.0  # its right half left: the wall behind is revealed
    now[10:20, 10:20] = 3.0  # something new came in
    changed, covered = depth_change(now, K, T, before, K, T, 3, (0.005, 0.002, 0.0), 4.0, 0.25)
    assert covered.all()
    assert changed[45:75, 62:78].all()  # receded by less than max_step: moving
    assert not changed[45:75, 82:98].any()  # +2 m: disocclusion, not motion of the wall
    assert changed[12:18, 12:18].all()  # nearer: moved in
    assert not changed[90:, :].any()  # static wall


def test_far_person_inside_their_own_ghost_is_flagged_with_the_long_lag():
    """A person 8 m away walking towards the camera at 1 m/s, already leaked into memory one
    frame behind (so the memory agrees within depth noise): only the long frame-change lag sees
    them move (0.8 m in 0.8 s; 0.3 m in 0.3 s is below the noise at 8 m)."""
    def z_at(i):
        return 8.5 - 0.1 * i

    poses = [pose() for _ in range(16)]
    for long_lag, expected in ((0.8, True), (0.0, False)):
        frames = run(MovingObjectDetector(DetectorConfig(change_long_lag_s=long_lag)), poses,
                     lambda i: [person(0.3, z=z_at(i))], lambda i: [person(0.3, z=z_at(i - 1))])
        flagged = [f1(det.mask, ids == 1) > 0.5 for det, ids in frames[10:]]
        assert all(flagged) if expected else not any(flagged), (long_lag, flagged)
