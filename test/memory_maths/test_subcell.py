"""Sub-cell placement (memory_maths/subcell.py): the graph against a scipy reference, and its effect on a
real warp of a simulated frame through the shipped networks and the latent memory."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from scipy import ndimage

from mirage_ros import graphs
from mirage_ros.errors import InvalidInput
from mirage_ros.evaluation.metrics import psnr
from mirage_ros.geometry import upsample_cells
from mirage_ros.memory.last_frame import LastFrameWarp
from mirage_ros.pipeline import memory_config_for
from mirage_ros.runtime.networks import Networks
from mirage_ros.sim import SimConfig, Simulator


def placed_reference(rgb: np.ndarray, offset: np.ndarray, stride: int) -> np.ndarray:
    """``(3, H, W)`` image warped by the bilinear offset field (module doc), with scipy."""
    height, width = rgb.shape[1:]
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    cells = [(y + 0.5) / stride - 0.5, (x + 0.5) / stride - 0.5]
    du, dv = (ndimage.map_coordinates(o, cells, order=1, mode="nearest") for o in offset)
    source = [y - stride * dv, x - stride * du]
    return np.stack([ndimage.map_coordinates(c, source, order=1, mode="nearest") for c in rgb])


@pytest.fixture(scope="module")
def shift_session():
    return ort.InferenceSession(str(graphs.path(graphs.SUBCELL)), providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("stride", [4, 8])
def test_graph_matches_reference(shift_session, stride):
    rng = np.random.default_rng(stride)
    h, w = 7, 9
    rgb = rng.random((1, 3, h * stride, w * stride), dtype=np.float32)
    offset = rng.uniform(-0.5, 0.5, (1, 2, h, w)).astype(np.float32)
    out = shift_session.run(None, {"rgb": rgb, "offset": offset})[0]
    np.testing.assert_allclose(out[0], placed_reference(rgb[0], offset[0], stride), atol=1e-5)
    assert np.abs(out - rgb).max() > 0.3  # it moved something


def test_zero_offset_is_identity_and_a_uniform_one_translates(shift_session):
    rgb = np.random.default_rng(0).random((1, 3, 16, 24), dtype=np.float32)
    still = shift_session.run(None, {"rgb": rgb, "offset": np.zeros((1, 2, 4, 6), np.float32)})[0]
    np.testing.assert_allclose(still, rgb, atol=1e-5)
    half_cell_right = np.zeros((1, 2, 4, 6), np.float32)
    half_cell_right[0, 0] = 0.5  # 2 px at stride 4
    moved = shift_session.run(None, {"rgb": rgb, "offset": half_cell_right})[0]
    np.testing.assert_allclose(moved[..., 2:], rgb[..., :-2], atol=1e-5)


@pytest.fixture(scope="module")
def networks():
    """The shipped networks, rendering with placement (their manifest leaves it off)."""
    return Networks.load(provider="cpu", subcell_placement=True)


def test_placement_sharpens_a_warped_view(networks):
    """The last frame's latents warped 0.2 s ahead along a corridor: drawing each cell where its
    point lands must beat drawing it on the cell centre (measured +1.6 dB on held-out seeds)."""
    sim = Simulator(SimConfig(scene="corridor", seed=1000, width=320, height=240, rate_hz=5.0,
                              path="loop", actors=False))
    warp = LastFrameWarp(memory_config_for(networks), "cpu")
    gains = []
    for index in (10, 30, 50):
        source, target = sim.frame_at(index), sim.frame_at(index + 1)
        warp.insert(networks.encode(source.rgb), source.depth, source.K, source.T_world_cam, source.stamp)
        readout = warp.read_out(target.T_world_cam, target.K)
        covered = upsample_cells(readout.valid, networks.stride, target.K.shape)
        placed = networks.render(readout, target.K.shape)
        centred = networks.render_arrays(readout.latent, readout.valid, readout.depth)
        gains.append(psnr(placed, target.rgb, covered) - psnr(centred, target.rgb, covered))
    assert np.mean(gains) > 0.5, gains


def test_placement_follows_the_manifest(networks):
    shipped = Networks.load(provider="cpu")
    assert shipped.subcell_placement is False  # trained without it: renders as before
    latent = np.random.default_rng(0).normal(size=(networks.channels, 6, 8)).astype(np.float32)
    valid, depth, offset = np.ones((6, 8)), np.full((6, 8), 2.0), np.full((2, 6, 8), 0.4)
    np.testing.assert_array_equal(shipped.render_arrays(latent, valid, depth, offset),
                                  shipped.render_arrays(latent, valid, depth))
    assert np.abs(networks.render_arrays(latent, valid, depth, offset).astype(int)
                  - shipped.render_arrays(latent, valid, depth).astype(int)).max() > 0


def test_bad_offset_names_the_parameter(networks):
    latent = np.zeros((networks.channels, 6, 8), np.float32)
    with pytest.raises(InvalidInput, match="offset"):
        networks.render_arrays(latent, np.ones((6, 8)), np.ones((6, 8)), np.zeros((2, 8, 6)))


def test_torch_mirror_matches_the_graph(shift_session):
    """Training places cells with ``place_subcell_torch`` (a batch): the same warp as the shipped graph."""
    torch = pytest.importorskip("torch")
    from mirage_ros.memory_maths.subcell import place_subcell_torch

    rng = np.random.default_rng(1)
    rgb = rng.random((3, 3, 24, 32), dtype=np.float32)
    offset = rng.uniform(-0.5, 0.5, (3, 2, 6, 8)).astype(np.float32)
    graph = shift_session.run(None, {"rgb": rgb, "offset": offset})[0]
    mirror = place_subcell_torch(torch.from_numpy(rgb), torch.from_numpy(offset)).numpy()
    np.testing.assert_allclose(mirror, graph, atol=1e-5)
