"""``mirage-ros sim``: record simulated RGB-D runs as rosbag2 files, or preview a scene.

mirage-ros sim record --scene corridor --seed 3 --frames 600 --out run.mcap
mirage-ros sim preview --scene office --seed 1 --out preview.png
"""

from __future__ import annotations

import argparse
import sys

from mirage_ros.errors import InvalidInput
from mirage_ros.sim.config import DEFAULT_ACTORS, NOISE_MODELS, SimConfig
from mirage_ros.sim.families import FAMILIES
from mirage_ros.sim.motion import PATHS

# SimConfig field -> the option that sets it (errors name what the user typed)
OPTIONS = {
    "scene": "--scene",
    "seed": "--seed",
    "width": "--width",
    "height": "--height",
    "rate_hz": "--rate",
    "path": "--path",
    "actors": "--actors",
    "speed": "--speed",
    "camera_height": "--camera-height",
    "noise": "--noise",
    "max_range": "--max-range",
}


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scene", default="corridor", help=f"scene family: {', '.join(FAMILIES)} (default corridor)")
    p.add_argument("--seed", type=int, default=0, help="scene seed, any integer >= 0 (default 0)")
    p.add_argument("--width", type=int, default=320, help="image width in pixels (default 320)")
    p.add_argument("--height", type=int, default=240, help="image height in pixels (default 240)")
    p.add_argument("--rate", type=float, default=10.0, help="frames per second of simulated time (default 10)")
    p.add_argument("--path", default="loop", help=f"camera path: {', '.join(PATHS)} (default loop)")
    p.add_argument(
        "--actors",
        type=int,
        default=DEFAULT_ACTORS,
        help=f"people walking; 0 = static scene (default {DEFAULT_ACTORS})",
    )
    p.add_argument("--speed", type=float, default=0.8, help="robot speed in m/s (default 0.8)")
    p.add_argument("--camera-height", type=float, default=1.15, help="camera height in metres (default 1.15)")
    p.add_argument("--max-range", type=float, default=10.0, help="depth range in metres; beyond = 0 (default 10)")
    p.add_argument("--noise", default="none", help=f"sensor model: {', '.join(NOISE_MODELS)} (default none = exact)")


def config_from_args(args: argparse.Namespace) -> SimConfig:
    """SimConfig from parsed options; errors name the option, not the field."""
    try:
        return SimConfig(
            scene=args.scene,
            seed=args.seed,
            width=args.width,
            height=args.height,
            rate_hz=args.rate,
            path=args.path,
            actors=args.actors,
            speed=args.speed,
            camera_height=args.camera_height,
            max_range=args.max_range,
            noise=args.noise,
        )
    except InvalidInput as exc:
        raise InvalidInput(OPTIONS.get(exc.parameter, exc.parameter), exc.reason) from None


def _record(args: argparse.Namespace) -> int:
    from mirage_ros.sim.bag import record_bag, resolve_output
    from mirage_ros.sim.simulator import Simulator

    config = config_from_args(args)
    if args.frames < 1:
        raise InvalidInput("--frames", f"must be >= 1, got {args.frames}")
    final, _ = resolve_output(args.out, args.storage)  # fail before building anything
    try:
        path = record_bag(Simulator(config), args.out, args.frames, args.storage, progress=not args.quiet)
    except KeyboardInterrupt:
        print(f"mirage-ros sim record: interrupted; nothing was written to {final}", file=sys.stderr)
        return 130
    print(
        f"wrote {path}/ ({args.frames} frames, {args.frames / config.rate_hz:.1f} s of {config.scene} seed {config.seed})"
    )
    return 0


def _preview(args: argparse.Namespace) -> int:
    from mirage_ros.sim.preview import contact_sheet
    from mirage_ros.sim.simulator import Simulator

    config = config_from_args(args)
    out = contact_sheet(Simulator(config), args.out, args.count, args.span)
    print(f"wrote {out}")
    return 0


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "sim",
        help="simulated RGB-D camera: record bags, preview scenes",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="sim_command", metavar="ACTION", required=True)
    record = sub.add_parser("record", help="write a rosbag2 (MCAP or sqlite3) of simulated frames")
    _common(record)
    record.add_argument("--frames", type=int, default=600, help="frames to record (default 600)")
    record.add_argument(
        "--out",
        required=True,
        help="bag to create: run.mcap or run.db3 makes the bag folder run/ (storage from the suffix); "
        "a name without suffix uses --storage",
    )
    record.add_argument(
        "--storage", choices=["mcap", "sqlite3"], default=None, help="bag storage (default: from --out, else mcap)"
    )
    record.add_argument("--quiet", action="store_true", help="no progress bar")
    record.set_defaults(func=_record)
    preview = sub.add_parser("preview", help="contact sheet PNG: top view, frames, depth, masks")
    _common(preview)
    preview.add_argument("--out", default="preview.png", help="PNG to write (default preview.png)")
    preview.add_argument("--count", type=int, default=6, help="frames on the sheet (default 6)")
    preview.add_argument(
        "--span", type=float, default=None, help="seconds the frames spread over (default: one path period)"
    )
    preview.set_defaults(func=_preview)
