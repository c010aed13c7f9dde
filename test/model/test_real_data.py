"""The ``real`` training task on recorded frames: the TUM fr1_rpy clip (test/data, CC BY 4.0)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from helpers.tiny_training import TINY

from mirage_ros.errors import InvalidInput
from mirage_ros.model.config import load_config
from mirage_ros.model.train import Trainer

REPO = Path(__file__).resolve().parents[2]
CLIP = REPO / "test/data/rgbd_dataset_freiburg1_rpy_clip"
REAL = ["real.enabled=true", f"real.sequences=[{CLIP}]", f"real.val_sequences=[{CLIP}]", "real.batch_size=2",
        "real.context_frames=3", "real.camera=fr1", "natural.enabled=false"]


def test_real_batches_train_through_the_memory_at_full_resolution(tmp_path):
    cfg = load_config(REPO / "config/train.yaml", TINY + REAL + ["optim.max_steps=2"])
    trainer = Trainer(cfg, tmp_path, "test")
    task = trainer.memory_tasks["real"]
    assert task.train[0].n_frames == 8 and 9 < task.train[0].rate_hz < 11  # every 3rd frame at 30 Hz
    batch = trainer.batch(0)["real"]
    assert batch["context_rgb"].shape == (2, 3, 3, 480, 640)
    loss, parts = trainer.nets({"real": batch})
    loss.backward()
    assert float(trainer.nets.encoder.body[0].weight.grad.abs().sum()) > 0
    trainer.train()
    val = trainer.validate()
    # the memory of one real frame read out at its own pose covers the frame but for the cells
    # without depth (about a fifth here; fixed 5 cm voxels covered 9 % of these frames)
    assert val["real_val_same_pose_coverage"] > 0.7
    assert 5 < val["real_val_psnr"] < 60 and "real_val_psnr_gap0s" in val


def test_same_seed_and_step_give_the_same_real_batch(tmp_path):
    cfg = load_config(REPO / "config/train.yaml", TINY + REAL)
    first, second = Trainer(cfg, tmp_path / "a", "test"), Trainer(cfg, tmp_path / "b", "test")
    a, b = first.batch(3)["real"], second.batch(3)["real"]
    for key in ("context_rgb", "context_points", "context_ok", "target_rgb"):
        assert torch.equal(a[key], b[key]), key
    assert not torch.equal(a["context_rgb"], first.batch(4)["real"]["context_rgb"])


def test_missing_sequence_folder_names_the_parameter(tmp_path):
    cfg = load_config(REPO / "config/train.yaml", TINY + REAL[:1] + [f"real.sequences=[{tmp_path / 'nope'}]"])
    with pytest.raises(InvalidInput, match="real.sequences"):
        Trainer(cfg, tmp_path, "test")


def test_enabled_without_sequences_is_refused():
    with pytest.raises(InvalidInput, match="real"):
        load_config(REPO / "config/train.yaml", ["real.sequences=[]"])


def test_lifted_cells_follow_depth(tmp_path):
    from mirage_ros.model.real_data import load_sequence

    data, K = load_sequence(CLIP, "fr1", every=1, stride=4)
    assert data["points"].shape == (8, 120 * 160, 3) and K.fx == pytest.approx(517.3)
    ok = data["ok"]
    distance = np.linalg.norm(data["points"] - data["poses"][:, None, :3, 3], axis=-1)
    # a cell's point lies further than its depth along the axis, never nearer
    assert (distance[ok] >= data["cell_depth"][ok] - 1e-4).all() and 0.5 < ok.mean() <= 1
