"""``mirage-ros eval INPUT --out DIR``: offline replay of a recording, scored, with a report.

The recording (rosbag or TUM folder, :mod:`mirage_ros.evaluation.sources`) is replayed frame by
frame, in stamp order and as fast as the machine allows (not in real time, so results do not
depend on machine load), through our world model and the baselines
(:mod:`mirage_ros.evaluation.methods`). Predictions are scored by
:func:`mirage_ros.evaluation.scoring.score_sequence` and written by
:func:`mirage_ros.evaluation.report.write_report`. See docs/evaluation.md.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from mirage_ros.errors import InvalidInput
from mirage_ros.evaluation.methods import METHOD_NAMES, build_methods
from mirage_ros.evaluation.recordings import open_recording
from mirage_ros.evaluation.same_pose import score_same_pose
from mirage_ros.evaluation.report import check_destination, command_line, cost_rows, write_report
from mirage_ros.evaluation.scoring import ScoreConfig, score_sequence, summarise
from mirage_ros.evaluation.sources import DEPTH_REGISTRATION, Recording, SourceOptions
from mirage_ros.messages.frames import CONVENTIONS

DYNAMICS_CHOICES = ("detector", "truth", "off")


class MovingMasks:
    """Per-frame pixels kept out of every memory, and what the report shows of them.

    ``detector``: :class:`mirage_ros.dynamics.MovingObjectDetector` comparing the live frame with
    our world model's rendering at the live pose (what the consistency monitor node does);
    ``truth``: the recording's ground-truth motion mask (an oracle, for ablations); ``off``: none.
    """

    def __init__(self, source: str, world_model, n_frames: int, overlays: int = 4):
        self.source = source
        self.world_model = world_model
        self.counts = np.zeros(3, dtype=np.int64)  # tp, fp, fn against ground truth
        self.scored_frames = 0
        self.overlays: list[tuple] = []
        self._overlay_every = max(1, n_frames // (overlays + 1))
        self._max_overlays = overlays
        self._index = 0
        self._next_overlay = self._overlay_every
        if source == "detector":
            from mirage_ros.dynamics import MovingObjectDetector

            self.detector = MovingObjectDetector()

    def __call__(self, frame) -> np.ndarray | None:
        index, self._index = self._index, self._index + 1
        truth = getattr(frame, "motion_mask", None)
        if self.source == "off":
            return None
        if self.source == "truth":
            shown = exclude = truth
        else:
            rendered = self.world_model.predict_live(frame.T_world_cam, frame.K)
            detection = self.detector.update(frame.rgb, frame.depth, frame.K, frame.T_world_cam, frame.stamp,
                                             *rendered)
            shown, exclude = detection.mask, detection.memory_mask
            if truth is not None:
                from mirage_ros.evaluation.metrics import mask_counts

                self.counts += mask_counts(shown, truth)
                self.scored_frames += 1
        something = (shown is not None and np.any(shown)) or (truth is not None and np.any(truth))
        due = index >= self._next_overlay and len(self.overlays) < self._max_overlays
        if shown is not None and something and due:
            self.overlays.append((float(frame.stamp), frame.rgb, np.asarray(shown, bool), truth))
            self._next_overlay = index + self._overlay_every
        return exclude

    def summary(self) -> dict:
        from mirage_ros.evaluation.metrics import f1_from_counts, iou_from_counts

        out = {"source": self.source, "iou": None, "f1": None, "frames": self.scored_frames}
        if self.scored_frames:
            out["iou"] = iou_from_counts(*self.counts.tolist())
            out["f1"] = f1_from_counts(*self.counts.tolist())
        return out


def _versions(provider: str, manifest: dict) -> dict:
    import importlib.metadata as md

    import mirage_ros

    out = {"mirage_ros": mirage_ros.__version__, "python": platform.python_version(),
           "platform": platform.platform(), "provider": provider,
           "weights": {name: entry.get("sha256") for name, entry in manifest.get("files", {}).items()},
           "weights_training": manifest.get("training", {}).get("command")}
    for package in ("numpy", "onnxruntime", "onnxruntime-gpu", "rosbags", "scipy"):
        try:
            out[package] = md.version(package)
        except md.PackageNotFoundError:
            continue
    return out


def _recording_summary(recording: Recording) -> dict:
    return {"path": str(recording.path), "kind": recording.kind, "frames": int(len(recording.stamps)),
            "t0": float(recording.stamps[0]), "duration_s": float(recording.stamps[-1] - recording.stamps[0]),
            "width": recording.K.width, "height": recording.K.height,
            "intrinsics": {"fx": recording.K.fx, "fy": recording.K.fy, "cx": recording.K.cx, "cy": recording.K.cy},
            "details": recording.details}


def available_memory() -> int | None:
    """Bytes of host memory available to a new allocation (Linux ``MemAvailable``; None elsewhere)."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def check_cloud_fits(frames: int, pixels: int, available: int | None) -> None:
    """Refuse, before replaying anything, a recording whose RGB point cloud (every valid pixel of
    every frame, kept for the whole run) could outgrow the host memory available.

    Raises:
        InvalidInput: ``"--methods"``, with the options that make it fit.
    """
    from mirage_ros.memory.baselines import HOST_POINT_BYTES

    per_frame = pixels * HOST_POINT_BYTES
    if available is None or frames * per_frame <= available:
        return
    gib = 2.0**30
    raise InvalidInput("--methods", (
        f"the RGB point cloud of {frames} frames holds up to {frames * per_frame / gib:.1f} GiB "
        f"({per_frame / 2**20:.1f} MiB a frame), {available / gib:.1f} GiB of memory is available: leave it out "
        f"(--methods latent_memory last_frame_warp rgb_frame_warp) or replay at most "
        f"--max-frames {max(2, available // per_frame)}"))


