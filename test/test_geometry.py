"""Geometry: intrinsics, (back)projection, poses, edge-aware depth pooling."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from transforms3d.euler import euler2mat

from mirage_ros import geometry as g
from mirage_ros.errors import InvalidInput

finite = st.floats(-10.0, 10.0, allow_nan=False)
angles = st.floats(-math.pi, math.pi, allow_nan=False)


@st.composite
def poses(draw):
    T = np.eye(4)
    T[:3, :3] = euler2mat(draw(angles), draw(angles), draw(angles))
    T[:3, 3] = [draw(finite), draw(finite), draw(finite)]
    return T


@st.composite
def intrinsics(draw):
    width = draw(st.integers(8, 800))
    height = draw(st.integers(8, 600))
    return g.Intrinsics(
        draw(st.floats(50.0, 1000.0)),
        draw(st.floats(50.0, 1000.0)),
        draw(st.floats(0.0, width - 1.0)),
        draw(st.floats(0.0, height - 1.0)),
        width,
        height,
    )


def test_intrinsics_K_and_from_K():
    K = g.Intrinsics(500.0, 510.0, 319.5, 239.5, 640, 480)
    np.testing.assert_array_equal(K.K, [[500, 0, 319.5], [0, 510, 239.5], [0, 0, 1]])
    assert g.Intrinsics.from_K(K.K, 640, 480) == K
    assert K.shape == (480, 640)


@pytest.mark.parametrize(
    "kwargs, parameter",
    [
        (dict(fx=0.0), "K.fx"),
        (dict(fy=-1.0), "K.fy"),
        (dict(cx=float("nan")), "K.cx"),
        (dict(cy=float("inf")), "K.cy"),
        (dict(width=0), "K.width"),
        (dict(height=2.5), "K.height"),
    ],
)
def test_intrinsics_reject_bad_fields(kwargs, parameter):
    base = dict(fx=500.0, fy=500.0, cx=320.0, cy=240.0, width=640, height=480)
    with pytest.raises(InvalidInput) as err:
        g.Intrinsics(**{**base, **kwargs})
    assert err.value.parameter == parameter


def test_from_K_rejects_skew_and_shape():
    with pytest.raises(InvalidInput, match="K"):
        g.Intrinsics.from_K(np.eye(4), 10, 10)
    skewed = np.array([[500.0, 1.0, 320.0], [0.0, 500.0, 240.0], [0.0, 0.0, 1.0]])
    with pytest.raises(InvalidInput, match="K"):
        g.Intrinsics.from_K(skewed, 640, 480)


@settings(max_examples=50, deadline=None)
@given(K=intrinsics(), stride=st.sampled_from([1, 2, 4, 8]))
def test_scaled_intrinsics_match_block_centres(K, stride):
    """A ray through a block's centre pixel hits that latent cell's centre on the scaled grid."""
    Ks = K.scaled(stride)
    assert (Ks.height, Ks.width) == (K.height // stride, K.width // stride)
    i, j = np.mgrid[0 : Ks.height, 0 : Ks.width]
    u_centre = stride * j + (stride - 1) / 2.0
    v_centre = stride * i + (stride - 1) / 2.0
    rays = np.stack([(u_centre - K.cx) / K.fx, (v_centre - K.cy) / K.fy, np.ones_like(u_centre)], -1)
    uv, _ = g.project(rays.reshape(-1, 3), Ks)
    np.testing.assert_allclose(uv[:, 0], j.ravel(), atol=1e-6)
    np.testing.assert_allclose(uv[:, 1], i.ravel(), atol=1e-6)


def test_scaled_rejects_bad_stride():
    K = g.Intrinsics(100.0, 100.0, 8.0, 8.0, 16, 16)
    for stride in (0, -2, 2.0, 17):
        with pytest.raises(InvalidInput, match="stride"):
            K.scaled(stride)


@settings(max_examples=50, deadline=None)
@given(K=intrinsics(), z=st.floats(0.1, 50.0), seed=st.integers(0, 2**31))
def test_project_backproject_round_trip(K, z, seed):
    depth = np.random.default_rng(seed).uniform(0.1, z + 0.1, K.shape)
    points = g.backproject(depth, K)
    uv, zz = g.project(points.reshape(-1, 3), K)
    u, v = g.pixel_grid(K)
    np.testing.assert_allclose(uv[:, 0], u.ravel(), atol=1e-6)
    np.testing.assert_allclose(uv[:, 1], v.ravel(), atol=1e-6)
    np.testing.assert_allclose(zz, depth.ravel(), rtol=1e-12)


def test_project_behind_camera_is_nan():
    K = g.Intrinsics(100.0, 100.0, 50.0, 50.0, 100, 100)
    uv, z = g.project(np.array([[0.0, 0.0, -1.0], [0.0, 0.0, 0.0], [0.0, 0.0, 2.0]]), K)
    assert np.isnan(uv[:2]).all() and np.allclose(uv[2], [50, 50])
    np.testing.assert_array_equal(z, [-1, 0, 2])


def test_backproject_shape_mismatch():
    K = g.Intrinsics(100.0, 100.0, 50.0, 50.0, 100, 100)
    with pytest.raises(InvalidInput, match="depth"):
        g.backproject(np.ones((50, 100)), K)


@settings(max_examples=50, deadline=None)
@given(T_a_b=poses(), T_b_c=poses(), seed=st.integers(0, 2**31))
def test_invert_compose_identities(T_a_b, T_b_c, seed):
    np.testing.assert_allclose(g.compose(T_a_b, g.invert_pose(T_a_b)), np.eye(4), atol=1e-9)
    np.testing.assert_allclose(g.invert_pose(g.invert_pose(T_a_b)), T_a_b, atol=1e-9)
    T_a_c = g.compose(T_a_b, T_b_c)
    np.testing.assert_allclose(g.invert_pose(T_a_c), g.compose(g.invert_pose(T_b_c), g.invert_pose(T_a_b)), atol=1e-9)
    p_c = np.random.default_rng(seed).normal(size=(5, 3))
    np.testing.assert_allclose(
        g.transform_points(T_a_c, p_c), g.transform_points(T_a_b, g.transform_points(T_b_c, p_c)), atol=1e-9
    )
    g.check_pose(T_a_c)


@settings(max_examples=50, deadline=None)
@given(T=poses())
def test_pose_quaternion_round_trip(T):
    t, q = g.pose_to_tq(T)
    assert q[0] >= 0 and math.isclose(np.linalg.norm(q), 1.0, rel_tol=1e-9)
    np.testing.assert_allclose(g.pose_from_tq(t, q), T, atol=1e-9)
    np.testing.assert_allclose(g.quat_xyzw_to_wxyz(g.quat_wxyz_to_xyzw(q)), q)
    np.testing.assert_allclose(g.quat_wxyz_to_xyzw(q), [q[1], q[2], q[3], q[0]])


def test_pose_validation():
    with pytest.raises(InvalidInput, match="quat_wxyz"):
        g.pose_from_tq([0, 0, 0], [0, 0, 0, 0])
    bad = np.eye(4)
    bad[0, 3] = np.nan
    with pytest.raises(InvalidInput, match="T_world_cam"):
        g.check_pose(bad)
    with pytest.raises(InvalidInput, match="T_x"):
        g.check_pose(np.diag([1.0, 1.0, 2.0, 1.0]), "T_x")
    with pytest.raises(InvalidInput):
        g.check_pose(np.diag([1.0, 1.0, -1.0, 1.0]))


def test_link_optical_maps_optical_axis_to_forward():
    z_optical = g.transform_points(g.T_LINK_OPTICAL, np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]))
    np.testing.assert_allclose(z_optical, [[1, 0, 0], [0, -1, 0]])  # forward; right = -y (left)
    g.check_pose(g.T_LINK_OPTICAL)


def test_pool_depth_does_not_blend_across_an_edge():
    depth = np.full((8, 8), 4.0, np.float32)
    depth[:, :3] = 1.0  # foreground covers 3/8 of the block
    depth[0, 0] = 0.2  # a lone flying pixel in front
    depth[1, 1] = np.nan
    depth[2, 2] = -1.0
    depth[3, 3] = np.inf
    assert g.pool_depth(depth, 8)[0, 0] == pytest.approx(1.0)
    depth[:, :3] = 4.0  # no foreground: background depth
    assert g.pool_depth(depth, 8)[0, 0] == pytest.approx(4.0)


def test_pool_depth_slanted_surface_gives_median_and_invalid_block_zero():
    ramp = np.linspace(2.0, 2.3, 16, dtype=np.float32)[None, :].repeat(4, 0)
    pooled = g.pool_depth(ramp, 4)
    np.testing.assert_allclose(pooled[0], [np.median(ramp[:, 4 * k : 4 * k + 4]) for k in range(4)], rtol=1e-6)
    empty = np.zeros((4, 8), np.float32)
    empty[:, 4:] = np.nan
    np.testing.assert_array_equal(g.pool_depth(empty, 4), [[0.0, 0.0]])


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31), stride=st.sampled_from([2, 4, 8]))
def test_pool_depth_value_is_a_block_reading(seed, stride):
    """Pooling never invents a depth outside the block's valid range (no cross-edge average)."""
    rng = np.random.default_rng(seed)
    depth = rng.choice([0.5, 3.0], size=(2 * stride, 3 * stride)) + rng.normal(0, 0.001, (2 * stride, 3 * stride))
    depth[rng.random(depth.shape) < 0.2] = 0.0
    pooled = g.pool_depth(depth.astype(np.float32), stride)
    for (i, j), value in np.ndenumerate(pooled):
        block = depth[i * stride : (i + 1) * stride, j * stride : (j + 1) * stride]
        valid = block[block > 0]
        if valid.size == 0:
            assert value == 0.0
        else:
            near = valid[valid < 1.5] if (valid < 1.5).sum() >= 0.25 * valid.size else valid[valid > 1.5]
            assert near.min() - 1e-6 <= value <= near.max() + 1e-6


