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
  simulator's motion mask, summed over all frames of all sequences (pixel micro-average), and
  per-region recall (a walking person counts as found when half its pixels are flagged); the
  same for the baseline, ego-motion-compensated frame differencing, on the same frames;
- **memory consistency**: at revisit frames (``scoring.find_revisits``), each model predicts the
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

HELD_OUT_SEEDS = (2000, 2001, 2002)  # training uses 0..15, validation 1000..1001
MODELS = ("static", "ours", "no_mask", "oracle")
GOAL_F1 = 0.85
GOAL_PSNR_GAP_DB = 0.5


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
    p.add_argument("--width", type=int, default=320)
    p.add_argument("--height", type=int, default=240)
    p.add_argument("--rate", type=float, default=10.0, help="frame rate, Hz (default 10)")
    p.add_argument("--actors", type=int, default=5, help="people walking (default 5)")
    p.add_argument("--noise", default="kinect", choices=("none", "kinect"),
                   help="sensor model (default kinect: noise, holes, misregistration, exposure)")
    p.add_argument("--provider", default="auto", help="ONNX Runtime provider: auto, cuda, cpu")
    p.add_argument("--out", help="also write the JSON report to this file")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    if args.frames < 0:
        raise InvalidInput("--frames", f"must be >= 0, got {args.frames}")
    if args.actors < 1:
        raise InvalidInput("--actors", f"needs at least one person, got {args.actors}")
    report = evaluate(args)
    text = json.dumps(report, indent=2)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    print(text if args.json else format_table(report))
    return 0


def evaluate(args: argparse.Namespace) -> dict:
    """Run every sequence of ``args`` and summarise (see module docstring)."""
    from mirage_ros.pipeline import WorldModel  # ONNX sessions: only when the evaluation runs

    sequences = [
        evaluate_sequence(seed, args, lambda: WorldModel.load(provider=args.provider))
        for seed in args.seeds
    ]
    return {"config": {k: v for k, v in vars(args).items() if k != "func"},
            "summary": summarise(sequences), "sequences": sequences}


def _counts() -> dict:
    return {"tp": 0, "fp": 0, "fn": 0, "regions_found": 0, "regions": 0}


def _add(acc: dict, pred: np.ndarray, truth: np.ndarray, ids: np.ndarray, min_pixels: int) -> None:
    tp, fp, fn = mask_counts(pred, truth)
    found, total = region_recall_counts(pred, np.where(truth, ids, 0), min_pixels=min_pixels)
    for key, value in zip(("tp", "fp", "fn", "regions_found", "regions"), (tp, fp, fn, found, total)):
        acc[key] += value


def _flag_scores(acc: dict) -> dict:
    tp, fp, fn = acc["tp"], acc["fp"], acc["fn"]
    return {
        "iou": iou_from_counts(tp, fp, fn),
        "f1": f1_from_counts(tp, fp, fn),
        "precision": tp / (tp + fp) if tp + fp else float("nan"),
        "recall": tp / (tp + fn) if tp + fn else float("nan"),
        "region_recall": acc["regions_found"] / acc["regions"] if acc["regions"] else float("nan"),
        **acc,
    }