def run_eval(input_path: Path, out: Path, options: SourceOptions, config: ScoreConfig,
             methods: tuple[str, ...], provider: str, dynamics: str, command: str, arguments: dict,
             show_progress: bool = True, weights: Path | None = None, capacity_points: int | None = None,
             same_pose_every: int = 0) -> dict:
    """Index, replay, score and report; returns the report document (also in ``out/report.json``).

    Raises:
        InvalidInput: bad input or options (see :func:`open_recording`, :class:`ScoreConfig`).
    """
    from tqdm import tqdm

    started = time.perf_counter()
    if same_pose_every < 0:
        raise InvalidInput("--same-pose-every", f"must be >= 0 (0 = off), got {same_pose_every}")
    out = Path(out)
    check_destination(out)
    recording = open_recording(input_path, options, progress=show_progress)
    if dynamics == "truth" and recording.details.get("topics", {}).get("mask") is None:
        raise InvalidInput("--dynamics", "'truth' needs a ground-truth motion mask in the input (--mask-topic)")
    if {"rgb_point_cloud", "rgb_point_cloud_direct"} & set(methods):
        check_cloud_fits(len(recording.stamps), recording.K.width * recording.K.height, available_memory())
    built = build_methods(methods, provider, weights_dir=weights, capacity_points=capacity_points)
    masks = MovingMasks(dynamics, built[0], len(recording.stamps))
    with tqdm(total=len(recording.stamps), desc=f"eval {Path(input_path).name}", unit="frame",
              disable=not show_progress, file=sys.stderr) as bar:
        result = score_sequence(recording.frames(), recording.stamps, recording.poses, built, config,
                                dynamic_mask=masks, progress=bar.update)
    names = [m.name for m in built]
    same_pose = {"n": 0}
    if same_pose_every > 0:
        with tqdm(total=len(recording.stamps), desc="same pose", unit="frame", disable=not show_progress,
                  file=sys.stderr) as bar:
            same_pose = score_same_pose(recording.frames(), built[0].model, same_pose_every, bar.update)
    report = {
        "command": command, "arguments": arguments, "versions": _versions(built[0].provider, built[0].model.networks.manifest),
        "recording": _recording_summary(recording), "config": asdict(config), "methods": names,
        "method_details": {m.name: m.description for m in built},
        "planned": result.planned, "summary": summarise(result.scores, names, config.horizons),
        "cost": cost_rows(result.timeline, result.scores, names), "dynamics": masks.summary(),
        "skipped": [asdict(s) for s in recording.skipped], "scores": result.scores_as_dicts(),
        "timeline": result.timeline, "frames_replayed": result.frames, "same_pose": same_pose,
        "elapsed_s": time.perf_counter() - started,
    }
    if result.planned["revisit"] == 0:
        report["skipped"].append({"what": "revisits", "reason": (
            f"no frame returns within {config.revisit_distance} m / {config.revisit_angle_deg} deg of an earlier "
            f"one after >= {config.revisit_min_path} m and >= {config.revisit_min_time} s")})
    if result.planned["recall"] == 0:
        report["skipped"].append({"what": "out-of-view recalls", "reason": (
            f"no future target whose view the frames of the {config.recall_window:g} s up to its anchor saw less "
            f"than {config.recall_recent_max:.0%} of, and one older frame more than {config.recall_old_min:.0%}")})
    write_report(out, report, result.scores, result.timeline, result.examples, masks.overlays)
    return report


