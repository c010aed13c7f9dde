"""``mirage-ros train``: config-driven training of encoder + renderer, CPU or (multi-)GPU.

One process per GPU under ``torchrun`` (DistributedDataParallel; each rank draws its own batches
from ``seed, rank, step``), or a single process on CPU / one GPU. Only rank 0 writes checkpoints,
logs and progress bars. Every batch is a pure function of ``(seed, rank, step)``, so ``--resume``
continues exactly where the last checkpoint stopped (bit-exact on CPU; on CUDA up to cuDNN's
non-deterministic kernels unless ``deterministic: true``). Training stops at ``optim.max_steps``
or after ``schedule.time_budget_s`` seconds, whichever comes first, always with a checkpoint; at
the end the networks are exported to ONNX with a manifest (``model.export``).
"""

from __future__ import annotations

import json
import math
import os
import shlex
import time
from pathlib import Path

import numpy as np
import torch
from torch import distributed as dist
from tqdm import tqdm

from mirage_ros.errors import InvalidInput
from mirage_ros.evaluation import metrics
from mirage_ros.model import natural as nat
from mirage_ros.model.config import TrainConfig, config_from_dict, load_config
from mirage_ros.model.losses import ImageLoss
from mirage_ros.model.tasks import WorldModelNets

NATURAL_DEPTH_RANGE_M = (0.5, 6.0)  # natural images have no depth: the renderer sees a constant


