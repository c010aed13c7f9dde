"""Benchmarks: scripts printing JSON with ratios against a baseline measured in the same run.

``mirage-ros bench memory|latency|sim`` (``sim`` runs ``python -m mirage_ros.bench.sim``).
"""

from __future__ import annotations

import argparse
import importlib

BENCHMARKS = {
    "memory": ("mirage_ros.bench.memory", "bytes of latent memory vs RGB point-cloud memory on a loop"),
    "latency": ("mirage_ros.bench.latency", "update / read-out ms vs RGB rasterise + re-encode"),
    "sim": ("mirage_ros.bench.sim", "simulator frames per second vs the reference ray caster"),
}


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("bench", help="benchmarks (JSON)", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="benchmark", metavar="BENCHMARK", required=True)
    for name, (module, help_text) in BENCHMARKS.items():
        if name == "sim":  # owns its argument parsing
            child = sub.add_parser(name, help=help_text, add_help=False)
            child.add_argument("rest", nargs=argparse.REMAINDER)
            child.set_defaults(func=lambda args, m=module: importlib.import_module(m).main(args.rest))
            continue
        child = sub.add_parser(name, help=help_text, description=help_text)
        mod = importlib.import_module(module)
        mod.add_arguments(child)
        child.set_defaults(func=mod.run)
