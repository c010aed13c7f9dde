"""Measure network sizes: the same data and wall-clock budget each, held-out fidelity and latency.

    python -m mirage_ros.model.sweep --config config/train.yaml --seconds 240 --parallel 3 \
        --candidates 4x16x32 4x24x48 4x32x64 --json sweep.json

A candidate is ``stride x channels x width``. Each trains from scratch with ``mirage-ros train``
(the config's tasks: natural photographs, simulated and real memory-conditioned targets) for
``--seconds``, up to ``--parallel`` at a time on the one device (the networks are small: runs side
by side use a GPU that one run leaves idle; every run gets the same wall-clock budget, so a larger
network does fewer steps, as it would in a fixed budget). The simulated sequences are rendered
once, before the runs, into a shared cache. Reported per candidate: steps done, the last held-out
validation (natural, sim and real: PSNR by gap, same pose after one frame), parameters, and
latency of the exported ONNX networks through ONNX Runtime on the CPU with 2 threads (the 2-core
robot) at 320x240 and 640x480, and of the torch networks on the training device at 640x480.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from mirage_ros.model.config import load_config
from mirage_ros.model.networks import Encoder, NetworkConfig, Renderer

SIZES_HW = ((240, 320), (480, 640))


def parse_candidate(text: str) -> tuple[int, int, int]:
    """``"4x16x32"`` -> ``(stride, channels, width)``."""
    parts = text.split("x")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise SystemExit(f"--candidates: expected STRIDExCHANNELSxWIDTH, got {text!r}")
    return int(parts[0]), int(parts[1]), int(parts[2])


def _median_ms(fn, runs: int, sync=lambda: None) -> float:
    for _ in range(3):
        fn()
    times = []
    for _ in range(runs):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        times.append((time.perf_counter() - start) * 1e3)
    return float(np.median(times))


@torch.no_grad()
def torch_latency_ms(checkpoint: Path, device: torch.device, runs: int = 50) -> dict:
    """Median torch encoder / renderer ms for one 640x480 frame on ``device`` (fp32, batch 1)."""
    state = torch.load(checkpoint, map_location=device, weights_only=False)
    net = NetworkConfig(**{k: state["config"]["network"][k] for k in NetworkConfig.__dataclass_fields__})
    encoder, renderer = Encoder(net).to(device).eval(), Renderer(net).to(device).eval()
    h, w = SIZES_HW[1]
    rgb = torch.rand(1, 3, h, w, device=device)
    latent = torch.randn(1, net.channels, h // net.stride, w // net.stride, device=device)
    ones = torch.ones_like(latent[:, :1])
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    return {"torch_encoder_ms_640x480": _median_ms(lambda: encoder(rgb), runs, sync),
            "torch_renderer_ms_640x480": _median_ms(lambda: renderer(latent, ones, 2 * ones), runs, sync),
            "parameters": sum(p.numel() for p in (*encoder.parameters(), *renderer.parameters()))}


def onnx_cpu_latency_ms(weights_dir: Path, threads: int = 2, runs: int = 10) -> dict:
    """Median ONNX Runtime (CPU, ``threads`` threads) encode / render ms at each of ``SIZES_HW``."""
    from mirage_ros.runtime.networks import Networks

    nets = Networks.load(weights_dir, provider="cpu", threads=threads)
    out = {}
    for h, w in SIZES_HW:
        rgb = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
        latent = nets.encode(rgb)
        valid = np.ones(latent.shape[1:], bool)
        depth = np.full(latent.shape[1:], 2.0, np.float32)
        out[f"cpu{threads}_encoder_ms_{w}x{h}"] = _median_ms(lambda: nets.encode(rgb), runs)
        out[f"cpu{threads}_renderer_ms_{w}x{h}"] = _median_ms(lambda: nets.render_arrays(latent, valid, depth), runs)
    return out


def last_validation(checkpoint: Path) -> tuple[int, dict]:
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    vals = [h["val"] for h in state["history"] if "val" in h]
    return state["step"], (vals[-1] if vals else {})


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="config/train.yaml")
    p.add_argument("--seconds", type=float, default=240.0, help="training budget of each candidate")
    p.add_argument("--candidates", nargs="+", default=["4x16x32", "4x24x48", "4x32x64"])
    p.add_argument("--parallel", type=int, default=1, help="runs at a time on the device")
    p.add_argument("--set", action="append", default=[], help="extra config overrides (all candidates)")
    p.add_argument("--out", default="runs/sweep")
    p.add_argument("--json", default=None, help="write the results here too")
    args = p.parse_args(argv)
    out = Path(args.out)
    candidates = {c: parse_candidate(c) for c in args.candidates}
    cache = out / "sim_cache"
    common = args.set + [f"sim.cache_dir={cache}", f"schedule.time_budget_s={args.seconds}"]
    cfg = load_config(args.config, common)
    if cfg.sim.enabled:  # render once for all runs
        from mirage_ros.model.sim_data import render_sequences, sequence_specs

        specs = sequence_specs(cfg.sim, cfg.sim.train_seeds) + sequence_specs(cfg.sim, cfg.sim.val_seeds)
        strides = {s for s, _, _ in candidates.values()}
        for stride in strides:
            render_sequences(specs, stride, cfg.sim.workers, True, str(cache))
    running: list[subprocess.Popen] = []
    for name, (stride, channels, width) in candidates.items():
        while len(running) >= args.parallel:
            running.pop(0).wait()
        (out / name).mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "mirage_ros.cli", "train", "--config", args.config, "--out", str(out / name)]
        for item in common + [f"network.stride={stride}", f"network.channels={channels}",
                              f"network.width={width}", "sim.workers=1"]:
            command += ["--set", item]
        print("start", name, flush=True)
        running.append(subprocess.Popen(command, stdout=(out / name / "train.log").open("w"),
                                        stderr=subprocess.STDOUT))
    for proc in running:
        proc.wait()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    results = []
    for name, (stride, channels, width) in candidates.items():
        checkpoint = out / name / "last.pt"
        if not checkpoint.is_file():
            print(f"{name}: no checkpoint, see {out / name / 'train.log'}", flush=True)
            continue
        steps, val = last_validation(checkpoint)
        rec = {"candidate": name, "stride": stride, "channels": channels, "width": width, "steps": steps,
               **torch_latency_ms(checkpoint, device), **onnx_cpu_latency_ms(out / name / "export"), **val}
        results.append(rec)
        print(json.dumps(rec), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({
            "seconds_each": args.seconds, "parallel": args.parallel, "device": str(device),
            "gpu": torch.cuda.get_device_name(0) if device.type == "cuda" else None,
            "config": args.config, "overrides": args.set, "results": results}, indent=2) + "\n")
    return 0 if len(results) == len(candidates) else 1


if __name__ == "__main__":
    raise SystemExit(main())
