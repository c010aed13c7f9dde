"""Memory files: ``.npz`` (no pickle), atomic write, format version and sha256 checksum.

Layout: one array per state tensor (``layout.STATE_NAMES``) plus ``meta``, a UTF-8 JSON document
stored as a ``uint8`` array: ``{"format", "version", "config", "epoch", "sha256"}``. The sha256 is
taken over every state array's name, dtype, shape and bytes, in ``STATE_NAMES`` order.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from mirage_ros.errors import MirageError
from mirage_ros.memory import layout as L

FORMAT = "mirage_ros.latent_memory"
VERSION = 2  # 2: voxel keys hold a level (layout.LEVEL_BITS)
# config fields that must match for a file's slots to mean the same thing in this memory
COMPATIBLE_FIELDS = ("channels", "voxel_size", "voxel_per_footprint")


class MemoryFileError(MirageError):
    """A memory file is unreadable, corrupt, of another format/version, or does not fit."""


def state_digest(state: dict[str, np.ndarray]) -> str:
    digest = hashlib.sha256()
    for name in L.STATE_NAMES:
        array = np.ascontiguousarray(state[name])
        digest.update(f"{name}|{array.dtype.str}|{array.shape}|".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def save_state(path: str | Path, state: dict[str, np.ndarray], config: dict, epoch: float | None) -> Path:
    """Write ``state`` atomically: a temporary file in the same folder, fsync, then rename."""
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")
    meta = {"format": FORMAT, "version": VERSION, "config": config, "epoch": epoch,
            "sha256": state_digest(state)}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            np.savez_compressed(handle, meta=np.frombuffer(json.dumps(meta).encode(), np.uint8), **state)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_state(path: str | Path, config: dict, slots: int) -> tuple[dict[str, np.ndarray], float | None]:
    """Read and verify a memory file written by :func:`save_state`.

    Args:
        path: the ``.npz`` file.
        config: the live memory's ``MemoryConfig.to_dict()``; ``COMPATIBLE_FIELDS`` must match.
        slots: the live memory's capacity (``MemoryConfig.slots``); must match.

    Returns:
        ``(state, epoch)`` host arrays, checked: checksum, dtypes, shapes, trash row empty,
        live rows finite.

    Raises:
        MemoryFileError: naming the path and what is wrong. Nothing is modified.
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except FileNotFoundError:
        raise MemoryFileError(f"{path}: no such memory file") from None
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, KeyError) as exc:
        raise MemoryFileError(f"{path}: not a readable .npz memory file ({exc})") from None
    try:
        meta = json.loads(arrays.pop("meta").tobytes().decode())
        fmt, version, file_config, digest = meta["format"], meta["version"], meta["config"], meta["sha256"]
    except (KeyError, ValueError, UnicodeDecodeError, TypeError, AttributeError) as exc:
        raise MemoryFileError(f"{path}: missing or malformed metadata ({exc!r})") from None
    if fmt != FORMAT or version != VERSION:
        raise MemoryFileError(f"{path}: format {fmt!r} version {version!r}, expected {FORMAT!r} version {VERSION}")
    missing = [name for name in L.STATE_NAMES if name not in arrays]
    if missing:
        raise MemoryFileError(f"{path}: arrays missing: {missing}")
    if state_digest(arrays) != digest:
        raise MemoryFileError(f"{path}: sha256 mismatch (file corrupt or edited)")
    for field in COMPATIBLE_FIELDS:
        if file_config.get(field) != config[field]:
            raise MemoryFileError(
                f"{path}: saved with {field}={file_config.get(field)!r}, this memory has {config[field]!r}"
            )
    expected = L.empty_state(slots, config["channels"])
    for name, ref in expected.items():
        if arrays[name].shape != ref.shape or arrays[name].dtype != ref.dtype:
            raise MemoryFileError(
                f"{path}: {name} is {arrays[name].dtype}{arrays[name].shape}, this memory needs "
                f"{ref.dtype}{ref.shape} (capacity_points differs?)"
            )
    live = arrays["keys"] >= 0
    if arrays["keys"][-1] != -1 or not all(
        np.isfinite(arrays[n][live]).all() for n in ("positions", "latents", "weights", "last_seen")
    ):
        raise MemoryFileError(f"{path}: inconsistent content (trash slot used or non-finite live rows)")
    epoch = meta.get("epoch")
    return {name: arrays[name] for name in L.STATE_NAMES}, (None if epoch is None else float(epoch))
