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
class AugmentConfig:
    """Sensor realism for the context frames of memory-conditioned targets (``model.augment``).

    Colour: a per-sample exposure (gain within ``2**+-exposure_stops``), white balance (per-channel
    gains within ``1 +- white_balance``) and gamma (``1 +- gamma``) shared by context and target
    (the renderer must draw the colours it is given, not a fixed look); then, for a
    ``probability`` share of the samples (the others keep clean context frames), per context frame an
    exposure flicker (``2**+-flicker_stops``), read + shot noise (sigma up to ``noise``), motion
    blur (``blur_probability``, up to ``blur_max_px`` long), rolling-shutter shear
    (``shear_probability``, up to ``shear_max`` pixel per row) and JPEG (``jpeg_probability``,
    quality in ``jpeg_quality``). Depth of the context cells: the quantisation steps of Kinect and
    RealSense sensors (``depth_quantisation_probability``), holes (up to ``depth_hole_fraction``
    of the cells) and flying pixels at depth edges (``flying_pixel_probability``).
    """

    enabled: bool = True
    probability: float = 0.5
    exposure_stops: float = 0.5
    white_balance: float = 0.1
    gamma: float = 0.1
    flicker_stops: float = 0.1
    noise: float = 0.03
    blur_probability: float = 0.3
    blur_max_px: int = 9
    shear_probability: float = 0.3
    shear_max: float = 0.03
    jpeg_probability: float = 0.5
    jpeg_quality: list = field(default_factory=lambda: [30, 95])
    depth_quantisation_probability: float = 0.5
    depth_hole_fraction: float = 0.15
    flying_pixel_probability: float = 0.5

    def __post_init__(self) -> None:
        for name in ("probability", "blur_probability", "shear_probability", "jpeg_probability",
                     "depth_quantisation_probability", "depth_hole_fraction", "flying_pixel_probability"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name}: must be in [0, 1], got {getattr(self, name)}")
        low, high = (list(self.jpeg_quality) + [0, 0])[:2]
        if len(self.jpeg_quality) != 2 or not 1 <= low <= high <= 100:
            raise ValueError(f"jpeg_quality: must be [low, high] within 1..100, got {self.jpeg_quality}")


@dataclass
class MemoryTaskConfig:
    """Memory-conditioned targets (``model.memory_data``), whatever the source of the sequences.

    ``batch_size`` targets per step, each predicted from ``context_frames`` frames lifted into a
    memory; ``gaps_s``: 0 = revisit (target pose seen before), > 0 = future view that far ahead of
    the newest frame in memory. ``voxel_size`` (finest edge, metres), ``voxel_per_footprint`` and
    ``max_weight``: the memory's fusion of the context (``memory.MemoryConfig`` fields of the same
    names; the defaults are the runtime's, so the renderer is trained on the fusion it sees);
    ``readout_min_count``: the read-out draws only voxels fused from this many cells or more (the
    runtime memory's default, ``memory.MemoryConfig``); ``newest_overlay``: the newest context
    frame's own points overlaid on the memory's read-out,
    its cells without a reading at its far depth, as ``pipeline.WorldModel`` does by default
    (``newest_overlay`` and ``fill_holes``); ``weight``: of this task's loss in the total.
    """

    enabled: bool = True
    weight: float = 1.0
    batch_size: int = 8
    context_frames: int = 8
    gaps_s: list = field(default_factory=lambda: [0.0, 0.5, 1.0, 2.0])
    voxel_size: float = 0.002
    voxel_per_footprint: float = 1.0
    max_weight: float = 2.0
    readout_min_count: int = 2
    newest_overlay: bool = True
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def __post_init__(self) -> None:
        if not self.voxel_size > 0:
            raise ValueError(f"voxel_size: must be > 0, got {self.voxel_size}")
        if not self.voxel_per_footprint >= 0:
            raise ValueError(f"voxel_per_footprint: must be >= 0, got {self.voxel_per_footprint}")
        if self.readout_min_count < 0:
            raise ValueError(f"readout_min_count: must be >= 0, got {self.readout_min_count}")
        if not self.max_weight >= 1:
            raise ValueError(f"max_weight: must be >= 1, got {self.max_weight}")
        if self.context_frames < 1 or not self.gaps_s or min(self.gaps_s) < 0:
            raise ValueError("context_frames must be >= 1 and gaps_s non-empty, >= 0")


