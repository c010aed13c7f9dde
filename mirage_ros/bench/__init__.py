"""Benchmarks: scripts printing JSON with ratios against a baseline measured in the same run.

``mirage-ros bench memory|latency|sim|e2e|pipeline|fuzz|soak`` (``sim`` runs ``python -m mirage_ros.bench.sim``).
Training scaling over GPUs: ``python -m mirage_ros.bench.train_scaling`` (needs torch).
"""

from __future__ import annotations

import argparse
import importlib
import json
from pathlib import Path

from mirage_ros.memory import MemoryConfig

BENCHMARKS = {
    "memory": ("mirage_ros.bench.memory", "bytes of latent memory vs RGB point-cloud memory on a loop"),
    "latency": ("mirage_ros.bench.latency", "update / read-out ms vs RGB rasterise + re-encode"),
    "sim": ("mirage_ros.bench.sim", "simulator frames per second vs the reference ray caster"),
    "e2e": ("mirage_ros.bench.e2e", "image in -> predicted view out over DDS vs the in-process pipeline"),
    "pipeline": ("mirage_ros.bench.pipeline", "WorldModel observe / predict ms, newest-frame overlay on vs off"),
    "fuzz": ("mirage_ros.bench.fuzz", "malformed messages on every node topic over DDS: crashes, warnings, output"),
    "soak": ("mirage_ros.bench.soak", "the demo pipeline for an hour: node memory growth and output, sampled"),
}


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("bench", help="benchmarks (JSON)", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="benchmark", metavar="BENCHMARK", required=True)
    for name, (module, help_text) in BENCHMARKS.items():
        if name == "sim":  # owns its argument parsing: hand it every word, options included
            child = sub.add_parser(name, help=help_text, add_help=False, prefix_chars="\x00")
            child.add_argument("rest", nargs="*")
            child.set_defaults(func=lambda args, m=module: importlib.import_module(m).main(args.rest))
            continue
        child = sub.add_parser(name, help=help_text, description=help_text)
        mod = importlib.import_module(module)
        mod.add_arguments(child)
        child.set_defaults(func=mod.run)


def add_sim_run_arguments(parser: argparse.ArgumentParser, frames: int, scene: str, seed: int) -> None:
    """Arguments of every benchmark that runs simulated frames through ONNX Runtime: provider,
    image size, frames, scene and seed (with these defaults), output."""
    parser.add_argument("--provider", default="auto", choices=("auto", "cuda", "cpu"), help="ONNX Runtime provider")
    parser.add_argument("--width", type=int, default=320, help="image width (default %(default)s)")
    parser.add_argument("--height", type=int, default=240, help="image height (default %(default)s)")
    parser.add_argument("--frames", type=int, default=frames, help="simulated frames (default %(default)s)")
    parser.add_argument("--scene", default=scene, help="simulator scene (default %(default)s)")
    parser.add_argument("--seed", type=int, default=seed, help="simulator seed (default %(default)s)")
    parser.add_argument("--json", action="store_true", help="print one JSON object only")
    parser.add_argument("--out", type=Path, help="also write the JSON to this file")


def add_memory_arguments(parser: argparse.ArgumentParser, frames: int) -> None:
    """Arguments every memory benchmark shares: the simulated run, encoder and memory sizes."""
    add_sim_run_arguments(parser, frames, scene="corridor", seed=3)
    parser.add_argument("--stride", type=int, help="latent stride (default: the shipped network's; "
                        "another runs a stand-in encoder)")
    parser.add_argument("--channels", type=int, help="latent channels (default: the shipped network's; "
                        "another runs a stand-in encoder)")
    parser.add_argument("--capacity", type=int, default=200_000, help="memory capacity in points")
    parser.add_argument("--voxel-size", type=float, default=MemoryConfig.voxel_size,
                        help="finest fusion voxel, metres (MemoryConfig.voxel_size; default %(default)s)")
    parser.add_argument("--voxel-per-footprint", type=float, default=MemoryConfig.voxel_per_footprint,
                        help="voxel edge / latent cell footprint at most; 0 = fixed --voxel-size voxels "
                             "(MemoryConfig.voxel_per_footprint; default %(default)s)")


def emit(result: dict, args) -> int:
    """Print ``result`` as JSON (one line with ``--json``) and write it to ``--out`` if given."""
    text = json.dumps(result, indent=None if args.json else 2)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    print(text)
    return 0


def script_main(doc: str, add_arguments, run, argv: list[str] | None = None) -> int:
    """``python -m mirage_ros.bench.<name>`` entry point."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))