def add_parser(subparsers) -> None:
    """Register ``mirage-ros eval`` (every option is described in docs/evaluation.md)."""
    p = subparsers.add_parser("eval", help="score world models on a rosbag or TUM RGB-D folder; write a report",
                              description="Replay a recording offline through our world model and the baselines, "
                                          "score predicted views against the real frames, write a report.")
    p.add_argument("input", metavar="INPUT", type=Path, help="rosbag2 folder / .mcap / .db3, ROS 1 .bag, or TUM folder")
    p.add_argument("--out", type=Path, required=True, help="report folder (written atomically; replaces an older report)")
    g = p.add_argument_group("scoring")
    g.add_argument("--horizons", type=float, nargs="+", default=[0.5, 1.0, 2.0], metavar="S",
                   help="future-view horizons in seconds (default 0.5 1 2)")
    g.add_argument("--query-every", type=float, default=0.5, metavar="S",
                   help="seconds between scored anchors, and between scored revisits (default 0.5)")
    g.add_argument("--target-tolerance", type=float, default=None, metavar="S",
                   help="max |stamp - (t + h)| of a future target (default 0.6 x the frame period)")
    g.add_argument("--revisit-distance", type=float, default=0.5, metavar="M", help="revisit radius (default 0.5 m)")
    g.add_argument("--revisit-angle", type=float, default=20.0, metavar="DEG",
                   help="max angle between the two view directions (default 20)")
    g.add_argument("--revisit-min-path", type=float, default=3.0, metavar="M",
                   help="travel between the two visits (default 3 m)")
    g.add_argument("--revisit-min-time", type=float, default=5.0, metavar="S",
                   help="time between the two visits (default 5 s)")
    g.add_argument("--max-revisits", type=int, default=50, metavar="N", help="scored revisits at most (default 50)")
    g.add_argument("--recall-window", type=float, default=3.0, metavar="S",
                   help="out-of-view recall targets: future views the frames of this many seconds up to the anchor "
                        "saw < 10 %% of, and an older frame > 50 %% (default 3)")
    g.add_argument("--warmup", type=float, default=0.0, metavar="S", help="observed before the first anchor (default 0)")
    g.add_argument("--methods", nargs="+", choices=METHOD_NAMES, default=list(METHOD_NAMES), metavar="METHOD",
                   help=f"world models to compare, from {', '.join(METHOD_NAMES)} (default all; latent_memory "
                        "always runs: it renders for the detector)")
    g.add_argument("--provider", choices=("auto", "cpu", "cuda"), default="auto", help="ONNX Runtime provider (default auto)")
    g.add_argument("--weights", type=Path, default=None, metavar="DIR",
                   help="manifest.json + encoder/renderer ONNX to evaluate (default: the shipped weights)")
    g.add_argument("--capacity-points", type=int, default=None, metavar="N",
                   help="latent memory capacity (default: MemoryConfig's, as the world_model node)")
    g.add_argument("--dynamics", choices=DYNAMICS_CHOICES, default="detector",
                   help="pixels kept out of every memory: the moving-object detector (default), the input's "
                        "ground-truth motion mask, or none")
    g.add_argument("--same-pose-every", type=int, default=10, metavar="N",
                   help="also score the same pose after one frame on every N-th frame: an empty memory observes "
                        "the frame alone and renders it at its own pose (default 10; 0 = off)")
    g.add_argument("--no-progress", action="store_true", help="no progress bars")
    s = p.add_argument_group("input (auto-detected unless given)")
    for name in ("color-topic", "depth-topic", "info-topic", "depth-info-topic", "mask-topic", "odom-topic",
                 "world-frame", "camera-frame"):
        s.add_argument(f"--{name}", default=None, metavar="NAME")
    s.add_argument("--depth-registration", choices=DEPTH_REGISTRATION, default="auto",
                   help="auto: depth with its own CameraInfo in another frame or with other intrinsics is "
                        "re-projected into the colour camera (transform from TF); disabled: depth is registered")
    s.add_argument("--camera-frame-convention", choices=CONVENTIONS, default="auto",
                   help="the image frame is optical, or a body/link frame (Gazebo); auto: optical if named so")
    s.add_argument("--camera-offset", type=float, nargs=6, default=None, metavar=("X", "Y", "Z", "ROLL", "PITCH", "YAW"),
                   help="camera frame in the odometry child frame (m, rad) when TF does not reach the camera")
    s.add_argument("--intrinsics", type=float, nargs=4, default=None, metavar=("FX", "FY", "CX", "CY"),
                   help="override CameraInfo / the TUM preset")
    s.add_argument("--tum-camera", default="auto", help="TUM intrinsics preset: auto (from the folder name), fr1, "
                                                       "fr2, fr3, ros")
    s.add_argument("--depth-scale", type=float, default=5000.0, help="TUM depth PNG units per metre (default 5000)")
    s.add_argument("--max-depth-dt", type=float, default=0.02, metavar="S",
                   help="max colour/depth stamp difference (default 0.02)")
    s.add_argument("--max-pose-extrapolation", type=float, default=0.05, metavar="S",
                   help="how far outside the pose samples a lookup holds the nearest one (default 0.05)")
    s.add_argument("--max-frames", type=int, default=None, metavar="N", help="only the first N usable frames")
    p.set_defaults(func=main, option_defaults={a.dest: a.default for a in p._actions if a.option_strings})


