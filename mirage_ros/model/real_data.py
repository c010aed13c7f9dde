"""Memory-conditioned training sequences from recorded RGB-D frames with ground-truth poses.

A real camera is what the product serves: its texture, noise, exposure and depth holes are what
the encoder and renderer must handle. Sequences are TUM RGB-D folders (``evaluation.tum_source``,
the reader of ``mirage-ros eval``); each frame's cells are lifted as the runtime memory lifts them
(``memory_data.lift_frames``) and ``memory_data.MemoryTargets`` samples the targets.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from mirage_ros import geometry as g
from mirage_ros.errors import InvalidInput
from mirage_ros.evaluation.sources import SourceOptions
from mirage_ros.evaluation.tum_source import open_tum
from mirage_ros.memory.config import MemoryConfig
from mirage_ros.model.config import RealDataConfig
from mirage_ros.model.memory_data import MemoryTargets, Sequence, lift_frames
from mirage_ros.model.networks import NetworkConfig


def load_sequence(folder: Path, camera: str, every: int, stride: int, progress: bool = False
                  ) -> tuple[dict, g.Intrinsics]:
    """Host arrays of one TUM folder for ``Sequence.from_arrays`` (every ``every``-th frame), and
    its camera. Raises ``InvalidInput("real.sequences")`` for a folder that is not there."""
    if not Path(folder).is_dir():
        raise InvalidInput("real.sequences", f"no such folder: {folder}")
    recording = open_tum(Path(folder), SourceOptions(tum_camera=camera))
    stamps = []

    def usable(frames):
        for n, frame in enumerate(frames):
            if n % every:
                continue
            if frame.rgb.shape[0] % stride or frame.rgb.shape[1] % stride:  # the networks need multiples
                raise InvalidInput("real.sequences", f"{folder}: {frame.rgb.shape[1]}x{frame.rgb.shape[0]} "
                                   f"images are not multiples of the stride {stride}")
            stamps.append(frame.stamp)
            yield frame

    frames = tqdm(recording.frames(), total=len(recording.stamps), desc=f"read {Path(folder).name}",
                  disable=not progress, dynamic_ncols=True)
    data = lift_frames(usable(frames), stride, MemoryConfig(channels=1, stride=stride))
    if len(stamps) < 2:
        raise InvalidInput("real.sequences", f"{folder}: {len(stamps)} usable frames, need at least 2")
    return {**data, "rate_hz": 1.0 / float(np.median(np.diff(stamps)))}, recording.K


def real_targets(cfg: RealDataConfig, net: NetworkConfig, rank: int, world: int, device: torch.device,
                 progress: bool = True) -> MemoryTargets:
    """Memory-conditioned targets on this rank's share of ``cfg.sequences`` (every rank reads them
    all when there are fewer sequences than ranks: a batch is still drawn per rank and step) and
    the held-out ``cfg.val_sequences`` on rank 0."""
    folders = list(cfg.sequences)
    mine = folders[rank::world] if len(folders) >= world else folders
    held = list(cfg.val_sequences) if rank == 0 else []
    loaded = [load_sequence(Path(f), cfg.camera, cfg.every, net.stride, progress) for f in mine + held]
    cameras = {(K.fx, K.fy, K.cx, K.cy, K.width, K.height) for _, K in loaded}
    if len(cameras) > 1:
        raise InvalidInput("real.sequences", f"sequences of one run must share a camera, got {sorted(cameras)}")
    sequences = [Sequence.from_arrays(data, device) for data, _ in loaded]
    return MemoryTargets(cfg, sequences[: len(mine)], sequences[len(mine):], loaded[0][1], net.stride,
                         "real_val", device)
