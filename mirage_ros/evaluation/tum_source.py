"""RGB-D frames from a TUM RGB-D benchmark folder (https://cvg.cit.tum.de/data/datasets/rgbd-dataset).

Layout: ``rgb.txt`` and ``depth.txt`` list ``timestamp filename`` (``#`` comments), images are
8-bit colour PNGs and 16-bit depth PNGs in units of 1/``depth_scale`` m (5000 in the benchmark,
0 = no reading), ``groundtruth.txt`` lists ``timestamp tx ty tz qx qy qz qw``, the pose of the
colour camera's optical centre in the world (optical axes: x right, y down, z forward).

Each colour image takes the nearest depth image within ``max_depth_dt`` (0.02 s, like the
benchmark's ``associate.py``) and the ground-truth pose interpolated at its stamp (Slerp, at most
``max_pose_extrapolation`` outside the samples). The folder has no intrinsics: ``--intrinsics``
or the published calibration of the Freiburg sensor named in the folder (``tum_camera``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from mirage_ros.errors import InvalidInput
from mirage_ros.evaluation.sources import (
    Observation,
    Recording,
    Skipped,
    SourceOptions,
    associate,
    intrinsics_from_option,
)
from mirage_ros.geometry import Intrinsics, pose_from_tq, quat_xyzw_to_wxyz
from mirage_ros.transforms import TransformBuffer, TransformLookupError

#: Published ``(fx, fy, cx, cy)`` of the TUM RGB-D sensors (640x480, rectified colour camera).
TUM_CAMERAS: dict[str, tuple[float, float, float, float]] = {
    "fr1": (517.3, 516.5, 318.6, 255.3),
    "fr2": (520.9, 521.0, 325.1, 249.7),
    "fr3": (535.4, 539.2, 320.1, 247.6),
    "ros": (525.0, 525.0, 319.5, 239.5),
}


def _read_list(path: Path, columns: int) -> list[list[str]]:
    """Rows of a TUM text file with at least ``columns`` fields (comments and blanks dropped)."""
    if not path.is_file():
        raise InvalidInput("INPUT", f"TUM folder lacks {path.name} ({path})")
    rows = []
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
        fields = line.replace(",", " ").split()
        if not fields or fields[0].startswith("#"):
            continue
        if len(fields) < columns:
            raise InvalidInput("INPUT", f"{path}:{number}: expected {columns} fields, got {line!r}")
        rows.append(fields)
    return rows


def _stamps(rows: list[list[str]], path: Path) -> np.ndarray:
    try:
        return np.array([float(r[0]) for r in rows], dtype=np.float64)
    except ValueError as exc:
        raise InvalidInput("INPUT", f"{path}: a timestamp is not a number ({exc})") from exc


def tum_preset(folder: Path, setting: str) -> str:
    """The TUM camera preset for ``folder``: ``setting`` itself, or for ``auto`` the ``freiburgN``
    / ``frN`` in the folder name (``ros`` when none)."""
    if setting != "auto":
        if setting not in TUM_CAMERAS:
            raise InvalidInput("--tum-camera", f"must be auto or one of {sorted(TUM_CAMERAS)}, got {setting!r}")
        return setting
    name = folder.resolve().name.lower()
    for n in ("1", "2", "3"):
        if f"freiburg{n}" in name or f"fr{n}" in name:
            return f"fr{n}"
    return "ros"


class TumRecording(Recording):
    """A TUM folder indexed by :func:`open_tum`."""

    def __init__(self, *, files: list[tuple[Path, Path]], **kwargs):
        super().__init__(**kwargs)
        self._files = files  # (rgb png, depth png) per usable frame

    def frames(self) -> Iterator[Observation]:
        for (rgb_file, depth_file), stamp, T in zip(self._files, self.stamps, self.poses):
            rgb = _load(rgb_file, "RGB")
            depth = _load(depth_file, "I;16").astype(np.float32) / np.float32(self.details["depth_scale"])
            for name, image in (("rgb", rgb), ("depth", depth)):
                if image.shape[:2] != self.K.shape:
                    raise InvalidInput("INPUT", f"{rgb_file if name == 'rgb' else depth_file}: {name} is "
                                       f"{image.shape[1]}x{image.shape[0]}, expected {self.K.width}x{self.K.height}")
            yield Observation(float(stamp), rgb, depth, self.K, T)


def _load(path: Path, mode: str) -> np.ndarray:
    try:
        with Image.open(path) as image:
            if mode == "I;16" and image.mode not in ("I;16", "I;16B", "I", "I;16L"):
                raise InvalidInput("INPUT", f"{path}: depth PNG must be 16-bit, got mode {image.mode}")
            return np.asarray(image.convert("RGB") if mode == "RGB" else image)
    except (OSError, UnidentifiedImageError, SyntaxError) as exc:
        raise InvalidInput("INPUT", f"{path}: unreadable image ({exc})") from exc


def open_tum(folder: Path, options: SourceOptions) -> TumRecording:
    """Index a TUM RGB-D folder: associations, poses, intrinsics (images are read lazily).

    Raises:
        InvalidInput: ``"INPUT"`` for missing or malformed lists / images, ``"--intrinsics"`` /
            ``"--tum-camera"`` for bad intrinsics.
    """
    rgb_rows = _read_list(folder / "rgb.txt", 2)
    depth_rows = _read_list(folder / "depth.txt", 2)
    gt_rows = _read_list(folder / "groundtruth.txt", 8)
    rgb_t = _stamps(rgb_rows, folder / "rgb.txt")
    depth_t = _stamps(depth_rows, folder / "depth.txt")
    if not len(rgb_t) or not len(depth_t) or not len(gt_rows):
        raise InvalidInput("INPUT", f"{folder}: rgb.txt, depth.txt and groundtruth.txt must each list entries "
                           f"(have {len(rgb_t)}, {len(depth_t)}, {len(gt_rows)})")
    poses = TransformBuffer(max_extrapolation=options.max_pose_extrapolation)
    skipped: list[Skipped] = []
    for row in gt_rows:
        try:
            values = np.array([float(v) for v in row[:8]])
            poses.add("world", "camera", values[0], pose_from_tq(values[1:4], quat_xyzw_to_wxyz(values[4:8])))
        except (ValueError, InvalidInput) as exc:
            skipped.append(Skipped(f"groundtruth.txt {' '.join(row[:1])}", str(exc)))
    if "camera" not in poses.frames():
        raise InvalidInput("INPUT", f"{folder}/groundtruth.txt has no valid pose")

    depth_of = associate(rgb_t, depth_t, options.max_depth_dt)
    files, stamps, Ts = [], [], []
    for i in np.argsort(rgb_t, kind="stable"):
        what = f"rgb {rgb_rows[i][1]}"
        if stamps and rgb_t[i] <= stamps[-1]:
            skipped.append(Skipped(what, "same stamp as the previous colour image"))
            continue
        if depth_of[i] < 0:
            skipped.append(Skipped(what, f"no depth image within {options.max_depth_dt} s"))
            continue
        try:
            T = poses.lookup("world", "camera", float(rgb_t[i]))
        except TransformLookupError as exc:
            skipped.append(Skipped(what, f"no ground-truth pose: {exc}"))
            continue
        pair = (folder / rgb_rows[i][1], folder / depth_rows[depth_of[i]][1])
        missing = [p.name for p in pair if not p.is_file()]
        if missing:
            skipped.append(Skipped(what, f"missing file(s) {missing}"))
            continue
        files.append(pair)
        stamps.append(float(rgb_t[i]))
        Ts.append(T)
        if options.max_frames is not None and len(files) == options.max_frames:
            break
    K, preset = _intrinsics(folder, files, options)
    details = {"depth_scale": options.depth_scale, "intrinsics": preset,
               "associated": len(files), "rgb_listed": len(rgb_t), "depth_listed": len(depth_t)}
    return TumRecording(path=folder, kind="tum", stamps=np.asarray(stamps), K=K, details=details,
                        poses=np.asarray(Ts, dtype=np.float64).reshape(-1, 4, 4), skipped=skipped,
                        files=files)


def _intrinsics(folder: Path, files: list[tuple[Path, Path]], options: SourceOptions) -> tuple[Intrinsics, str]:
    if not files:
        return Intrinsics(1.0, 1.0, 0.0, 0.0, 1, 1), "none (no usable frame)"
    height, width = _load(files[0][0], "RGB").shape[:2]
    if options.intrinsics is not None:
        return intrinsics_from_option(options.intrinsics, width, height), "--intrinsics"
    preset = tum_preset(folder, options.tum_camera)
    fx, fy, cx, cy = TUM_CAMERAS[preset]
    if (width, height) != (640, 480):
        raise InvalidInput("--intrinsics", f"images are {width}x{height}; the TUM presets are for 640x480: "
                           "give --intrinsics fx fy cx cy")
    return Intrinsics(fx, fy, cx, cy, width, height), f"TUM preset {preset}"
