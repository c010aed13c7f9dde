"""Write the memory's ONNX graphs into the package: ``python -m mirage_ros.memory_maths.build``.

The package ships the files (``mirage_ros/graphs/*.onnx``), so ``onnx`` is needed only here (build time
and tests), never at runtime.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mirage_ros import graphs
from mirage_ros.memory_maths import carve, readout, subcell, update, views


def build_all() -> dict:
    """Every shipped graph by file stem: ``update_s{stride}``, ``readout``, ``readout_views``,
    ``carve_s{stride}``, ``subcell_shift``, ``view_inputs``, ``image_in`` and ``image_out``
    (``onnx.ModelProto`` each)."""
    built = {graphs.update_name(s): update.graph(s) for s in graphs.STRIDES}
    built[graphs.READOUT] = readout.graph()
    built[graphs.READOUT_VIEWS] = readout.graph(views=True)
    built.update({graphs.carve_name(s): carve.graph(s) for s in graphs.STRIDES})
    built[graphs.SUBCELL] = subcell.graph()
    built[graphs.VIEW_INPUTS] = views.view_inputs_graph()
    built[graphs.IMAGE_IN] = views.image_in_graph()
    built[graphs.IMAGE_OUT] = views.image_out_graph()
    return built


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write the memory's ONNX graphs into the package.")
    parser.add_argument("--out", type=Path, default=graphs.GRAPH_DIR, help="output folder (default: %(default)s)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, model in build_all().items():
        (args.out / f"{name}.onnx").write_bytes(model.SerializeToString(deterministic=True))
        print(f"wrote {args.out / name}.onnx ({len(model.graph.node)} nodes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
