"""Measure latent stride / channel choices: same data and time budget, held-out quality + latency.

    python -m mirage_ros.model.stride_sweep --config config/train.yaml --seconds 60 \
        --candidates 8x32 8x64 4x16 4x32 --json sweep.json

For each ``stride x channels`` candidate: train from scratch for ``--seconds`` (natural images +
memory-conditioned sim targets, as ``config/train.yaml`` says), then report held-out natural
reconstruction PSNR, held-out sim PSNR by gap, steps done, and the networks' latency at 640x480 on
the training device (torch, batch 1, fp32, median of 50 runs after warm-up). Points per frame
(memory cost) is ``(480 / s) * (640 / s)``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from mirage_ros.model.config import load_config
from mirage_ros.model.train import Trainer


@torch.no_grad()
def network_latency_ms(trainer: Trainer, height: int = 480, width: int = 640, runs: int = 50) -> dict:
    """Median encoder / renderer latency in ms for one ``height x width`` frame on the device."""
    nets, dev = trainer.nets.eval(), trainer.device
    s, c = trainer.cfg.network.stride, trainer.cfg.network.channels
    rgb = torch.rand(1, 3, height, width, device=dev)
    lat = torch.randn(1, c, height // s, width // s, device=dev)
    ones = torch.ones(1, 1, height // s, width // s, device=dev)

    def timed(fn):
        for _ in range(10):
            fn()
        times = []
        for _ in range(runs):
            if dev.type == "cuda":
                torch.cuda.synchronize()
            t = time.perf_counter()
            fn()
            if dev.type == "cuda":
                torch.cuda.synchronize()
            times.append((time.perf_counter() - t) * 1e3)
        return sorted(times)[len(times) // 2]

    out = {"encoder_ms": timed(lambda: nets.encoder(rgb)),
           "renderer_ms": timed(lambda: nets.renderer(lat, ones, 2 * ones))}
    nets.train()
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="config/train.yaml")
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--candidates", nargs="+", default=["8x32", "8x64", "4x16", "4x32"])
    p.add_argument("--set", action="append", default=[], help="extra config overrides")
    p.add_argument("--out", default="runs/sweep")
    p.add_argument("--json", default=None, help="write the results here too")
    args = p.parse_args(argv)
    results = []
    for cand in args.candidates:
        stride, channels = (int(x) for x in cand.split("x"))
        cfg = load_config(args.config, args.set + [
            f"network.stride={stride}", f"network.channels={channels}",
            f"schedule.time_budget_s={args.seconds}", "schedule.val_every=1000000",
            "schedule.checkpoint_every=1000000"])
        trainer = Trainer(cfg, Path(args.out) / cand, f"stride_sweep {cand}")
        t0 = time.monotonic()
        run = trainer.train()
        val = trainer.validate()
        rec = {"stride": stride, "channels": channels, "steps": run["step"],
               "train_seconds": round(time.monotonic() - t0, 1),
               "points_per_frame_640x480": (480 // stride) * (640 // stride),
               **network_latency_ms(trainer), **val}
        results.append(rec)
        print(json.dumps(rec), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"seconds_each": args.seconds, "device": str(trainer.device),
                                               "overrides": args.set, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
