"""``config/<node>.yaml`` and the parameter tables of ``docs/nodes.md``, written from the nodes'
:class:`~mirage_ros.ros.params.Param` tables, the one definition of every parameter.

``python -m mirage_ros.ros.param_docs`` rewrites both after a parameter changes;
``python -m mirage_ros.ros.param_docs --check`` exits 1 naming the files that are out of date
(the test suite runs the same check).
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import textwrap
from pathlib import Path
from typing import Any

import yaml

from mirage_ros.ros.params import Param

#: node name -> module holding its ``PARAMS``
NODES = {"world_model": "mirage_ros.ros.world_model_params", "consistency_monitor": "mirage_ros.ros.consistency_monitor"}
ROOT = Path(__file__).resolve().parents[2]


def node_params(node: str) -> list[Param]:
    """The ``PARAMS`` table of ``node`` (a key of :data:`NODES`)."""
    return importlib.import_module(NODES[node]).PARAMS


def value_text(value: Any) -> str:
    """A default as YAML (and ``-p name:=value``) reads it back: ``true``, ``''``, ``[0.5, 1.0]``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(value_text(v) for v in value) + "]"
    if isinstance(value, str):
        if not value:
            return "''"
        return value if yaml.safe_load(value) == value else json.dumps(value)
    return repr(value)


def _limits(param: Param, separator: str) -> str:
    if param.choices:
        return separator.join(param.choices)
    return "" if param.range is None else f"[{param.range[0]!r}, {param.range[1]!r}]"


def config_yaml(node: str) -> str:
    """Text of ``config/<node>.yaml``: every parameter with its default, description and limits."""
    lines = [f"# Parameters of the {node} node, written by `python -m mirage_ros.ros.param_docs` from the",
             "# node's table (docs/nodes.md lists the same). Ranges and choices are enforced at start:",
             "# a bad value stops the node, naming it.", f"/**/{node}:", "  ros__parameters:"]
    for param in node_params(node):
        limits = _limits(param, " | ")
        comment = param.description + (f" ({limits})" if param.choices else f" {limits}" if limits else "")
        lines += textwrap.wrap(comment, 100, initial_indent="    # ", subsequent_indent="    # ")
        lines.append(f"    {param.name}: {value_text(param.default)}")
    return "\n".join(lines) + "\n"


def markdown_table(node: str) -> str:
    """The ``docs/nodes.md`` table of ``node``'s parameters (name, default, limits, meaning)."""
    rows = ["| name | default | range / choices | meaning |", "|---|---|---|---|"]
    for param in node_params(node):
        limits = _limits(param, " \\| ")  # a bare | would end the cell
        rows.append(f"| `{param.name}` | `{value_text(param.default)}` | {limits} | {param.description} |")
    return "\n".join(rows) + "\n"


def nodes_md(text: str) -> str:
    """``docs/nodes.md`` text with each ``#### <node> parameters`` table replaced by the current one."""
    for node in NODES:
        heading = f"#### {node} parameters\n\n"
        start = text.index(heading) + len(heading)
        end = start
        while end < len(text) and text.startswith("|", end):
            end = text.index("\n", end) + 1
        text = text[:start] + markdown_table(node) + text[end:]
    return text


def expected_files(root: Path = ROOT) -> dict[Path, str]:
    """``{path: text}`` of every generated file."""
    files = {root / "config" / f"{node}.yaml": config_yaml(node) for node in NODES}
    docs = root / "docs" / "nodes.md"
    files[docs] = nodes_md(docs.read_text())
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mirage_ros.ros.param_docs", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a file is out of date")
    args = parser.parse_args(argv)
    stale = [path for path, text in expected_files().items() if path.read_text() != text]
    if args.check:
        for path in stale:
            print(f"{path.relative_to(ROOT)} is out of date: run python -m mirage_ros.ros.param_docs", file=sys.stderr)
        return 1 if stale else 0
    for path, text in expected_files().items():
        path.write_text(text)
    print("rewrote " + (", ".join(str(p.relative_to(ROOT)) for p in stale) or "nothing (all current)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