def test_pool_mask_fraction():
    mask = np.zeros((4, 8), bool)
    mask[0, 0] = True
    np.testing.assert_allclose(g.pool_mask(mask, 4), [[1 / 16, 0.0]])


def test_upsample_cells_repeats_each_cell_and_fills_the_ragged_edge():
    cells = np.array([[1, 2], [3, 4]], np.float32)
    zero = g.upsample_cells(cells, 2, (5, 5))
    np.testing.assert_array_equal(zero[:4, :4], np.kron(cells, np.ones((2, 2))))
    assert not zero[4].any() and not zero[:, 4].any()
    edge = g.upsample_cells(cells, 2, (5, 5), repeat_edge=True)
    np.testing.assert_array_equal(edge[4, :4], [3, 3, 4, 4])
    np.testing.assert_array_equal(edge[:4, 4], [2, 2, 4, 4])


def test_register_depth_without_motion_keeps_every_reading():
    K = g.Intrinsics(30.0, 30.0, 15.5, 11.5, 32, 24)
    depth = np.random.default_rng(0).uniform(0.5, 4.0, K.shape).astype(np.float32)
    depth[3, 4], depth[5, 6] = np.nan, 0.0
    registered = g.register_depth(depth, K, np.eye(4), K)
    assert registered.dtype == np.float32 and registered.shape == K.shape
    np.testing.assert_allclose(registered[g.valid_depth(depth)], depth[g.valid_depth(depth)], rtol=1e-6)
    assert registered[3, 4] == 0 and registered[5, 6] == 0


