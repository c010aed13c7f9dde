"""``mirage-ros eval-dynamics``: moving-object flags and memory consistency on simulated walks.

Held-out simulator sequences (seeds never used for training) with people walking. Per sequence,
four world models see the same camera path in lockstep:

- ``static``: the same path rendered without people (the reference memory),
- ``ours``: with people, fed back :class:`~mirage_ros.dynamics.MovingObjectDetector`'s
  ``memory_mask`` (the detector compares each live frame with this model's own rendering),
- ``no_mask``: with people, no mask (everything written into memory),
- ``oracle``: with people, the ground-truth person mask (every person, walking or standing).

Scores:

- **flags**: per-pixel IoU / F1 / precision / recall of the detector's moving mask against the
  simulator's motion mask, summed over frames and sequences (pixel micro-average), and per-region
  recall (a walking person counts as found when half its pixels are flagged); the same for the
  baseline, ego-motion-compensated frame differencing, at several thresholds on the same frames
  (its best threshold is reported: tuned on the test data, which favours the baseline).
  ``flags`` scores **every** frame. Simulated people give way to the robot (which itself avoids
  no one), so a person's centre rarely comes within ``--collision-m`` of the camera; such frames
  are counted, and ``flags_without_close`` scores the rest (a secondary figure).
- **memory consistency**: at revisit frames (``scoring.find_revisits``) each model predicts the
  view before observing it; PSNR against the people-free render at that pose, on the whole frame
  and where the static model's memory is valid. ``ours`` should stay within 0.5 dB of ``static``.

Every number comes from the run; the goals are evaluated, not asserted.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time

import numpy as np
from scipy import ndimage

from mirage_ros.dynamics import DetectorConfig, FrameDifferencing, MovingObjectDetector
from mirage_ros.errors import InvalidInput
from mirage_ros.evaluation.metrics import (
    f1_from_counts,
    iou_from_counts,
    mask_counts,
    psnr,
    region_recall_counts,
)
from mirage_ros.evaluation.scoring import ScoreConfig, find_revisits
from mirage_ros.runtime.networks import SUBCELL_PLACEMENT

HELD_OUT_SEEDS = (2000, 2001, 2002)  # training uses 0..15, validation 1000..1001
MODELS = ("static", "ours", "no_mask", "oracle")
BASELINE_THRESHOLDS = (0.05, 0.1, 0.15, 0.2, 0.3)
GOAL_F1 = 0.85
GOAL_PSNR_GAP_DB = 0.5
COUNT_KEYS = ("tp", "fp", "fn", "regions_found", "regions")


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "eval-dynamics",
        help="score moving-object flags and memory consistency on simulated walks with people",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument("--json", action="store_true", help="print the full report as JSON on stdout")
    p.add_argument("--scene", default="corridor", help="simulator scene family (default corridor)")
    p.add_argument("--seeds", type=int, nargs="+", default=list(HELD_OUT_SEEDS),
                   help=f"held-out scene seeds (default {' '.join(map(str, HELD_OUT_SEEDS))})")
    p.add_argument("--frames", type=int, default=0,
                   help="frames per sequence (default 0: one lap of the loop path + 10 s)")
    p.add_argument("--width", type=int, default=320, help="image width, pixels (default 320)")
    p.add_argument("--height", type=int, default=240, help="image height, pixels (default 240)")
    p.add_argument("--rate", type=float, default=10.0, help="frame rate, Hz (default 10)")
    p.add_argument("--actors", type=int, default=5, help="people walking (default 5)")
    p.add_argument("--noise", default="kinect", choices=("none", "kinect"),
                   help="sensor model (default kinect: noise, holes, misregistration, exposure)")
    p.add_argument("--no-latent", action="store_true",
                   help="detector without the latent cue (as the ROS node, whose rendering "
                        "message carries no latents)")
    p.add_argument("--collision-m", type=float, default=0.6,
                   help="frames with a person's centre this close to the camera are counted and "
                        "also left out in a secondary score (default 0.6 m)")
    p.add_argument("--provider", default="auto", help="ONNX Runtime provider: auto, cuda, cpu")
    p.add_argument("--weights", help="folder with manifest.json + ONNX networks "
                                     "(default: the shipped mirage_ros/weights)")
    p.add_argument("--subcell-placement", choices=tuple(SUBCELL_PLACEMENT), default="auto",
                   help="draw rendered cells where their memory points project (auto: as the networks were trained)")
    p.add_argument("--out", help="also write the JSON report to this file")
    p.add_argument("--merge", nargs="+", metavar="REPORT",
                   help="do not run: pool the sequences of these reports (e.g. seeds run in "
                        "parallel with --out) into one summary")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    if args.frames < 0:
        raise InvalidInput("--frames", f"must be >= 0, got {args.frames}")
    if args.actors < 1:
        raise InvalidInput("--actors", f"needs at least one person, got {args.actors}")
    if not args.rate > 0:
        raise InvalidInput("--rate", f"must be > 0, got {args.rate}")
    report = merge_reports(args.merge) if args.merge else evaluate(args)
    text = json.dumps(report, indent=2)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    print(text if args.json else format_table(report))
    return 0


def evaluate(args: argparse.Namespace) -> dict:
    """Run every sequence of ``args`` and summarise (see module docstring)."""
    from mirage_ros.pipeline import WorldModel  # ONNX sessions: only when the evaluation runs
    from mirage_ros.runtime.networks import Networks

    # one set of sessions shared by the four models
    networks = Networks.load(weights_dir=args.weights, provider=args.provider,
                             subcell_placement=SUBCELL_PLACEMENT[args.subcell_placement])
    sequences = [
        evaluate_sequence(seed, args, lambda: WorldModel(networks, provider=args.provider))
        for seed in args.seeds
    ]
    config = {k: v for k, v in vars(args).items() if k != "func"}
    config["networks"] = {k: networks.manifest.get(k) for k in ("network", "training") if k in networks.manifest}
    return {"config": config, "summary": summarise(sequences), "sequences": sequences}


def merge_reports(paths: list[str]) -> dict:
    """One report from several of the same configuration (apart from seeds)."""
    reports = []
    for path in paths:
        try:
            with open(path) as f:
                reports.append(json.load(f))
        except (OSError, json.JSONDecodeError) as exc:
            raise InvalidInput("--merge", f"cannot read report {path}: {exc}") from exc
    ignored = {"seeds", "out", "merge", "json", "no_progress"}
    first = {k: v for k, v in reports[0]["config"].items() if k not in ignored}
    for path, report in zip(paths, reports):
        other = {k: v for k, v in report["config"].items() if k not in ignored}
        if other != first:
            raise InvalidInput("--merge", f"{path} was run with another configuration")
    sequences = [seq for report in reports for seq in report["sequences"]]
    config = dict(reports[0]["config"], seeds=[s["seed"] for s in sequences], merged=paths)
    return {"config": config, "summary": summarise(sequences), "sequences": sequences}


class _FlagCounts:
    """Pixel and region counts of one method, split into normal and collision frames."""

    def __init__(self) -> None:
        self.counts = {split: dict.fromkeys(COUNT_KEYS, 0) for split in ("normal", "collision")}

    def add(self, pred, truth, ids, min_pixels: int, collision: bool) -> None:
        acc = self.counts["collision" if collision else "normal"]
        tp, fp, fn = mask_counts(pred, truth)
        found, total = region_recall_counts(pred, np.where(truth, ids, 0), min_pixels=min_pixels)
        for key, value in zip(COUNT_KEYS, (tp, fp, fn, found, total)):
            acc[key] += value


def scores(counts: dict) -> dict:
    """IoU, F1, precision, recall, region recall from summed ``COUNT_KEYS`` counts."""
    tp, fp, fn = counts["tp"], counts["fp"], counts["fn"]
    found, regions = counts["regions_found"], counts["regions"]
    return {
        "iou": iou_from_counts(tp, fp, fn),
        "f1": f1_from_counts(tp, fp, fn),
        "precision": tp / (tp + fp) if tp + fp else float("nan"),
        "recall": tp / (tp + fn) if tp + fn else float("nan"),
        "region_recall": found / regions if regions else float("nan"),
        **counts,
    }


def evaluate_sequence(seed: int, args: argparse.Namespace, make_world_model) -> dict:
    """One held-out sequence: flags of ours and the baseline, revisit PSNR of the four models.

    Returns the raw counts and per-frame values (``summarise`` pools them over sequences).
    """
    from mirage_ros.sim import SimConfig, Simulator

    def sim(actors: int) -> Simulator:
        return Simulator(SimConfig(scene=args.scene, seed=seed, width=args.width, height=args.height,
                                   rate_hz=args.rate, path="loop", actors=actors, noise=args.noise))

    live, empty = sim(args.actors), sim(0)
    n = args.frames or int(math.ceil((live.period + 10.0) * args.rate))
    stamps = np.arange(n) / args.rate
    poses = np.stack([live.pose_at(t) for t in stamps])
    revisits = {j for j, _ in find_revisits(stamps, poses, ScoreConfig())}
    models = {name: make_world_model() for name in MODELS}
    networks = models["ours"].networks
    detector = MovingObjectDetector(DetectorConfig())
    baseline = FrameDifferencing()
    min_pixels = int(0.002 * args.width * args.height)  # people too small to flag are not counted
    ours = _FlagCounts()
    base = {th: _FlagCounts() for th in BASELINE_THRESHOLDS}
    revisit_psnr = {name: {"frame": [], "covered": []} for name in MODELS}
    detect_ms, unknown_frames, collision_frames = [], 0, 0

    progress = _progress(n, f"seed {seed}", args.no_progress)
    for i in range(n):
        frame, clean = live.frame_at(i), empty.frame_at(i)
        K, T, t = frame.K, frame.T_world_cam, frame.stamp
        people_xy = live.walkers.state(t)[0]
        collision = bool(np.min(np.linalg.norm(people_xy - T[:2, 3], axis=1)) < args.collision_m)
        collision_frames += collision
        rendered = models["ours"].predict(T, K, with_readout=not args.no_latent)
        if i in revisits:
            predictions = {name: rendered if name == "ours" else m.predict(T, K) for name, m in models.items()}
            reference = predictions["static"].valid
            for name, pred in predictions.items():
                revisit_psnr[name]["frame"].append(psnr(pred.rgb, clean.rgb))
                revisit_psnr[name]["covered"].append(psnr(pred.rgb, clean.rgb, reference))

        # Each image is encoded once and the latent shared (WorldModel.observe = encode + insert).
        live_latent = networks.encode(frame.rgb)
        latents = {} if args.no_latent else dict(
            live_latent=live_latent, warped_latent=rendered.readout.latent,
            warped_valid=rendered.readout.valid)
        start = time.perf_counter()
        detection = detector.update(frame.rgb, frame.depth, K, T, t, rendered.rgb, rendered.depth,
                                    rendered.valid, **latents)
        detect_ms.append(1e3 * (time.perf_counter() - start))
        unknown_frames += detection.status != "ok"
        ours.add(detection.mask, frame.motion_mask, frame.instance_ids, min_pixels, collision)
        difference = baseline.difference(frame.rgb, frame.depth, K, T)
        for th in BASELINE_THRESHOLDS:
            base[th].add(baseline.threshold_mask(difference, th), frame.motion_mask,
                         frame.instance_ids, min_pixels, collision)

        people = ndimage.binary_dilation(frame.instance_ids > 0, iterations=2)
        models["static"].memory.insert(networks.encode(clean.rgb), clean.depth, K, T, t, None)
        for name, mask in (("ours", detection.memory_mask), ("no_mask", None), ("oracle", people)):
            models[name].memory.insert(live_latent, frame.depth, K, T, t, mask)
        progress.update(1)
    progress.close()

    return {
        "seed": seed,
        "frames": n,
        "unknown_frames": unknown_frames,
        "collision_frames": collision_frames,
        "revisit_frames": len(revisits),
        "ours": ours.counts,
        "baseline": {str(th): b.counts for th, b in base.items()},
        "revisit_psnr": revisit_psnr,
        "memory": {name: {k: m.memory.stats().get(k) for k in ("points_live", "points_carved")}
                   for name, m in models.items()},
        "detect_ms": {"mean": _mean(detect_ms), "p95": float(np.percentile(detect_ms, 95))},
    }


def _pool(sequences: list[dict], get, include_collisions: bool) -> dict:
    total = dict.fromkeys(COUNT_KEYS, 0)
    for seq in sequences:
        counts = get(seq)
        for split in ("normal", "collision") if include_collisions else ("normal",):
            for key in COUNT_KEYS:
                total[key] += counts[split][key]
    return scores(total)


def summarise(sequences: list[dict]) -> dict:
    """Pool counts and revisit PSNRs over sequences; pick the baseline's best threshold; goals."""
    flags = {}
    for name, with_collisions in (("flags", True), ("flags_without_close", False)):
        base = {th: _pool(sequences, lambda s, th=th: s["baseline"][th], with_collisions)
                for th in sequences[0]["baseline"]}
        best = max(base, key=lambda th: np.nan_to_num(base[th]["f1"], nan=-1.0))
        flags[name] = {"ours": _pool(sequences, lambda s: s["ours"], with_collisions),
                       "baseline": {**base[best], "threshold": float(best)},
                       "baseline_by_threshold": {th: base[th]["f1"] for th in base}}
    psnrs = {
        name: {kind: _mean([v for s in sequences for v in s["revisit_psnr"][name][kind]])
               for kind in ("frame", "covered")}
        for name in MODELS
    }
    gap = {name: psnrs["static"]["covered"] - psnrs[name]["covered"] for name in MODELS}
    ours, baseline = flags["flags"]["ours"], flags["flags"]["baseline"]
    return {
        **flags,
        "revisit_psnr": psnrs,
        "revisit_gap_db": gap,
        "frames": sum(s["frames"] for s in sequences),
        "collision_frames": sum(s["collision_frames"] for s in sequences),
        "unknown_frames": sum(s["unknown_frames"] for s in sequences),
        "revisit_frames": sum(s["revisit_frames"] for s in sequences),
        "detect_ms_mean": _mean([s["detect_ms"]["mean"] for s in sequences]),
        "goals": {
            f"f1>={GOAL_F1}": bool(ours["f1"] >= GOAL_F1),
            f"revisit_psnr_gap<={GOAL_PSNR_GAP_DB}dB": bool(gap["ours"] <= GOAL_PSNR_GAP_DB),
            "beats_baseline_f1": bool(ours["f1"] > baseline["f1"]),
        },
    }


