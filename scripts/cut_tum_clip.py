"""Cut the real RGB-D clip the tests use out of a TUM RGB-D sequence folder.

    python scripts/cut_tum_clip.py SRC test/data/rgbd_dataset_freiburg1_rpy_clip

SRC is TUM fr1_rpy (``rgbd_dataset_freiburg1_rpy``; CC BY 4.0, Sturm et al., "A Benchmark for the
Evaluation of RGB-D SLAM Systems", IROS 2012), e.g. the copy under ``data/`` of the public
repository jmstark/gpu_odometry. The clip keeps ``--frames`` associated colour / depth pairs,
``--step`` frames apart from ``--start``: colour as JPEG (``--quality``, 85 by default), depth PNGs
losslessly re-compressed, the lists and the ground-truth rows around them, so it stays a TUM folder
(``mirage-ros eval`` and ``mirage-ros train``'s ``real`` task read it); 8 frames are about 1 MB.

The training data of the shipped weights (``config/train.yaml``) is cut the same way, the first
half of fr1_rpy to train and the second half held out::

    python scripts/cut_tum_clip.py SRC .data/fr1_rpy_train --start 0 --step 2 --frames 173 --quality 92
    python scripts/cut_tum_clip.py SRC .data/fr1_rpy_heldout --start 347 --step 3 --frames 115 --quality 92
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from PIL import Image

LICENCE = """# TUM RGB-D fr1_rpy, a clip

{frames} colour / depth pairs of `rgbd_dataset_freiburg1_rpy` (640x480, Kinect, Freiburg 1
camera), every {step}th associated pair from pair {start}; colour re-encoded as JPEG (quality {quality}),
depth (16-bit PNG, re-compressed losslessly) and ground truth unchanged. Cut by `scripts/cut_tum_clip.py`.

Source: TUM RGB-D benchmark, https://cvg.cit.tum.de/data/datasets/rgbd-dataset (copy taken from the
public repository jmstark/gpu_odometry, `data/`). Licence: Creative Commons Attribution 4.0
(CC BY 4.0). Citation: J. Sturm, N. Engelhard, F. Endres, W. Burgard, D. Cremers, "A Benchmark for
the Evaluation of RGB-D SLAM Systems", IROS 2012.
"""


def associated(folder: Path) -> list[tuple[str, str, str, str]]:
    """``(rgb stamp, rgb file, depth stamp, depth file)`` rows of ``rgbd_assoc.txt`` or, without
    it, the nearest depth for each colour stamp within 20 ms."""
    def rows(name):
        return [line.split() for line in (folder / name).read_text().splitlines() if line and not line.startswith("#")]

    if (folder / "rgbd_assoc.txt").exists():
        return [tuple(r[:4]) for r in rows("rgbd_assoc.txt")]
    depth = rows("depth.txt")
    pairs = []
    for stamp, name in rows("rgb.txt"):
        best = min(depth, key=lambda d: abs(float(d[0]) - float(stamp)))
        if abs(float(best[0]) - float(stamp)) <= 0.02:
            pairs.append((stamp, name, best[0], best[1]))
    return pairs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("src", type=Path, help="TUM sequence folder (rgb.txt, depth.txt, groundtruth.txt)")
    parser.add_argument("out", type=Path, help="clip folder to write (replaced)")
    parser.add_argument("--start", type=int, default=280, help="first associated pair (default %(default)s)")
    parser.add_argument("--step", type=int, default=3, help="pairs between kept ones (default %(default)s)")
    parser.add_argument("--frames", type=int, default=8, help="pairs kept (default %(default)s)")
    parser.add_argument("--quality", type=int, default=85, help="JPEG quality of the colour images (default %(default)s)")
    args = parser.parse_args(argv)

    pairs = associated(args.src)[args.start: args.start + args.step * args.frames: args.step]
    if len(pairs) < args.frames:
        raise SystemExit(f"{args.src}: only {len(pairs)} pairs from {args.start}")
    if args.out.exists():
        shutil.rmtree(args.out)
    (args.out / "rgb").mkdir(parents=True)
    (args.out / "depth").mkdir()
    rgb_list, depth_list = ["# color images"], ["# depth maps"]
    for rgb_stamp, rgb_file, depth_stamp, depth_file in pairs:
        jpeg = f"rgb/{rgb_stamp}.jpg"
        with Image.open(args.src / rgb_file) as image:
            image.convert("RGB").save(args.out / jpeg, "JPEG", quality=args.quality)
        with Image.open(args.src / depth_file) as image:  # lossless, only better compressed
            image.save(args.out / depth_file, "PNG", optimize=True)
        rgb_list.append(f"{rgb_stamp} {jpeg}")
        depth_list.append(f"{depth_stamp} {depth_file}")
    first, last = float(pairs[0][0]) - 0.5, float(pairs[-1][0]) + 0.5
    truth = [line for line in (args.src / "groundtruth.txt").read_text().splitlines()
             if line.startswith("#") or first <= float(line.split()[0]) <= last]
    for name, lines in (("rgb.txt", rgb_list), ("depth.txt", depth_list), ("groundtruth.txt", truth)):
        (args.out / name).write_text("\n".join(lines) + "\n")
    (args.out / "README.md").write_text(LICENCE.format(frames=args.frames, step=args.step, start=args.start,
                                                      quality=args.quality))
    size = sum(f.stat().st_size for f in args.out.rglob("*") if f.is_file())
    print(f"wrote {args.out}: {len(pairs)} frames, {size / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
