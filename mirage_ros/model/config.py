"""Training configuration: ``config/train.yaml`` -> typed dataclasses, with ``--set`` overrides."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from mirage_ros.errors import InvalidInput
from mirage_ros.model.networks import NetworkConfig


@dataclass
class OptimConfig:
    """AdamW with linear warm-up then cosine decay to ``lr * final_lr_fraction`` at ``max_steps``."""

    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 200
    max_steps: int = 10000
    final_lr_fraction: float = 0.05
    grad_clip: float = 1.0


@dataclass
class LossConfig:
    """Weights of the image loss terms (see ``model.losses.ImageLoss``)."""

    l1: float = 1.0
    ssim: float = 0.2
    gradient: float = 0.1


@dataclass
class NaturalConfig:
    """Reconstruction of natural images (random crops, random latent holes to fill)."""

    enabled: bool = True
    batch_size: int = 8
    crop: int = 128
    hole_fraction: float = 0.4
    image_dirs: list = field(default_factory=lambda: ["skimage", "matplotlib"])
    heldout: list = field(default_factory=lambda: [
        "chelsea.png", "coffee.png", "rocket.jpg", "grace_hopper.jpg", "camera.png"])
    val_max_side: int = 384


@dataclass
class SimDataConfig:
    """Memory-conditioned targets from simulated camera paths (see ``model.sim_data``).

    Each seed gives one sequence per scene family; path, actors and sensor noise cycle over the
    seeds. ``gaps_s``: 0 = revisit (target pose seen before), > 0 = future view that far ahead of
    the newest frame in memory. ``workers``: rendering processes (0 = one per CPU core).
    ``voxel_size`` (metres) and ``max_weight``: the memory's fusion of the context frames
    (``memory.MemoryConfig`` fields of the same names); the export records them in the manifest
    and ``WorldModel`` runs its memory with them, so the renderer sees at run time the fusion it
    was trained on.
    """

    enabled: bool = True
    batch_size: int = 8
    width: int = 320
    height: int = 240
    rate_hz: float = 4.0
    frames_per_sequence: int = 400
    scenes: list = field(default_factory=lambda: ["corridor", "office", "warehouse"])
    paths: list = field(default_factory=lambda: ["loop", "forward", "pan"])
    actors: list = field(default_factory=lambda: [False, True])
    train_seeds: list = field(default_factory=lambda: list(range(0, 8)))
    val_seeds: list = field(default_factory=lambda: [1000])
    context_frames: int = 8
    gaps_s: list = field(default_factory=lambda: [0.0, 0.5, 1.0, 2.0])
    workers: int = 0
    voxel_size: float = 0.05
    max_weight: float = 20.0

    def __post_init__(self) -> None:
        if not self.voxel_size > 0:
            raise ValueError(f"voxel_size: must be > 0, got {self.voxel_size}")
        if not self.max_weight >= 1:
            raise ValueError(f"max_weight: must be >= 1, got {self.max_weight}")


@dataclass
class ScheduleConfig:
    """When to log, validate, checkpoint and stop (whichever of steps / time comes first)."""

    log_every: int = 50
    val_every: int = 500
    checkpoint_every: int = 500
    time_budget_s: float = 0.0  # 0 = no time limit


@dataclass
class TrainConfig:
    """Everything ``mirage-ros train`` needs; ``seed`` fixes data, init and sampling."""

    seed: int = 0
    device: str = "auto"
    deterministic: bool = False
    out_dir: str = "runs/train"
    network: NetworkConfig = field(default_factory=NetworkConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    natural: NaturalConfig = field(default_factory=NaturalConfig)
    sim: SimDataConfig = field(default_factory=SimDataConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _build(cls, data: dict, prefix: str):
    if not isinstance(data, dict):
        raise InvalidInput(prefix or "config", f"must be a mapping, got {type(data).__name__}")
    known = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in data.items():
        if key not in known:
            raise InvalidInput(f"{prefix}{key}", f"unknown key (known: {sorted(known)})")
        sub = known[key].default_factory if known[key].default_factory is not dataclasses.MISSING else None
        if sub is not None and dataclasses.is_dataclass(sub):
            kwargs[key] = _build(sub, value, f"{prefix}{key}.")
        else:
            kwargs[key] = _coerce(value, known[key].type, f"{prefix}{key}")
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(prefix.rstrip(".") or "config", str(exc)) from exc


def _coerce(value, annotation, name: str):
    """YAML reads ``3e-3`` as a string and ``1`` as an int: give scalars their field's type."""
    kinds = {"float": float, "int": int, "bool": bool, "str": str}
    kind = kinds.get(annotation if isinstance(annotation, str) else getattr(annotation, "__name__", ""))
    if kind is None or isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
        return value
    try:
        if kind is bool:
            raise ValueError
        converted = kind(value)
        if kind is int and converted != float(value):
            raise ValueError
        return converted
    except (TypeError, ValueError):
        raise InvalidInput(name, f"must be {kind.__name__}, got {value!r}") from None


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """Apply ``key.sub=value`` strings (value parsed as YAML) to a nested dict, in place."""
    for item in overrides:
        if "=" not in item:
            raise InvalidInput("--set", f"expected key=value, got {item!r}")
        key, raw = item.split("=", 1)
        node = data
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = yaml.safe_load(raw)
    return data


def load_config(path: str | Path, overrides: list[str] = ()) -> TrainConfig:
    """Read a YAML training config and apply ``overrides``; unknown keys raise ``InvalidInput``."""
    path = Path(path)
    if not path.is_file():
        raise InvalidInput("--config", f"no such file: {path}")
    data = yaml.safe_load(path.read_text()) or {}
    return _build(TrainConfig, apply_overrides(data, list(overrides)), "")


def config_from_dict(data: dict) -> TrainConfig:
    """Rebuild a ``TrainConfig`` from ``to_dict()`` output (checkpoints and manifests store it)."""
    return _build(TrainConfig, data, "")
