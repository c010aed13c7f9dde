"""Multi-GPU training scaling: the same config under ``torchrun`` on 1, 2, ... GPUs.

Each run sees the same number of training samples (steps shrink as the world grows, since every
rank draws its own batch), so the validation PSNRs at the end are comparable. Throughput is taken
from the run's own ``log.jsonl`` between the first logged step after warm-up and the last one, so
process start-up and the simulator's sequence pre-rendering are not counted.

    python -m mirage_ros.bench.train_scaling --gpus 1 2 --samples 24000 --json

prints one row per GPU count: samples/s, scaling (vs the 1-GPU row of the same run), efficiency
and the validation metrics after the same number of samples.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from mirage_ros.model.config import load_config

# NVLink multicast stays off in every process (the lent machines do not support it reliably).
NO_MULTICAST = {"NCCL_NVLS_ENABLE": "0", "TORCH_SYMM_MEM_DISABLE_MULTICAST": "1",
                "NVSHMEM_DISABLE_NVLS": "1"}


def samples_per_rank_step(config: Path, overrides: list[str]) -> int:
    """Training samples one rank consumes per optimiser step (natural crops + sim targets)."""
    cfg = load_config(config, overrides)
    return (cfg.natural.batch_size if cfg.natural.enabled else 0) + (
        cfg.sim.batch_size if cfg.sim.enabled else 0)


def throughput(recs: list[dict], per_step: int, warmup_step: int) -> float:
    """Samples/s from ``log.jsonl`` records, excluding steps before ``warmup_step``."""
    timed = [r for r in recs if "seconds" in r and r["step"] >= warmup_step]
    if len(timed) < 2:
        raise RuntimeError(f"fewer than two timed log records after step {warmup_step}")
    first, last = timed[0], timed[-1]
    return (last["step"] - first["step"]) * per_step / (last["seconds"] - first["seconds"])


def run(gpus: int, steps: int, per_rank: int, args, out: Path) -> dict:
    """One ``torchrun`` training run; returns its row of the table."""
    sets = list(args.set) + [f"optim.max_steps={steps}", f"schedule.val_every={steps}",
                             f"schedule.checkpoint_every={steps}", "schedule.time_budget_s=0",
                             f"schedule.log_every={args.log_every}", f"device={args.device}"]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           "--nproc-per-node", str(gpus), "-m", "mirage_ros.cli", "train",
           "--config", str(args.config), "--out", str(out), "--no-export"]
    for s in sets:
        cmd += ["--set", s]
    env = dict(os.environ, **NO_MULTICAST)
    print(f"[scaling] {gpus} GPU(s), {steps} steps: {' '.join(cmd)}", file=sys.stderr, flush=True)
    # the trainers' own stdout goes to stderr so that ours stays one JSON document
    subprocess.run(cmd, env=env, check=True, stdout=sys.stderr)
    per_step = gpus * per_rank
    recs = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    val = [r["val"] for r in recs if "val" in r]
    return {"gpus": gpus, "steps": steps, "samples": steps * per_step,
            "samples_per_s": throughput(recs, per_step, 2 * args.log_every),
            "val": val[-1] if val else {}}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--gpus", type=int, nargs="+", default=[1, 2], help="GPU counts (default: 1 2)")
    p.add_argument("--samples", type=int, default=24000, help="training samples per run")
    p.add_argument("--config", type=Path, default=Path("config/train.yaml"))
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="config overrides passed to every run")
    p.add_argument("--log-every", type=int, default=25)
    p.add_argument("--device", default="cuda", help="cuda (NCCL) or cpu (gloo, for a dry run)")
    p.add_argument("--out", type=Path, default=Path("runs/scaling"))
    p.add_argument("--json", action="store_true", help="print the table as JSON")
    args = p.parse_args(argv)
    per_rank = samples_per_rank_step(args.config, args.set)
    rows = []
    for gpus in args.gpus:
        steps = max(1, args.samples // (gpus * per_rank))
        rows.append(run(gpus, steps, per_rank, args, args.out / f"gpus{gpus}"))
    base = next((r["samples_per_s"] for r in rows if r["gpus"] == 1), None)
    for r in rows:
        if base:
            r["scaling"] = r["samples_per_s"] / base
            r["efficiency"] = r["scaling"] / r["gpus"]
    if args.json:
        print(json.dumps({"rows": rows, "samples_per_rank_step": per_rank}, indent=2))
    else:
        for r in rows:
            print(f"{r['gpus']} GPU: {r['samples_per_s']:.0f} samples/s, "
                  f"scaling {r.get('scaling', float('nan')):.2f}x, val {r['val']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
