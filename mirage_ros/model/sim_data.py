"""Memory-conditioned training sequences from simulated camera paths (``model.memory_data`` samples them).

Each training seed gives one sequence per scene family; path, actors and sensor noise cycle over
the seeds. A sequence is rendered once per process (or read from ``cache_dir``, so that parallel
runs of a sweep render it once) and kept on the training device.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from mirage_ros import geometry as g
from mirage_ros.errors import InvalidInput
from mirage_ros.memory.config import MemoryConfig
from mirage_ros.model.config import SimDataConfig
from mirage_ros.model.memory_data import MemoryTargets, Sequence, lift_frames
from mirage_ros.model.networks import NetworkConfig

NOISE_CYCLE = ("none", "kinect")


@dataclass(frozen=True)
class SequenceSpec:
    """One simulated recording: ``frames`` frames of ``scene``/``seed`` at ``rate_hz``."""

    scene: str
    seed: int
    path: str
    actors: bool
    noise: str
    frames: int
    width: int
    height: int
    rate_hz: float


def sequence_specs(cfg: SimDataConfig, seeds: list[int]) -> list[SequenceSpec]:
    """Every (scene family x seed) of ``seeds``; path, actors and noise cycle over the seeds."""
    specs = []
    for k, seed in enumerate(seeds):
        for j, scene in enumerate(cfg.scenes):
            specs.append(SequenceSpec(
                scene, int(seed), cfg.paths[(k + j) % len(cfg.paths)],
                bool(cfg.actors[(k + j) % len(cfg.actors)]), NOISE_CYCLE[(k // 2 + j) % 2],
                cfg.frames_per_sequence, cfg.width, cfg.height, cfg.rate_hz))
    return specs


def render_sequence(spec: SequenceSpec, stride: int) -> dict[str, np.ndarray]:
    """Render ``spec`` and lift every frame's cells (runs in a worker process)."""
    from mirage_ros.sim import SimConfig, Simulator

    sim = Simulator(SimConfig(scene=spec.scene, seed=spec.seed, width=spec.width,
                              height=spec.height, rate_hz=spec.rate_hz, path=spec.path,
                              actors=spec.actors, noise=spec.noise))
    data = lift_frames(sim.frames(spec.frames), stride, MemoryConfig(channels=1, stride=stride))
    K = sim.K
    return {**data, "rate_hz": spec.rate_hz, "K": np.array([K.fx, K.fy, K.cx, K.cy, K.width, K.height])}


_RENDERED: dict[tuple[SequenceSpec, int], dict] = {}  # one process renders a sequence once


def _cache_file(cache_dir: str, spec: SequenceSpec, stride: int) -> Path:
    name = (f"{spec.scene}_s{spec.seed}_{spec.path}_a{int(spec.actors)}_{spec.noise}_{spec.frames}f_"
            f"{spec.width}x{spec.height}_{spec.rate_hz:g}hz_stride{stride}_v{CACHE_VERSION}.npz")
    return Path(cache_dir) / name


CACHE_VERSION = 2  # bump when render_sequence's output changes


def render_sequences(specs: list[SequenceSpec], stride: int, workers: int, progress: bool,
                     cache_dir: str = "") -> list[dict]:
    """Render ``specs`` in ``workers`` processes (0 = one per CPU core), in order.

    Kept per process; with ``cache_dir`` also on disk (``.npz`` per sequence, written atomically),
    where a later or parallel run finds them."""
    for spec in dict.fromkeys(specs):
        path = _cache_file(cache_dir, spec, stride) if cache_dir else None
        if (spec, stride) not in _RENDERED and path is not None and path.is_file():
            with np.load(path) as data:
                _RENDERED[(spec, stride)] = {k: data[k] for k in data.files}
    todo = [s for s in dict.fromkeys(specs) if (s, stride) not in _RENDERED]
    for spec, data in zip(todo, _render_all(todo, stride, workers, progress)):
        _RENDERED[(spec, stride)] = data
        if cache_dir:
            path = _cache_file(cache_dir, spec, stride)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
            np.savez(tmp, **data)
            os.replace(tmp, path)
    return [_RENDERED[(s, stride)] for s in specs]


def _render_all(specs: list[SequenceSpec], stride: int, workers: int, progress: bool):
    if not specs:
        return []
    workers = workers or os.cpu_count() or 1
    bar = tqdm(total=len(specs), desc="render sim", disable=not progress, dynamic_ncols=True)
    if workers == 1 or len(specs) == 1:
        out = []
        for spec in specs:
            out.append(render_sequence(spec, stride))
            bar.update(1)
    else:
        with ProcessPoolExecutor(min(workers, len(specs))) as pool:
            futures = [pool.submit(render_sequence, spec, stride) for spec in specs]
            out = []
            for f in futures:
                out.append(f.result())
                bar.update(1)
    bar.close()
    return out


def sim_targets(cfg: SimDataConfig, net: NetworkConfig, rank: int, world: int, device: torch.device,
                progress: bool = True) -> MemoryTargets:
    """Memory-conditioned targets on this rank's shard of the training seeds' sequences; the
    validation seeds' sequences on rank 0 only."""
    all_specs = sequence_specs(cfg, cfg.train_seeds)
    if len(all_specs) < world:
        raise InvalidInput("sim.train_seeds", f"{len(all_specs)} training sequences (scenes x "
                           f"seeds) for {world} ranks: every rank needs at least one")
    train_specs = all_specs[rank::world]  # per-rank shard
    val_specs = sequence_specs(cfg, cfg.val_seeds) if rank == 0 else []
    rendered = render_sequences(train_specs + val_specs, net.stride, cfg.workers, progress, cfg.cache_dir)
    fx, fy, cx, cy, w, h = rendered[0]["K"]
    sequences = [Sequence.from_arrays(r, device) for r in rendered]
    return MemoryTargets(cfg, sequences[: len(train_specs)], sequences[len(train_specs):],
                         g.Intrinsics(fx, fy, cx, cy, int(w), int(h)), net.stride, "sim_val", device)
