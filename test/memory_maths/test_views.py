"""The glue around the networks (``memory_maths.views``): the same steps on both backends (torch
eager, the shipped ONNX graphs on ORT CPU), checked against the rules written out here."""

import numpy as np
import torch

from mirage_ros import graphs
from mirage_ros.memory_maths import views
from mirage_ros.memory_maths.torch_ops import TorchOps
from mirage_ros.runtime.session import create_session


def _readouts():
    """Memory and newest read-outs of one view, 4 cells: each case of the overlay rule."""
    memory = (np.zeros((1, 2, 1, 4), np.float32), np.array([[[True, True, True, False]]]),
              np.array([[[2.0, 2.0, 1.0, 0.0]]], np.float32), np.full((1, 2, 1, 4), -0.25, np.float32))
    newest = (np.ones((1, 2, 1, 4), np.float32), np.array([[[True, False, True, True]]]),
              np.array([[[2.05, 0.0, 2.0, 3.0]]], np.float32), np.full((1, 2, 1, 4), 0.25, np.float32))
    return memory, newest


def test_newest_frame_overlays_the_memory_where_it_sees_the_surface():
    memory, newest = _readouts()
    xp = TorchOps()
    latent, valid, depth, offset = (t.numpy() for t in views.overlay(
        xp, [torch.from_numpy(a) for a in memory], [torch.from_numpy(a) for a in newest]))
    # within tolerance: newest; newest has nothing: memory; memory point nearer: memory (it
    # occludes); memory has nothing: newest
    np.testing.assert_array_equal(latent[0, 0, 0], [1.0, 0.0, 0.0, 1.0])
    np.testing.assert_array_equal(offset[0, 1, 0], [0.25, -0.25, -0.25, 0.25])
    np.testing.assert_allclose(depth[0, 0], [2.05, 2.0, 1.0, 3.0])
    assert valid.all()
    # the shipped graph: the same overlay, and the renderer's inputs (holes: valid 0, depth 0)
    session = create_session(graphs.path(graphs.VIEW_INPUTS), "cpu")
    names = ("latent", "valid", "depth", "offset")
    out = dict(zip([o.name for o in session.get_outputs()], session.run(None, {
        **dict(zip(names, memory)), **{f"newest_{n}": a for n, a in zip(names, newest)}})))
    np.testing.assert_array_equal(out["render_latent"], latent)
    np.testing.assert_array_equal(out["cell_depth"], depth)
    np.testing.assert_array_equal(out["cell_offset"], offset)
    np.testing.assert_array_equal(out["render_valid"][:, 0], np.ones((1, 1, 4), np.float32))
    nothing = [np.zeros_like(a) for a in newest]
    out = dict(zip([o.name for o in session.get_outputs()], session.run(None, {
        **dict(zip(names, memory)), **{f"newest_{n}": a for n, a in zip(names, nothing)}})))
    np.testing.assert_array_equal(out["render_valid"][0, 0, 0], [1.0, 1.0, 1.0, 0.0])
    np.testing.assert_array_equal(out["cell_valid"], memory[1])


def test_renderer_inputs_drop_cells_without_a_finite_positive_depth():
    depth = np.array([[[2.0, 0.0, -1.0, np.nan, np.inf, 0.5]]], np.float32)
    valid = np.array([[[True, True, True, True, True, False]]])
    latent = np.ones((1, 3, 1, 6), np.float32)
    _, drawn, metres = (t.numpy() for t in views.renderer_inputs(
        TorchOps(), torch.from_numpy(latent), torch.from_numpy(valid), torch.from_numpy(depth)))
    session = create_session(graphs.path(graphs.VIEW_INPUTS), "cpu")
    memory = {"latent": latent, "valid": valid, "depth": depth, "offset": np.zeros((1, 2, 1, 6), np.float32)}
    out = session.run(["render_valid", "render_depth"],
                      {**memory, **{f"newest_{n}": np.zeros_like(a) for n, a in memory.items()}})
    for drawn, metres in ((drawn, metres), out):
        np.testing.assert_array_equal(drawn[0, 0, 0], [1, 0, 0, 0, 0, 0])
        np.testing.assert_array_equal(metres[0, 0, 0], [2.0, 0, 0, 0, 0, 0])


def test_images_in_and_out_match_numpy():
    rgb = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    image = create_session(graphs.path(graphs.IMAGE_IN), "cpu").run(None, {"rgb": rgb})[0]
    np.testing.assert_array_equal(image, rgb.transpose(2, 0, 1)[None].astype(np.float32) / 255.0)
    rendered = np.random.default_rng(1).uniform(-0.2, 1.2, (2, 3, 5, 7)).astype(np.float32)
    rendered[0, 0, 0, :3] = [127.5 / 255.0, 0.0, 1.0]
    out = create_session(graphs.path(graphs.IMAGE_OUT), "cpu").run(None, {"rgb": rendered})[0]
    expected = (np.clip(rendered, 0.0, 1.0).transpose(0, 2, 3, 1) * 255.0 + 0.5).astype(np.uint8)
    np.testing.assert_array_equal(out, expected)
    torch_out = views.image_out(TorchOps(), torch.from_numpy(rendered)).numpy()
    np.testing.assert_array_equal(torch_out, expected)
