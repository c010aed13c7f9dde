"""Real frames in the suite: a clip of TUM RGB-D fr1_rpy (Kinect, 640x480, CC BY 4.0;
test/data/rgbd_dataset_freiburg1_rpy_clip/README.md) guards the memory's same-pose coverage and
the evaluation pipeline on a real camera. Cut by scripts/cut_tum_clip.py."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from mirage_ros import geometry as g
from mirage_ros.cli import main as cli_main
from mirage_ros.evaluation.recordings import open_recording
from mirage_ros.memory import LatentMemory, MemoryConfig

CLIP = Path(__file__).parent / "data" / "rgbd_dataset_freiburg1_rpy_clip"
#: Regression floor of the shipped networks' same-pose PSNR on covered cells of the clip
SAME_POSE_PSNR_COVERED_MIN = 32.0


def test_each_real_frame_read_out_at_its_pose_covers_its_cells():
    """One frame into an empty memory, read out where it was taken: >= 95 % of the cells with
    depth (0.98 when written; fixed 5 cm voxels: 0.05)."""
    frames = list(open_recording(CLIP).frames())
    assert len(frames) == 8 and frames[0].rgb.shape == (480, 640, 3)
    cfg = MemoryConfig(channels=2, stride=4, capacity_points=50_000, readout_min_count=1, carve=False)
    rng = np.random.default_rng(0)
    for frame in frames:
        memory = LatentMemory(cfg, provider="cpu")
        memory.insert(rng.normal(size=(2, 120, 160)).astype(np.float32), frame.depth, frame.K,
                      frame.T_world_cam, frame.stamp)
        pooled = g.pool_depth(np.where(frame.depth > 0, frame.depth, np.nan), 4)
        has_depth = (pooled > cfg.min_depth) & (pooled < cfg.max_depth)
        assert has_depth.mean() > 0.5
        assert memory.read_out(frame.T_world_cam, frame.K).valid[has_depth].mean() >= 0.95


def test_eval_of_the_real_clip(tmp_path):
    """The whole evaluation on real frames: our world model with the shipped networks beside the
    free warp of the newest frame; every number finite, our memory covering the views."""
    out = tmp_path / "report"
    assert cli_main(["eval", str(CLIP), "--out", str(out), "--methods", "latent_memory", "rgb_frame_warp_direct",
                     "--horizons", "0.3", "--query-every", "0.2", "--provider", "cpu", "--no-progress",
                     "--same-pose-every", "4"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["recording"]["details"]["intrinsics"] == "TUM preset fr1"
    assert report["planned"]["future"] == 2 and report["frames_replayed"] == 8
    rows = {r["method"]: r for r in report["summary"]}
    ours, free = rows["latent_memory"], rows["rgb_frame_warp_direct"]
    assert np.isfinite([ours["future@0.3s.psnr"], free["future@0.3s.psnr"], ours["future@0.3s.ssim"]]).all()
    assert ours["future@0.3s.coverage"] > 0.25  # 0.30 when written (fixed 5 cm voxels: 0.02)
    assert (out / "report.html").is_file() and any((out / "figures").glob("example_*.png"))
    # the shipped networks on one real frame at its own pose (frames 0 and 4)
    same = report["same_pose"]
    assert same["n"] == 2 and same["coverage"] > 0.95
    assert same["psnr_covered"] > SAME_POSE_PSNR_COVERED_MIN and np.isfinite(same["psnr"])


def test_same_pose_every_must_not_be_negative(tmp_path, capsys):
    assert cli_main(["eval", str(CLIP), "--out", str(tmp_path / "r"), "--same-pose-every", "-1",
                     "--methods", "latent_memory", "--no-progress"]) == 2
    assert "--same-pose-every" in capsys.readouterr().err
