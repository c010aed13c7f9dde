"""Training loop, losses and export of the torch networks (CPU, tiny sizes, seconds)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers.tiny_training import TINY

from mirage_ros.errors import InvalidInput
from mirage_ros.evaluation import metrics
from mirage_ros.model.config import load_config
from mirage_ros.model.export import export_checkpoint, sha256_file
from mirage_ros.model.losses import GaussianBlur
from mirage_ros.model.networks import Encoder, NetworkConfig, Renderer
from mirage_ros.model.train import Trainer

REPO = Path(__file__).resolve().parents[2]


def tiny_trainer(tmp_path: Path, steps: int, extra: tuple = ()) -> Trainer:
    cfg = load_config(REPO / "config/train.yaml", TINY + [f"optim.max_steps={steps}", *extra])
    return Trainer(cfg, tmp_path, "test")


def test_shipped_config_loads_and_rejects_unknown_keys():
    cfg = load_config(REPO / "config/train.yaml")
    assert cfg.network.stride in (4, 8)
    with pytest.raises(InvalidInput, match="optim.nonsense"):
        load_config(REPO / "config/train.yaml", ["optim.nonsense=1"])
    with pytest.raises(InvalidInput, match="readout_min_count"):
        load_config(REPO / "config/train.yaml", ["real.readout_min_count=-1"])


def test_network_shapes_follow_stride():
    for stride in (4, 8):
        cfg = NetworkConfig(stride=stride, channels=6, width=8, renderer_levels=2)
        latent = Encoder(cfg)(torch.rand(2, 3, 48, 64))
        assert latent.shape == (2, 6, 48 // stride, 64 // stride)
        ones = torch.ones_like(latent[:, :1])
        rgb = Renderer(cfg)(latent, ones, ones)
        assert rgb.shape == (2, 3, 48, 64) and 0 <= float(rgb.detach().min()) <= float(rgb.detach().max()) <= 1


def test_torch_ssim_matches_numpy_metric():
    rng = np.random.default_rng(0)
    a = rng.random((24, 32, 3))
    b = np.clip(a + rng.normal(0, 0.1, a.shape), 0, 1)
    ta, tb = (torch.from_numpy(x.transpose(2, 0, 1)[None]) for x in (a, b))
    blur = GaussianBlur().double()
    torch_map = metrics.ssim_map(ta, tb, blur).mean().item()
    assert torch_map == pytest.approx(metrics.ssim(a, b), abs=1e-6)


def test_tiny_training_lowers_the_loss(tmp_path):
    trainer = tiny_trainer(tmp_path, steps=40, extra=("natural.hole_fraction=0",))
    # One image: 40 steps are enough to fit it, so a working loop must lower the loss a lot.
    trainer.natural_train = trainer.natural_train[:1]
    natural = trainer.batch(0)["natural"]

    def fixed_loss():
        with torch.no_grad():
            return float(trainer.nets({"natural": natural})[0])

    before = fixed_loss()
    trainer.train()
    after = fixed_loss()
    assert after < 0.85 * before, (before, after)
    logged = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert any("val" in rec and "natural_heldout_psnr" in rec["val"] for rec in logged)


def test_resume_continues_exactly(tmp_path):
    straight = tiny_trainer(tmp_path / "a", steps=6)
    straight.train()
    first = tiny_trainer(tmp_path / "b", steps=6)
    first.train(until_step=3)
    resumed = tiny_trainer(tmp_path / "b", steps=6)
    resumed.resume()
    assert resumed.step == 3
    resumed.train()
    for key, value in straight.nets.state_dict().items():
        assert torch.equal(value, resumed.nets.state_dict()[key]), key


def test_time_budget_stops_with_a_checkpoint(tmp_path):
    trainer = tiny_trainer(tmp_path, steps=100000, extra=("schedule.time_budget_s=1",))
    result = trainer.train()
    assert result["stopped_by_time"] and 0 < result["step"] < 100000
    assert (tmp_path / "last.pt").is_file()


def test_export_parity_and_manifest(tmp_path):
    trainer = tiny_trainer(tmp_path, steps=2)
    trainer.train()
    manifest_path = export_checkpoint(tmp_path / "last.pt", tmp_path / "export")
    manifest = json.loads(manifest_path.read_text())
    for name in ("encoder", "renderer"):
        entry = manifest["files"][name]
        assert entry["sha256"] == sha256_file(tmp_path / "export" / entry["file"])
        assert entry["opset"] >= 18 and entry["ir_version"] <= 13
        assert manifest["parity_max_abs_diff"][name] < 1e-4
    assert manifest["training"]["steps"] == 2
    assert manifest["training"]["command"] == "test"
    # the batch is dynamic: views along a path render in one call, as they do one by one
    from mirage_ros.memory import Readout
    from mirage_ros.runtime.networks import Networks

    nets = Networks.load(tmp_path / "export", provider="cpu")
    assert nets.renders_batches
    rng = np.random.default_rng(0)
    readouts = [Readout(rng.normal(size=(nets.channels, 6, 8)).astype(np.float32), rng.random((6, 8)) > 0.3,
                        rng.uniform(0.5, 4, (6, 8)).astype(np.float32)) for _ in range(3)]
    batch = nets.render_views(readouts)
    for readout, image in zip(readouts, batch):
        assert np.abs(image.astype(int) - nets.render(readout).astype(int)).max() <= 1
    # exported again from the ONNX files alone: the same networks, the training record kept
    from mirage_ros.model.export import reexport_weights

    again = json.loads(reexport_weights(tmp_path / "export", tmp_path / "again").read_text())
    assert again["training"] == manifest["training"] and again["metrics"] == manifest["metrics"]
    copy = Networks.load(tmp_path / "again", provider="cpu")
    np.testing.assert_array_equal(copy.render_views(readouts), nets.render_views(readouts))


def test_memory_conditioned_sim_batches_train_the_encoder_through_read_out(tmp_path):
    sim = ["sim.enabled=true", "natural.enabled=false", "sim.width=64", "sim.height=48",
           "sim.frames_per_sequence=12", "sim.scenes=[office]", "sim.train_seeds=[0]",
           "sim.val_seeds=[1000]", "sim.batch_size=2", "sim.context_frames=3", "sim.workers=1",
           "sim.gaps_s=[0.0, 0.5]"]
    trainer = tiny_trainer(tmp_path, steps=2, extra=tuple(sim))
    batch = trainer.batch(0)["sim"]
    assert batch["context_rgb"].shape == (2, 3, 3, 48, 64)
    loss, parts = trainer.nets({"sim": batch})
    loss.backward()
    grad = trainer.nets.encoder.body[0].weight.grad
    assert grad is not None and float(grad.abs().sum()) > 0  # gradients flow through the warp
    trainer.train()
    val = trainer.validate()
    assert 5 < val["sim_val_psnr"] < 60 and "sim_val_psnr_covered" in val


def test_fewer_sim_sequences_than_ranks_names_the_parameter():
    from mirage_ros.model.sim_data import sim_targets

    cfg = load_config(REPO / "config/train.yaml", ["sim.scenes=[office]", "sim.train_seeds=[0]"])
    with pytest.raises(InvalidInput, match="sim.train_seeds"):
        sim_targets(cfg.sim, cfg.network, rank=1, world=2, device=torch.device("cpu"))


def test_a_time_budget_decays_the_learning_rate_to_its_end(tmp_path):
    trainer = tiny_trainer(tmp_path, steps=100000, extra=("schedule.time_budget_s=2", "schedule.lr_follows_budget=true"))
    trainer.train()
    lrs = [h["lr"] for h in trainer.history if "lr" in h]
    # far from max_steps, yet the cosine reached its floor when the budget ran out
    assert lrs[-1] < 0.1 * max(lrs) and trainer.step < 100000


def test_training_can_start_from_exported_weights(tmp_path):
    first = tiny_trainer(tmp_path / "a", steps=2)
    first.train()
    export_checkpoint(tmp_path / "a" / "last.pt", tmp_path / "a" / "export")
    second = tiny_trainer(tmp_path / "b", steps=2, extra=(f"init_weights={tmp_path / 'a' / 'export'}",))
    for key, value in second.nets.encoder.state_dict().items():
        # the export stores float16: the start is the trained weights, rounded
        assert torch.allclose(value, first.nets.encoder.state_dict()[key].half().float()), key
    # the fine-tune's manifest names the weights it started from
    second.train()
    start = json.loads((tmp_path / "a" / "export" / "manifest.json").read_text())
    manifest = json.loads(export_checkpoint(tmp_path / "b" / "last.pt", tmp_path / "b" / "export").read_text())
    assert manifest["training"]["initialised_from"]["sha256"] == {
        name: start["files"][name]["sha256"] for name in ("encoder", "renderer")}
    assert json.loads(export_checkpoint(tmp_path / "a" / "last.pt", tmp_path / "a2").read_text()
                      )["training"]["initialised_from"] is None
    with pytest.raises(InvalidInput, match="init_weights"):
        tiny_trainer(tmp_path / "c", steps=2, extra=(f"init_weights={REPO / 'mirage_ros/weights'}",))