def setup_distributed(device: str) -> tuple[int, int, torch.device]:
    """``(rank, world_size, device)``; joins the process group when launched by ``torchrun``."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device not in ("cpu", "cuda"):
        raise InvalidInput("device", f"must be auto, cpu or cuda, got {device!r}")
    if device == "cuda":
        if not torch.cuda.is_available():
            raise InvalidInput("device", "cuda requested but torch sees no GPU")
        torch.cuda.set_device(local)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device == "cuda" else "gloo")
    return rank, world, torch.device(device, local) if device == "cuda" else torch.device("cpu")


class Trainer:
    """Owns networks, optimiser, data sources and the checkpoint directory ``out_dir``."""

    def __init__(self, cfg: TrainConfig, out_dir: Path, command: str):
        self.cfg = cfg
        self.out = Path(out_dir)
        self.command = command
        self.rank, self.world, self.device = setup_distributed(cfg.device)
        torch.manual_seed(cfg.seed)
        if cfg.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
            torch.backends.cudnn.benchmark = False
        else:
            torch.backends.cudnn.benchmark = True
        self.natural_train, self.natural_val = self._load_natural()
        self.memory_tasks = self._load_memory_tasks()
        loss = ImageLoss(cfg.loss.l1, cfg.loss.ssim, cfg.loss.gradient)
        readers = {name: task.read_memory for name, task in self.memory_tasks.items()}
        self.nets = WorldModelNets(cfg.network, loss, readers)
        # what a fine-tune started from: the export writes it into the manifest (reproducibility)
        self.initialised_from: dict | None = None
        if cfg.init_weights:
            from mirage_ros.model.export import load_onnx_weights

            start = load_onnx_weights(self.nets.encoder, self.nets.renderer, Path(cfg.init_weights))
            self.initialised_from = {"weights": cfg.init_weights,
                                     "sha256": {name: start["files"][name]["sha256"] for name in ("encoder", "renderer")},
                                     "command": start.get("training", {}).get("command")}
        self.nets.to(self.device)
        self.model = self.nets
        if self.world > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.model = torch.nn.parallel.DistributedDataParallel(self.nets, device_ids=ids)
        self.opt = torch.optim.AdamW(self.nets.parameters(), lr=cfg.optim.lr,
                                     weight_decay=cfg.optim.weight_decay)
        self._budget_used = 0.0  # fraction of this invocation's time budget spent (all ranks agree)
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, self._lr_factor)
        self.step = 0
        self.train_seconds = 0.0  # accumulated over resumes; GPU seconds when on CUDA
        self.history: list[dict] = []

    # ----------------------------------------------------------------- data
    def _load_natural(self):
        c = self.cfg.natural
        if not c.enabled:
            return None, None
        train, held = nat.load_natural_images(c.image_dirs, c.heldout, min_size=c.crop)
        return list(train.values()), held

    def _load_memory_tasks(self) -> dict:
        """``sim`` and ``real`` memory-conditioned targets (``model.memory_data.MemoryTargets``), as enabled."""
        tasks = {}
        progress = self.rank == 0
        if self.cfg.sim.enabled:
            from mirage_ros.model.sim_data import sim_targets

            tasks["sim"] = sim_targets(self.cfg.sim, self.cfg.network, self.rank, self.world, self.device, progress)
        if self.cfg.real.enabled:
            from mirage_ros.model.real_data import real_targets

            tasks["real"] = real_targets(self.cfg.real, self.cfg.network, self.rank, self.world, self.device, progress)
        return tasks

    def _lr_factor(self, step: int) -> float:
        """Warm-up over ``warmup_steps``, then cosine decay to ``max_steps`` or, with
        ``schedule.lr_follows_budget``, to the end of this invocation's ``time_budget_s`` when that
        comes first (a budgeted run ends on a low learning rate wherever its step count lands; a
        resumed one decays again over its own budget)."""
        o = self.cfg.optim
        if step < o.warmup_steps:
            return (step + 1) / o.warmup_steps
        t = min(1.0, max((step - o.warmup_steps) / max(1, o.max_steps - o.warmup_steps), self._budget_used))
        return o.final_lr_fraction + (1 - o.final_lr_fraction) * 0.5 * (1 + math.cos(math.pi * t))

    def batch(self, step: int) -> dict[str, dict]:
        """The batches of ``step`` for this rank, by task: a pure function of ``(seed, rank, step)``."""
        rng = np.random.default_rng([self.cfg.seed, self.rank, step])
        batches = {}
        s = self.cfg.network.stride
        if self.natural_train is not None:
            c = self.cfg.natural
            rgb = nat.random_crops(self.natural_train, c.batch_size, c.crop, rng)
            h = c.crop // s
            valid = nat.random_holes(c.batch_size, h, h, c.hole_fraction, rng)
            depth = rng.uniform(*NATURAL_DEPTH_RANGE_M, (c.batch_size, 1, 1, 1)).astype(np.float32)
            batches["natural"] = {"rgb": torch.from_numpy(rgb).to(self.device),
                                  "valid": torch.from_numpy(valid).to(self.device),
                                  "depth": torch.from_numpy(depth * valid).to(self.device),
                                  "weight": 1.0}
        for name, task in self.memory_tasks.items():
            batches[name] = task.train_batch(rng)
            batches[name]["weight"] = task.cfg.weight
        return batches

    # ------------------------------------------------------------ checkpoints
    def save(self, name: str = "last.pt") -> None:
        if self.rank != 0:
            return
        self.out.mkdir(parents=True, exist_ok=True)
        state = {"step": self.step, "nets": self.nets.state_dict(), "opt": self.opt.state_dict(),
                 "sched": self.sched.state_dict(), "config": self.cfg.to_dict(),
                 "train_seconds": self.train_seconds, "history": self.history,
                 "command": self.command, "device": str(self.device), "world_size": self.world,
                 "initialised_from": self.initialised_from}
        tmp = self.out / (name + ".tmp")
        torch.save(state, tmp)
        os.replace(tmp, self.out / name)

    def resume(self) -> None:
        path = self.out / "last.pt"
        if not path.is_file():
            raise InvalidInput("--resume", f"no checkpoint at {path}")
        state = torch.load(path, map_location=self.device, weights_only=False)
        if config_from_dict(state["config"]).network != self.cfg.network:
            raise InvalidInput("--resume", "checkpoint network config differs from --config")
        self.nets.load_state_dict(state["nets"])
        self.opt.load_state_dict(state["opt"])
        self.sched.load_state_dict(state["sched"])
        self.step = state["step"]
        self.train_seconds = state["train_seconds"]
        self.history = state["history"]
        self.initialised_from = state.get("initialised_from")

    # ------------------------------------------------------------ validation
    @torch.no_grad()
    def validate(self) -> dict:
        """Held-out natural reconstruction and held-out memory prediction (sim, real): PSNR / SSIM."""
        self.nets.eval()
        out: dict = {}
        if self.natural_val:
            ps, ss = [], []
            for image in self.natural_val.values():
                image = nat.centre_crop(image, self.cfg.network.stride * 4,
                                        self.cfg.natural.val_max_side)
                pred = reconstruct_numpy(self.nets, image, self.device)
                ps.append(metrics.psnr(pred, image))
                ss.append(metrics.ssim(pred, image))
            out["natural_heldout_psnr"] = float(np.mean(ps))
            out["natural_heldout_ssim"] = float(np.mean(ss))
        for name, task in self.memory_tasks.items():
            out.update(task.validate(lambda batch, name=name: self.nets.render_memory(batch, name)))
        self.nets.train()
        return out

    # ------------------------------------------------------------ main loop
    def train(self, until_step: int | None = None) -> dict:
        """Run steps until ``optim.max_steps`` (or ``until_step``, or the time budget)."""
        cfg = self.cfg
        last = cfg.optim.max_steps if until_step is None else min(until_step, cfg.optim.max_steps)
        budget = cfg.schedule.time_budget_s
        start = time.monotonic()
        seconds_at_start = self.train_seconds
        bar = tqdm(total=cfg.optim.max_steps, initial=self.step, disable=self.rank != 0,
                   desc="train", dynamic_ncols=True)
        if self.rank == 0:
            self.out.mkdir(parents=True, exist_ok=True)
        log = (self.out / "log.jsonl").open("a") if self.rank == 0 else None
        self.nets.train()
        stopped_by_time = False
        while self.step < last:
            loss, parts = self.model(self.batch(self.step))
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.optim.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(self.nets.parameters(), cfg.optim.grad_clip)
            self.opt.step()
            elapsed = self._elapsed_all_ranks(start) if budget > 0 else 0.0
            self._budget_used = elapsed / budget if budget > 0 and cfg.schedule.lr_follows_budget else 0.0
            self.sched.step()
            self.step += 1
            self.train_seconds = seconds_at_start + time.monotonic() - start
            if self.step % cfg.schedule.log_every == 0 or self.step == 1:
                rec = {"step": self.step, "loss": float(loss.detach()), "lr": self.sched.get_last_lr()[0],
                       "seconds": round(self.train_seconds, 2)}
                rec.update({f"loss_{k}": float(v.detach()) for k, v in parts.items()})
                self.history.append(rec)
                if log:
                    log.write(json.dumps(rec) + "\n")
                    log.flush()
                bar.set_postfix(loss=f"{rec['loss']:.4f}")
            if self.step % cfg.schedule.val_every == 0 or self.step == cfg.optim.max_steps:
                self._record_validation(log)
            if self.step % cfg.schedule.checkpoint_every == 0:
                self.save()
            bar.update(1)
            if budget > 0 and elapsed > budget:
                stopped_by_time = True
                break
        bar.close()
        if stopped_by_time and self.step % cfg.schedule.val_every:
            self._record_validation(log)
        self.save()
        if log:
            log.close()
            plot_history(self.history, self.out / "curves.png")
        return {"step": self.step, "stopped_by_time": stopped_by_time,
                "train_seconds": self.train_seconds}

    def _elapsed_all_ranks(self, start: float) -> float:
        """Elapsed seconds, the maximum over ranks so that all ranks stop at the same step."""
        elapsed = torch.tensor(time.monotonic() - start, dtype=torch.float64,
                               device=self.device)
        if self.world > 1:
            dist.all_reduce(elapsed, op=dist.ReduceOp.MAX)
        return float(elapsed)

    def _record_validation(self, log) -> None:
        if self.rank != 0:
            return
        rec = {"step": self.step, "val": self.validate()}
        self.history.append(rec)
        if log:
            log.write(json.dumps(rec) + "\n")
            log.flush()
        tqdm.write(f"step {self.step}: " + ", ".join(f"{k} {v:.4f}" for k, v in rec["val"].items()))


def plot_history(history: list[dict], path: Path) -> Path:
    """PNG of the training loss (left) and the validation PSNRs (right) over steps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_val) = plt.subplots(1, 2, figsize=(11, 4))
    logged = [h for h in history if "loss" in h]
    for key in sorted({k for h in logged for k in h if k.startswith("loss")}):
        ax_loss.plot([h["step"] for h in logged if key in h], [h[key] for h in logged if key in h], label=key)
    ax_loss.set(xlabel="step", ylabel="loss", yscale="log", title="training loss")
    ax_loss.legend(fontsize=8)
    vals = [h for h in history if "val" in h]
    for key in sorted({k for h in vals for k in h["val"] if "psnr" in k}):
        ax_val.plot([h["step"] for h in vals if key in h["val"]],
                    [h["val"][key] for h in vals if key in h["val"]], marker="o", label=key)
    ax_val.set(xlabel="step", ylabel="PSNR dB", title="held-out validation")
    if vals:
        ax_val.legend(fontsize=7)
    else:  # a run shorter than the validation interval
        ax_val.text(0.5, 0.5, "no validation yet", ha="center", va="center", transform=ax_val.transAxes)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