def evaluate_sequence(seed: int, args: argparse.Namespace, make_world_model) -> dict:
    """One held-out sequence: flags of ours and the baseline, revisit PSNR of the four models."""
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
    detector, baseline = MovingObjectDetector(DetectorConfig()), FrameDifferencing()
    min_pixels = int(0.002 * args.width * args.height)  # people too small to flag are not counted
    ours, base = _counts(), _counts()
    revisit_psnr = {name: {"frame": [], "covered": []} for name in MODELS}
    detect_ms, unknown_frames = [], 0

    progress = _progress(n, f"seed {seed}", args.no_progress)
    for i in range(n):
        frame, clean = live.frame_at(i), empty.frame_at(i)
        K, T, t = frame.K, frame.T_world_cam, frame.stamp
        if i in revisits:
            predictions = {name: m.predict(T, K) for name, m in models.items()}
            reference = predictions["static"].valid
            for name, pred in predictions.items():
                revisit_psnr[name]["frame"].append(psnr(pred.rgb, clean.rgb))
                revisit_psnr[name]["covered"].append(psnr(pred.rgb, clean.rgb, reference))
        rendered = models["ours"].predict(T, K)
        start = time.perf_counter()
        detection = detector.update(frame.rgb, frame.depth, K, T, t,
                                    rendered.rgb, rendered.depth, rendered.valid)
        detect_ms.append(1e3 * (time.perf_counter() - start))
        unknown_frames += detection.status != "ok"
        _add(ours, detection.mask, frame.motion_mask, frame.instance_ids, min_pixels)
        _add(base, baseline.update(frame.rgb, frame.depth, K, T), frame.motion_mask,
             frame.instance_ids, min_pixels)

        people = ndimage.binary_dilation(frame.instance_ids > 0, iterations=2)
        models["static"].observe(clean.rgb, clean.depth, K, T, t, dynamic_mask=None)
        models["ours"].observe(frame.rgb, frame.depth, K, T, t, dynamic_mask=detection.memory_mask)
        models["no_mask"].observe(frame.rgb, frame.depth, K, T, t, dynamic_mask=None)
        models["oracle"].observe(frame.rgb, frame.depth, K, T, t, dynamic_mask=people)
        progress.update(1)
    progress.close()

    return {
        "seed": seed,
        "frames": n,
        "unknown_frames": unknown_frames,
        "revisit_frames": len(revisits),
        "ours": _flag_scores(ours),
        "baseline": _flag_scores(base),
        "revisit_psnr": {name: {k: _mean(v) for k, v in r.items()} for name, r in revisit_psnr.items()},
        "revisit_psnr_all": revisit_psnr,
        "detect_ms": {"mean": _mean(detect_ms), "p95": float(np.percentile(detect_ms, 95))},
    }


def summarise(sequences: list[dict]) -> dict:
    """Pool flag counts and revisit PSNRs over sequences; evaluate the goals."""
    pooled = {}
    for method in ("ours", "baseline"):
        acc = _counts()
        for seq in sequences:
            for key in acc:
                acc[key] += seq[method][key]
        pooled[method] = _flag_scores(acc)
    psnrs = {
        name: {kind: _mean([v for s in sequences for v in s["revisit_psnr_all"][name][kind]])
               for kind in ("frame", "covered")}
        for name in MODELS
    }
    gap = psnrs["static"]["covered"] - psnrs["ours"]["covered"]
    return {
        "flags": pooled,
        "revisit_psnr": psnrs,
        "revisit_gap_db": {name: psnrs["static"]["covered"] - psnrs[name]["covered"] for name in MODELS},
        "detect_ms_mean": _mean([s["detect_ms"]["mean"] for s in sequences]),
        "goals": {
            f"f1>={GOAL_F1}": bool(pooled["ours"]["f1"] >= GOAL_F1),
            f"revisit_psnr_gap<={GOAL_PSNR_GAP_DB}dB": bool(gap <= GOAL_PSNR_GAP_DB),
            "beats_baseline_f1": bool(pooled["ours"]["f1"] > pooled["baseline"]["f1"]),
        },
    }


def format_table(report: dict) -> str:
    """Human-readable summary of a report."""
    s = report["summary"]
    lines = ["moving-object flags (pixel micro-average over all frames)",
             f"{'method':<26}{'IoU':>7}{'F1':>7}{'prec':>7}{'recall':>7}{'region rec':>11}"]
    for name, label in (("ours", "ours (memory + tracks)"), ("baseline", "frame diff (ego-warp)")):
        f = s["flags"][name]
        lines.append(f"{label:<26}{f['iou']:7.3f}{f['f1']:7.3f}{f['precision']:7.3f}"
                     f"{f['recall']:7.3f}{f['region_recall']:11.3f}")
    lines += ["", "background revisit PSNR, dB (vs people-free render)",
              f"{'memory fed':<26}{'frame':>8}{'covered':>9}{'gap':>7}"]
    for name in MODELS:
        p = s["revisit_psnr"][name]
        lines.append(f"{name:<26}{p['frame']:8.2f}{p['covered']:9.2f}{s['revisit_gap_db'][name]:7.2f}")
    lines += ["", f"detector: {s['detect_ms_mean']:.1f} ms/frame mean", "goals: " +
              ", ".join(f"{k} {'met' if v else 'MISSED'}" for k, v in s["goals"].items())]
    return "\n".join(lines)


def _mean(values) -> float:
    values = [v for v in values if v is not None and np.isfinite(v)]
    return float(np.mean(values)) if values else float("nan")


def _progress(total: int, desc: str, disabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="frame", file=sys.stderr, disable=disabled)