def test_register_depth_into_a_finer_colour_camera_beside_it_matches_its_own_view():
    """A 80x60 depth camera 5 cm to the side (slightly turned) of a 160x120 colour camera with other
    intrinsics, in a box room: the registered depth is the colour camera's own depth, without holes
    away from the strip the depth camera does not see."""
    from helpers.scene import box_room_depth, look_at

    K_colour, K_depth = g.Intrinsics(120.0, 118.0, 80.3, 59.1, 160, 120), g.Intrinsics(55.0, 55.0, 39.5, 29.5, 80, 60)
    T_world_colour = look_at([0.2, -0.3, 0.1], [3.0, 0.4, -0.2])
    T_colour_depth = np.eye(4)
    T_colour_depth[:3, :3] = euler2mat(0.0, 0.02, 0.01)
    T_colour_depth[:3, 3] = [0.05, 0.0, 0.0]
    depth = box_room_depth(K_depth, T_world_colour @ T_colour_depth)
    registered = g.register_depth(depth, K_depth, T_colour_depth, K_colour)
    truth = box_room_depth(K_colour, T_world_colour)
    seen = registered > 0
    assert seen[5:-5, 5:-5].mean() > 0.99
    assert np.abs(registered[seen] - truth[seen]).max() < 0.02 * truth[seen].max()
    assert np.median(np.abs(registered[seen] - truth[seen])) < 0.005


def test_register_depth_hides_what_a_nearer_surface_covers_and_leaves_the_unseen_empty():
    K = g.Intrinsics(40.0, 40.0, 31.5, 23.5, 64, 48)
    depth = np.full(K.shape, 4.0, np.float32)
    depth[16:32, 24:40] = 1.0  # a near square in front of a far wall
    T_target_depth = np.eye(4)
    T_target_depth[0, 3] = 0.1  # the target is 10 cm to the depth camera's left
    registered = g.register_depth(depth, K, T_target_depth, K)
    # the near square moves 40 * 0.1 / 1 = 4 px, the wall 1 px: the square still hides the wall
    np.testing.assert_array_equal(registered[18:30, 29:43], 1.0)
    # the wall beside the square's old left edge was behind it for the depth camera: no reading
    assert (registered[18:30, 25:28] == 0).all()
    np.testing.assert_array_equal(registered[:, 1:20], 4.0)
    with pytest.raises(InvalidInput, match="max_footprint"):
        g.register_depth(depth, K, T_target_depth, K, max_footprint=0)


def test_valid_depth_within_a_range():
    depth = np.array([[np.nan, 0.0, 0.3, 1.0], [5.9, 6.0, np.inf, -1.0]], np.float32)
    np.testing.assert_array_equal(g.valid_depth(depth), [[False, False, True, True], [True, True, False, False]])
    np.testing.assert_array_equal(g.valid_depth(depth, 0.4, 6.0), [[False, False, False, True], [True, False, False, False]])