@torch.no_grad()
def reconstruct_numpy(nets: WorldModelNets, image: np.ndarray, device: torch.device) -> np.ndarray:
    """``(H, W, 3) uint8`` -> encoder -> renderer (no holes, depth 2 m) -> ``(H, W, 3) uint8``."""
    x = torch.from_numpy(image.transpose(2, 0, 1)[None] / 255.0).float().to(device)
    latent = nets.encoder(x)
    ones = torch.ones_like(latent[:, :1])
    pred = nets.renderer(latent, ones, 2.0 * ones)
    return (pred[0].permute(1, 2, 0).clamp(0, 1) * 255 + 0.5).byte().cpu().numpy()


def run_training(cfg: TrainConfig, out_dir: Path, resume: bool, command: str,
                 export: bool = True) -> dict:
    """Train (optionally resuming), then on rank 0 export ONNX + manifest to ``out_dir/export``."""
    trainer = Trainer(cfg, out_dir, command)
    if resume:
        trainer.resume()
    result = trainer.train()
    if export and trainer.rank == 0:
        from mirage_ros.model.export import export_checkpoint

        result["export"] = str(export_checkpoint(Path(out_dir) / "last.pt", Path(out_dir) / "export"))
    if trainer.world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return result


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("train", help="train encoder + renderer (torch), export ONNX")
    p.add_argument("--config", default="config/train.yaml", help="training YAML (default: %(default)s)")
    p.add_argument("--out", default=None, help="output folder (default: the config's out_dir)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config entry, e.g. --set optim.max_steps=100 (repeatable)")
    p.add_argument("--no-export", action="store_true", help="skip ONNX export at the end")
    p.set_defaults(func=_main)


def _main(args) -> int:
    cfg = load_config(args.config, args.set)
    out = Path(args.out or cfg.out_dir)
    command = "mirage-ros train " + shlex.join(_argv_of(args))
    result = run_training(cfg, out, args.resume, command, export=not args.no_export)
    print(json.dumps(result))
    return 0


def _argv_of(args) -> list[str]:
    argv = ["--config", args.config]
    if args.out:
        argv += ["--out", args.out]
    for item in args.set:
        argv += ["--set", item]
    return argv
