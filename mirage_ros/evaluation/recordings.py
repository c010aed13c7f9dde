"""Which reader opens a recording: :func:`open_recording`, the one entry point over the readers
(:mod:`bag_source`, :mod:`tum_source`), which import :mod:`sources` and never this module."""

from __future__ import annotations

from pathlib import Path

from mirage_ros.errors import InvalidInput
from mirage_ros.evaluation.sources import Recording, SourceOptions


def open_recording(path: str | Path, options: SourceOptions = SourceOptions(), progress: bool = False) -> Recording:
    """Index a rosbag (rosbag2 folder, ``.mcap``, ``.db3``, ROS 1 ``.bag``) or a TUM RGB-D folder.

    ``progress`` shows a progress bar while a bag is indexed.

    Raises:
        InvalidInput: ``"INPUT"`` when the path is missing, neither kind, unreadable or corrupt,
            or has no usable frame; option names (``"--depth-topic"``, ...) for bad options.
    """
    path = Path(path)
    if not path.exists():
        raise InvalidInput("INPUT", f"{path} does not exist")
    if path.is_dir() and (path / "rgb.txt").exists():
        from mirage_ros.evaluation.tum_source import open_tum  # readers load only when needed

        recording = open_tum(path, options)
    elif path.suffix in (".bag", ".mcap", ".db3") or (path.is_dir() and (path / "metadata.yaml").exists()):
        from mirage_ros.evaluation.bag_source import open_bag

        recording = open_bag(path, options, progress)
    else:
        raise InvalidInput(
            "INPUT",
            f"{path} is neither a rosbag (a rosbag2 folder with metadata.yaml, a .mcap/.db3 file, "
            "a ROS 1 .bag) nor a TUM RGB-D folder (with rgb.txt, depth.txt, groundtruth.txt)",
        )
    if len(recording.stamps) < 2:
        reasons = "; ".join(f"{s.what}: {s.reason}" for s in recording.skipped[:5]) or "none found"
        raise InvalidInput("INPUT", f"{path}: {len(recording.stamps)} usable RGB-D frame(s) with a pose ({reasons})")
    return recording
