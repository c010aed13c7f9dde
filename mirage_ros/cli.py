"""The ``mirage-ros`` command line.

Each subcommand lives with the module it drives; this file only lists them. A module in
``SUBCOMMANDS`` exposes ``add_parser(subparsers)`` which registers its parser and sets
``func=callable(args) -> int`` as the parser default. Modules are imported only when their
subcommand runs, so ``mirage-ros --help`` stays fast and torch-free.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from mirage_ros.errors import MirageError

# subcommand name -> (module, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "eval": ("mirage_ros.evaluation.replay", "score world models on a rosbag or TUM RGB-D folder; write a report"),
    "bench": ("mirage_ros.bench", "benchmarks printing JSON: memory | latency | sim"),
    "train": ("mirage_ros.model.train", "train encoder + renderer (torch), export ONNX"),
    "export": ("mirage_ros.model.export", "export a training checkpoint to ONNX + manifest"),
    "eval-sim": ("mirage_ros.evaluation.eval_sim", "fidelity on held-out simulated scenes vs baselines"),
    "eval-dynamics": ("mirage_ros.evaluation.eval_dynamics", "score moving-object flags and memory consistency (sim)"),
    "sim": ("mirage_ros.sim.cli", "simulated RGB-D camera: record rosbag2 runs, preview scenes"),
    "demo": ("mirage_ros.demo", "run sim camera + world model + monitor over DDS for a while; write demo_out/"),
}


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mirage-ros", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    wanted = next((a for a in argv if not a.startswith("-")), None)
    for name, (module, help_text) in SUBCOMMANDS.items():
        if name == wanted:
            importlib.import_module(module).add_parser(sub)
        else:
            sub.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv).parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except MirageError as exc:
        print(f"mirage-ros {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