@dataclass
class SimDataConfig(MemoryTaskConfig):
    """Targets from simulated camera paths (``model.sim_data``).

    Each seed gives one sequence per scene family; path, actors and sensor noise cycle over the
    seeds. ``workers``: rendering processes (0 = one per CPU core); ``cache_dir``: where rendered
    sequences are kept between runs ("" = nowhere).
    """

    width: int = 320
    height: int = 240
    rate_hz: float = 4.0
    frames_per_sequence: int = 400
    scenes: list = field(default_factory=lambda: ["corridor", "office", "warehouse"])
    paths: list = field(default_factory=lambda: ["loop", "forward", "pan"])
    actors: list = field(default_factory=lambda: [False, True])
    train_seeds: list = field(default_factory=lambda: list(range(0, 8)))
    val_seeds: list = field(default_factory=lambda: [1000])
    workers: int = 0
    cache_dir: str = ""


@dataclass
class RealDataConfig(MemoryTaskConfig):
    """Targets from recorded RGB-D sequences with ground-truth poses (``model.real_data``).

    ``sequences`` train, ``val_sequences`` are held out for validation (never trained on): TUM
    RGB-D folders, as ``mirage-ros eval`` reads them (``scripts/cut_tum_clip.py`` cuts parts of a
    recording into such folders). ``camera``: their intrinsics, an ``evaluation.tum_source.TUM_CAMERAS``
    name or ``auto`` (from the folder name); ``every``: keep every n-th frame.
    """

    enabled: bool = False
    batch_size: int = 4
    sequences: list = field(default_factory=list)
    val_sequences: list = field(default_factory=list)
    camera: str = "auto"
    every: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.every < 1:
            raise ValueError(f"every: must be >= 1, got {self.every}")
        if self.enabled and not self.sequences:
            raise ValueError("sequences: enabled but empty (list TUM RGB-D folders)")


@dataclass
class ScheduleConfig:
    """When to log, validate, checkpoint and stop (whichever of steps / time comes first).

    ``lr_follows_budget``: the learning rate's cosine ends when the time budget does, if that comes
    before ``optim.max_steps`` (a budgeted run ends on a low rate). The schedule then depends on
    wall time, so ``--resume`` continues the run but not bit for bit.
    """

    log_every: int = 50
    val_every: int = 500
    checkpoint_every: int = 500
    time_budget_s: float = 0.0  # 0 = no time limit
    lr_follows_budget: bool = False


@dataclass
class TrainConfig:
    """Everything ``mirage-ros train`` needs; ``seed`` fixes data, init and sampling.

    ``data_sources``: where the training data comes from and under which licence (mappings with
    ``name``, ``source``, ``licence``, ``used_for``); the export copies them into the manifest.
    ``init_weights``: a weights folder (``manifest.json`` + ONNX, e.g. ``mirage_ros/weights``) the
    networks start from instead of a random initialisation ("" = random); ``--resume`` ignores it.
    """

    seed: int = 0
    device: str = "auto"
    deterministic: bool = False
    out_dir: str = "runs/train"
    network: NetworkConfig = field(default_factory=NetworkConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    natural: NaturalConfig = field(default_factory=NaturalConfig)
    sim: SimDataConfig = field(default_factory=SimDataConfig)
    real: RealDataConfig = field(default_factory=RealDataConfig)
    data_sources: list = field(default_factory=list)
    init_weights: str = ""
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
