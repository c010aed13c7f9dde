"""ONNX loading of the networks: sha256 verification, encode/render shapes, parity with torch."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from mirage_ros.errors import InvalidInput
from mirage_ros.memory import Readout
from mirage_ros.model.export import export_networks
from mirage_ros.model.networks import Encoder, NetworkConfig, Renderer
from mirage_ros.runtime.networks import WEIGHTS_DIR, Networks, WeightsError, verified_manifest, weights_path

CFG = NetworkConfig(stride=8, channels=6, width=8, renderer_levels=1)


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory) -> Path:
    """Randomly initialised tiny networks exported like the shipped ones (manifest included)."""
    out = tmp_path_factory.mktemp("weights")
    torch.manual_seed(0)
    entries = export_networks(Encoder(CFG), Renderer(CFG), CFG.stride, CFG.channels, out)
    manifest = {"network": {"stride": CFG.stride, "channels": CFG.channels}, **entries}
    (out / "manifest.json").write_text(json.dumps(manifest))
    return out


def test_encode_render_shapes_and_torch_parity(tiny_weights):
    nets = Networks.load(tiny_weights, provider="cpu")
    rgb = np.random.default_rng(0).integers(0, 256, (70, 83, 3), dtype=np.uint8)
    latent = nets.encode(rgb)
    assert latent.shape == (6, 8, 10) and latent.dtype == np.float32  # ragged edge cropped
    valid = np.ones((8, 10), bool)
    valid[2:5, 3:7] = False
    out = nets.render_arrays(latent, valid, np.full((8, 10), 2.0, np.float32))
    assert out.shape == (64, 80, 3) and out.dtype == np.uint8
    assert nets.manifest["parity_max_abs_diff"]["encoder"] < 1e-4


def test_device_stages_match_the_networks_run_on_host_arrays(tiny_weights):
    """Image in, overlay-free read-out to renderer inputs, 8-bit image out: the graphs around the
    networks do what the numpy below does (holes, NaN and inf depths drawn as holes)."""
    nets = Networks.load(tiny_weights, provider="cpu")
    rng = np.random.default_rng(2)
    rgb = rng.integers(0, 256, (64, 80, 3), dtype=np.uint8)
    encoder = nets._encoder.session
    expected = encoder.run(None, {"rgb": rgb.transpose(2, 0, 1)[None].astype(np.float32) / 255.0})[0][0]
    np.testing.assert_array_equal(nets.encode(rgb), expected)
    latent = rng.normal(size=(2, 6, 8, 10)).astype(np.float32)
    valid = rng.random((2, 8, 10)) > 0.3
    depth = rng.uniform(0.5, 4.0, (2, 8, 10)).astype(np.float32)
    depth[0, 0, :3] = [np.nan, np.inf, -1.0]
    images = nets.render_views([Readout(*a) for a in zip(latent, valid, depth)])
    clean = np.nan_to_num(depth, nan=0.0, posinf=0.0)
    drawn = (valid & (clean > 0)).astype(np.float32)
    out = nets._renderer.session.run(None, {"latent": latent, "valid": drawn[:, None], "depth": (clean * drawn)[:, None]})[0]
    np.testing.assert_array_equal(np.stack(images), (np.clip(out, 0, 1).transpose(0, 2, 3, 1) * 255.0 + 0.5).astype(np.uint8))


def test_invalid_cells_are_ignored(tiny_weights):
    """Latent values in holes must not leak into the image (the memory leaves garbage there)."""
    nets = Networks.load(tiny_weights, provider="cpu")
    rng = np.random.default_rng(1)
    latent = rng.normal(size=(6, 4, 5)).astype(np.float32)
    valid = rng.random((4, 5)) > 0.5
    depth = np.where(valid, 1.5, 0.0).astype(np.float32)
    noisy = latent + np.where(valid, 0.0, 100.0).astype(np.float32)
    np.testing.assert_array_equal(nets.render_arrays(latent, valid, depth),
                                  nets.render_arrays(noisy, valid, depth))


def test_bad_inputs_name_the_parameter(tiny_weights):
    nets = Networks.load(tiny_weights, provider="cpu")
    with pytest.raises(InvalidInput, match="rgb"):
        nets.encode(np.zeros((16, 16, 3), np.float32))
    with pytest.raises(InvalidInput, match="valid"):
        nets.render_arrays(np.zeros((6, 2, 2), np.float32), np.ones((3, 2)), np.ones((2, 2)))
    with pytest.raises(InvalidInput, match="latent"):
        nets.render_arrays(np.zeros((5, 2, 2), np.float32), np.ones((2, 2)), np.ones((2, 2)))


def test_sha256_mismatch_fails_clearly(tiny_weights, tmp_path):
    broken = tmp_path / "w"
    shutil.copytree(tiny_weights, broken)
    blob = bytearray((broken / "renderer.onnx").read_bytes())
    blob[-1] ^= 0xFF
    (broken / "renderer.onnx").write_bytes(bytes(blob))
    with pytest.raises(WeightsError, match="sha256 mismatch.*renderer.onnx"):
        Networks.load(broken)
    (broken / "renderer.onnx").unlink()
    with pytest.raises(WeightsError, match="renderer weights file missing"):
        Networks.load(broken)
    with pytest.raises(WeightsError, match="no weights manifest"):
        Networks.load(tmp_path / "nowhere")


def test_shipped_weights_verify_and_run():
    manifest = verified_manifest(WEIGHTS_DIR)
    nets = Networks.load(provider="cpu")
    s = nets.stride
    assert s == manifest["network"]["stride"] in (4, 8)
    rgb = np.full((240, 320, 3), 128, np.uint8)
    latent = nets.encode(rgb)
    assert latent.shape == (nets.channels, 240 // s, 320 // s)
    assert np.isfinite(latent).all()
    assert max(manifest["parity_max_abs_diff"].values()) < 1e-4


def test_shipped_networks_are_chosen_by_name():
    """``weights_dir`` takes ``standard`` / ``light`` (the lighter renderer for CPU robots); both
    read and write the same memory (stride, channels), so they share saved memories."""
    assert weights_path(None) == weights_path("") == weights_path("standard") == WEIGHTS_DIR
    light, standard = Networks.load("light", provider="cpu"), Networks.load("standard", provider="cpu")
    assert light.manifest["network"]["width"] < standard.manifest["network"]["width"]
    assert (light.stride, light.channels) == (standard.stride, standard.channels)
    assert light.renders_batches
    sources = {s["name"] for s in light.manifest["training"]["data"]["sources"]}
    assert any("TUM" in name for name in sources) and any("Kodak" in name for name in sources)