def _command(args: argparse.Namespace) -> str:
    """The command line that reproduces this run: INPUT, --out and every non-default option."""
    return command_line(["mirage-ros", "eval", str(args.input), "--out", str(args.out)], args,
                        skip=("out", "help", "no_progress"))


def main(args: argparse.Namespace) -> int:
    """Run ``mirage-ros eval`` from parsed arguments; prints where the report is."""
    options = SourceOptions(
        color_topic=args.color_topic, depth_topic=args.depth_topic, info_topic=args.info_topic,
        depth_info_topic=args.depth_info_topic, depth_registration=args.depth_registration,
        mask_topic=args.mask_topic, odom_topic=args.odom_topic, world_frame=args.world_frame,
        camera_frame=args.camera_frame, camera_frame_convention=args.camera_frame_convention,
        camera_offset=tuple(args.camera_offset) if args.camera_offset else None,
        intrinsics=tuple(args.intrinsics) if args.intrinsics else None, tum_camera=args.tum_camera,
        depth_scale=args.depth_scale, max_depth_dt=args.max_depth_dt,
        max_pose_extrapolation=args.max_pose_extrapolation, max_frames=args.max_frames)
    config = ScoreConfig(
        horizons=tuple(args.horizons), query_every=args.query_every, target_tolerance=args.target_tolerance,
        revisit_distance=args.revisit_distance, revisit_angle_deg=args.revisit_angle,
        revisit_min_path=args.revisit_min_path, revisit_min_time=args.revisit_min_time,
        max_revisits=args.max_revisits, warmup=args.warmup, recall_window=args.recall_window)
    arguments = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
                 if k not in ("func", "option_defaults", "command")}
    try:
        report = run_eval(args.input, args.out, options, config, tuple(dict.fromkeys(args.methods)), args.provider,
                          args.dynamics, _command(args), arguments, show_progress=not args.no_progress,
                          weights=args.weights, capacity_points=args.capacity_points,
                          same_pose_every=args.same_pose_every)
    except KeyboardInterrupt:
        print(f"mirage-ros eval: interrupted; no report written to {args.out}", file=sys.stderr)
        return 130
    print(f"report: {Path(args.out) / 'report.html'} ({report['frames_replayed']} frames, "
          f"{report['planned']['future']} future views, {report['planned']['revisit']} revisits, "
          f"{report['planned']['recall']} out-of-view recalls)")
    same = report["same_pose"]
    if same["n"]:
        print(f"same pose after one frame ({same['n']} frames): PSNR {same['psnr']:.2f} dB, on covered cells "
              f"{same['psnr_covered']:.2f} dB, SSIM {same['ssim']:.3f}, coverage of cells with depth {same['coverage']:.3f}")
    return 0