def format_table(report: dict) -> str:
    """Human-readable summary of a report."""
    s = report["summary"]
    lines = [f"{s['frames']} frames ({s['collision_frames']} with a person within --collision-m, "
             f"{s['unknown_frames']} judged unknown), {s['revisit_frames']} revisits"]
    for key, title in (("flags", "moving-object flags, pixel micro-average, all frames"),
                       ("flags_without_close", "same, without the frames with a person within "
                                               "--collision-m of the camera")):
        lines += ["", title,
                  f"{'method':<30}{'IoU':>7}{'F1':>7}{'prec':>7}{'recall':>7}{'region rec':>11}"]
        base = s[key]["baseline"]
        for label, f in (("ours (memory + tracks)", s[key]["ours"]),
                         (f"frame diff, best th {base['threshold']:.2f}", base)):
            lines.append(f"{label:<30}{f['iou']:7.3f}{f['f1']:7.3f}{f['precision']:7.3f}"
                         f"{f['recall']:7.3f}{f['region_recall']:11.3f}")
    lines += ["", "background revisit PSNR, dB (vs the people-free render)",
              f"{'memory fed':<30}{'frame':>8}{'covered':>9}{'gap':>7}"]
    for name in MODELS:
        p = s["revisit_psnr"][name]
        lines.append(f"{name:<30}{p['frame']:8.2f}{p['covered']:9.2f}{s['revisit_gap_db'][name]:7.2f}")
    lines += ["", f"detector: {s['detect_ms_mean']:.1f} ms/frame mean", "goals: " +
              ", ".join(f"{k} {'met' if v else 'MISSED'}" for k, v in s["goals"].items())]
    return "\n".join(lines)


def _mean(values) -> float:
    values = [v for v in values if v is not None and np.isfinite(v)]
    return float(np.mean(values)) if values else float("nan")


def _progress(total: int, desc: str, disabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="frame", file=sys.stderr, disable=disabled)
