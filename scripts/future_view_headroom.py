"""How much of a real recording's future-view error post-processing could remove: a diagnostic
for the fidelity goals in ``docs/evaluation.md``.

    python scripts/future_view_headroom.py .data/fr1_rpy_heldout --horizons 0.5 1 2 --json out.json

The world model (``pipeline.WorldModel``, shipped networks or ``--weights``, CPU) observes the TUM
folder frame by frame. From 1 s on, every ``--query-every`` seconds, it predicts the frame each
horizon ahead (at that frame's real pose). Each prediction is scored on the whole frame and on the
cells it covers, as it is and

- blurred (Gaussian, sigma 1, 2, 4, 8 px): what a renderer that smooths more would score;
- with an oracle per-channel gain, the target's mean colour over the prediction's: what knowing
  the camera's next auto-exposure and white balance would give (no predictor knows it).

Mean per-target PSNR in dB. No ROS needed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter
from tqdm import tqdm

from mirage_ros.evaluation.metrics import psnr
from mirage_ros.evaluation.sources import SourceOptions
from mirage_ros.evaluation.tum_source import open_tum
from mirage_ros.pipeline import build_world_model

BLUR_SIGMAS_PX = (1, 2, 4, 8)
WARMUP_S = 1.0


def variants(pred: np.ndarray, target: np.ndarray) -> dict[str, np.ndarray]:
    """``(H, W, 3) float32`` prediction in ``[0, 1]`` -> the post-processed versions scored."""
    out = {"as predicted": pred}
    for sigma in BLUR_SIGMAS_PX:
        out[f"blurred, sigma {sigma} px"] = gaussian_filter(pred, (sigma, sigma, 0))
    gain = target.mean((0, 1)) / np.maximum(pred.mean((0, 1)), 1e-3)
    out["oracle per-channel gain"] = np.clip(pred * gain, 0.0, 1.0)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="TUM RGB-D folder")
    parser.add_argument("--horizons", type=float, nargs="+", default=[0.5, 1.0, 2.0], help="seconds ahead")
    parser.add_argument("--query-every", type=float, default=0.5, help="seconds between anchors")
    parser.add_argument("--tolerance", type=float, default=0.06, help="max |stamp - (anchor + h)| of a target, s")
    parser.add_argument("--tum-camera", default="auto", help="TUM intrinsics preset")
    parser.add_argument("--weights", default="", help="networks other than the shipped ones")
    parser.add_argument("--json", type=Path, help="also write the table here")
    args = parser.parse_args(argv)

    recording = open_tum(args.folder, SourceOptions(tum_camera=args.tum_camera))
    frames = list(recording.frames())
    stamps = np.array([f.stamp for f in frames])
    model = build_world_model("cpu", weights_dir=args.weights)
    scores: dict[str, dict[str, list[float]]] = {f"{h:g}": {} for h in args.horizons}
    next_anchor = stamps[0] + WARMUP_S
    for frame in tqdm(frames, desc="observe + predict", file=sys.stderr):
        model.observe(frame.rgb, frame.depth, frame.K, frame.T_world_cam, frame.stamp)
        if frame.stamp < next_anchor:
            continue
        next_anchor += args.query_every
        for h in args.horizons:
            j = int(np.argmin(np.abs(stamps - (frame.stamp + h))))
            if abs(stamps[j] - frame.stamp - h) > args.tolerance:
                continue
            prediction = model.predict(frames[j].T_world_cam, frame.K)
            target = frames[j].rgb.astype(np.float32) / 255.0
            for name, image in variants(prediction.rgb.astype(np.float32) / 255.0, target).items():
                table = scores[f"{h:g}"]
                table.setdefault(f"{name}: whole", []).append(psnr(image, target))
                table.setdefault(f"{name}: covered", []).append(psnr(image, target, prediction.valid))
    report = {h: {name: round(float(np.nanmean(v)), 3) for name, v in table.items()} | {"targets": len(next(iter(table.values()), []))}
              for h, table in scores.items()}
    for h, table in report.items():
        print(f"future {h} s ({table['targets']} targets)")
        for name, value in table.items():
            if name != "targets":
                print(f"  {name:42s} {value:6.2f} dB")
    if args.json:
        args.json.write_text(json.dumps({"folder": str(args.folder), "horizons_s": report}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
