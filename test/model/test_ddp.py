"""DistributedDataParallel training on CPU: ``torchrun`` with 2 gloo ranks against one process.

Two ``torchrun`` launches (module fixture ``ddp``):

1. this file as the workers' script (``__main__`` below): each rank trains the tiny config for
   ``STEPS`` steps into ``straight/``, saves its own weights and logged losses to
   ``ranks/rank{r}.pt``, then trains the same run's first ``STEPS // 2`` steps into ``resumed/``;
2. the real CLI, ``mirage-ros train --resume`` on ``resumed/``, up to ``STEPS``.

The test process replays the global batch (rank 0's and rank 1's batches concatenated) in one
world-size-1 trainer and compares.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers.tiny_training import TINY

from mirage_ros.model.config import load_config
from mirage_ros.model.train import Trainer

REPO = Path(__file__).resolve().parents[2]
STEPS = 4
CONFIG = TINY + [f"optim.max_steps={STEPS}", "natural.val_max_side=32"]
RANK0_FILES = ["curves.png", "last.pt", "log.jsonl"]


def torchrun(args: list[str], log_dir: Path) -> None:
    """2 CPU ranks; each rank's stdout/stderr goes to ``log_dir/**/<rank>/std{out,err}.log``."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), str(REPO / "test")]), OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "--log-dir", str(log_dir), "--redirects", "3", *args]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    logs = "".join(f"--- {p}\n{p.read_text()[-2000:]}" for p in sorted(log_dir.rglob("std*.log")))
    assert done.returncode == 0, done.stderr[-2000:] + logs


def rank_stderr(log_dir: Path, rank: int) -> str:
    (path,) = log_dir.rglob(f"{rank}/stderr.log")
    return path.read_text()


def nets_of(checkpoint: Path) -> dict:
    return torch.load(checkpoint, weights_only=False)["nets"]


def logged_steps(out: Path) -> list[int]:
    return [rec["step"] for rec in map(json.loads, (out / "log.jsonl").read_text().splitlines())
            if "loss" in rec]


@pytest.fixture(scope="module")
def ddp(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ddp")
    torchrun([__file__, str(root)], root / "logs_workers")
    sets = [a for item in CONFIG for a in ("--set", item)]
    torchrun(["-m", "mirage_ros.cli", "train", "--config", str(REPO / "config/train.yaml"),
              "--out", str(root / "resumed"), "--resume", "--no-export", *sets], root / "logs_cli")
    return root


def assert_same_weights(actual: dict, expected: dict, atol: float = 0.0) -> None:
    assert actual.keys() == expected.keys()
    for key, value in expected.items():
        torch.testing.assert_close(actual[key], value, rtol=0, atol=atol, msg=key)


def test_ranks_hold_identical_weights(ddp):
    rank0, rank1 = (torch.load(ddp / "ranks" / f"rank{r}.pt") for r in (0, 1))
    assert_same_weights(rank1["nets"], rank0["nets"])
    # Not trivially equal: the ranks trained on different batches and moved from the init.
    assert rank0["losses"] != rank1["losses"]
    init = Trainer(load_config(REPO / "config/train.yaml", CONFIG), ddp / "unused", "test").nets
    assert not torch.equal(init.encoder.body[0].weight, rank0["nets"]["encoder.body.0.weight"])


def test_matches_one_process_with_the_global_batch(ddp, tmp_path, monkeypatch):
    """DDP averages gradients, i.e. takes the gradient of the mean of the ranks' losses: the
    same as one process on both ranks' batches concatenated (the loss is a per-pixel mean)."""
    cfg = load_config(REPO / "config/train.yaml", CONFIG)
    monkeypatch.setenv("WORLD_SIZE", "1")  # no process group: only the batches' rank changes
    monkeypatch.setenv("RANK", "1")
    as_rank1 = Trainer(cfg, tmp_path / "rank1", "test")
    monkeypatch.setenv("RANK", "0")
    single = Trainer(cfg, tmp_path / "single", "test")
    draw_rank0 = single.batch

    def global_batch(step):
        nat0, nat1 = draw_rank0(step)["natural"], as_rank1.batch(step)["natural"]
        return {"natural": {k: v if k == "weight" else torch.cat([v, nat1[k]]) for k, v in nat0.items()}}

    single.batch = global_batch
    single.train()
    ranks = [torch.load(ddp / "ranks" / f"rank{r}.pt") for r in (0, 1)]
    mean_losses = [(a + b) / 2 for a, b in zip(ranks[0]["losses"], ranks[1]["losses"])]
    single_losses = [h["loss"] for h in single.history if "loss" in h]
    assert len(single_losses) == STEPS
    assert single_losses == pytest.approx(mean_losses, abs=1e-5)
    assert_same_weights(ranks[0]["nets"], single.nets.state_dict(), atol=1e-5)


def test_only_rank0_writes_checkpoints_logs_and_the_progress_bar(ddp):
    for out in (ddp / "straight", ddp / "resumed"):
        assert sorted(p.name for p in out.iterdir()) == RANK0_FILES
        assert logged_steps(out) == list(range(1, STEPS + 1))  # each step logged once
    state = torch.load(ddp / "resumed" / "last.pt", weights_only=False)
    assert state["world_size"] == 2 and state["step"] == STEPS
    for logs in (ddp / "logs_workers", ddp / "logs_cli"):
        assert "train:" in rank_stderr(logs, 0)
        assert "train:" not in rank_stderr(logs, 1) and "it/s" not in rank_stderr(logs, 1)


def test_resume_continues_the_same_run(ddp):
    assert_same_weights(nets_of(ddp / "resumed" / "last.pt"), nets_of(ddp / "straight" / "last.pt"))


def train_each_rank(root: Path) -> None:
    """Worker side of the first launch (see the module docstring)."""
    from torch import distributed as dist

    cfg = load_config(REPO / "config/train.yaml", CONFIG)
    straight = Trainer(cfg, root / "straight", "test straight")
    straight.train()
    (root / "ranks").mkdir(exist_ok=True)
    torch.save({"nets": straight.nets.state_dict(),
                "losses": [h["loss"] for h in straight.history if "loss" in h]},
               root / "ranks" / f"rank{straight.rank}.pt")
    Trainer(cfg, root / "resumed", "test resumed").train(until_step=STEPS // 2)
    dist.barrier()  # as run_training: no rank tears the group down while another still uses it
    dist.destroy_process_group()


if __name__ == "__main__":
    train_each_rank(Path(sys.argv[1]))
