"""``mirage-ros export``: checkpoint -> ``encoder.onnx`` + ``renderer.onnx`` + ``manifest.json``.

Weights are stored as float16 (cast to float32 when loaded; see :func:`store_initializers_fp16`).

ONNX opset 18, IR version <= 13, dynamic image size (``H``, ``W`` multiples of the stride; the
renderer takes the latent grid ``h = H / s``). Each file is checked against torch on random
inputs at two sizes with ONNX Runtime (CPU) and the largest absolute difference is recorded in the
manifest together with sha256, training command, config, data seeds, validation metrics and the
training time.
"""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

from mirage_ros.errors import InvalidInput
from mirage_ros.model.config import config_from_dict
from mirage_ros.model.networks import Encoder, NetworkConfig, Renderer, count_parameters
from mirage_ros.runtime.networks import MANIFEST_NAME, sha256_file

OPSET = 18
MAX_IR_VERSION = 13
PARITY_SIZES = ((240, 320), (480, 640))  # (H, W) checked after export
PARITY_BATCHES = (2, 1)  # images per call at those sizes: the batch dimension is dynamic
PARITY_TOLERANCE = 1e-4


def round_weights_to_fp16(module: torch.nn.Module) -> None:
    """Round every parameter to the nearest float16 value, in place (what the file will hold)."""
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(p.half().float())


def store_initializers_fp16(model: onnx.ModelProto, min_size: int = 1024) -> None:
    """Store large float32 initializers as float16 followed by a ``Cast`` to float32.

    Halves the files; ONNX Runtime folds the casts when it loads the model, so inference still runs
    in float32 with weights that are exactly the float16-rounded ones the parity check uses.
    """
    graph = model.graph
    for init in list(graph.initializer):
        array = numpy_helper.to_array(init)
        if array.dtype != np.float32 or array.size < min_size:
            continue
        graph.initializer.remove(init)
        graph.initializer.append(numpy_helper.from_array(array.astype(np.float16), init.name + "_fp16"))
        graph.node.insert(0, helper.make_node("Cast", [init.name + "_fp16"], [init.name],
                                              to=TensorProto.FLOAT, name=init.name + "_cast"))


def _to_onnx(module: torch.nn.Module, args: tuple, names_in: list[str], names_out: list[str],
             dynamic: dict) -> bytes:
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(module, args, buf, opset_version=OPSET, dynamo=False,
                          input_names=names_in, output_names=names_out, dynamic_axes=dynamic)
    model = onnx.load_from_string(buf.getvalue())
    store_initializers_fp16(model)
    model.ir_version = min(model.ir_version, MAX_IR_VERSION)
    onnx.checker.check_model(model)
    return model.SerializeToString()


def export_networks(encoder: Encoder, renderer: Renderer, stride: int, channels: int,
                    out_dir: Path) -> dict:
    """Write both ONNX files into ``out_dir``; returns their manifest entries and parity."""
    import onnxruntime as ort

    out_dir.mkdir(parents=True, exist_ok=True)
    encoder, renderer = encoder.cpu().eval(), renderer.cpu().eval()
    round_weights_to_fp16(encoder)
    round_weights_to_fp16(renderer)
    h, w = PARITY_SIZES[0]
    rgb = torch.rand(1, 3, h, w)
    grid = (1, 1, h // stride, w // stride)
    render_args = (torch.randn(1, channels, *grid[2:]), torch.ones(grid), torch.full(grid, 2.0))
    files = {
        "encoder": _to_onnx(encoder, (rgb,), ["rgb"], ["latent"],
                            {"rgb": {0: "N", 2: "H", 3: "W"}, "latent": {0: "N", 2: "h", 3: "w"}}),
        # a batch of N views renders in one call (predicted views along a path)
        "renderer": _to_onnx(renderer, render_args, ["latent", "valid", "depth"], ["rgb"],
                             {"latent": {0: "N", 2: "h", 3: "w"}, "valid": {0: "N", 2: "h", 3: "w"},
                              "depth": {0: "N", 2: "h", 3: "w"}, "rgb": {0: "N", 2: "H", 3: "W"}}),
    }
    entries, parity = {}, {}
    gen = torch.Generator().manual_seed(0)
    for name, blob in files.items():
        path = out_dir / f"{name}.onnx"
        path.write_bytes(blob)
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        worst = 0.0
        for (h, w), n in zip(PARITY_SIZES, PARITY_BATCHES):
            hl, wl = h // stride, w // stride
            if name == "encoder":
                feeds = {"rgb": torch.rand(n, 3, h, w, generator=gen)}
                ref = encoder(feeds["rgb"])
            else:
                valid = (torch.rand(n, 1, hl, wl, generator=gen) > 0.3).float()
                feeds = {"latent": torch.randn(n, channels, hl, wl, generator=gen),
                         "valid": valid,
                         "depth": valid * (0.3 + 8 * torch.rand(n, 1, hl, wl, generator=gen))}
                ref = renderer(*feeds.values())
            got = session.run(None, {k: v.numpy() for k, v in feeds.items()})[0]
            worst = max(worst, float(np.abs(got - ref.detach().numpy()).max()))
        if worst > PARITY_TOLERANCE:
            raise RuntimeError(f"{name}.onnx differs from torch by {worst:.3g} > {PARITY_TOLERANCE}")
        model = onnx.load(str(path))
        entries[name] = {"file": path.name, "sha256": sha256_file(path), "bytes": path.stat().st_size,
                         "ir_version": model.ir_version, "opset": OPSET,
                         "parameters": count_parameters(encoder if name == "encoder" else renderer),
                         "inputs": [i.name for i in model.graph.input],
                         "outputs": [o.name for o in model.graph.output]}
        parity[name] = worst
    return {"files": entries, "parity_max_abs_diff": parity,
            "parity_sizes_hw": [list(s) for s in PARITY_SIZES]}


@torch.no_grad()
def load_onnx_weights(encoder: Encoder, renderer: Renderer, weights_dir: Path) -> dict:
    """Load exported ONNX weights (a folder with ``manifest.json``, as written by the export) into
    ``encoder`` and ``renderer``: the inverse of the export (initializers keep the modules'
    parameter names). Returns the manifest.

    Raises:
        InvalidInput: ``init_weights`` for a missing folder or a network config that differs.
    """
    from mirage_ros.runtime.networks import verified_manifest

    weights_dir = Path(weights_dir)
    if not (weights_dir / MANIFEST_NAME).is_file():
        raise InvalidInput("init_weights", f"no {MANIFEST_NAME} in {weights_dir}")
    manifest = verified_manifest(weights_dir)
    for name, module in (("encoder", encoder), ("renderer", renderer)):
        model = onnx.load(str(weights_dir / manifest["files"][name]["file"]))
        arrays = {i.name.removesuffix("_fp16"): numpy_helper.to_array(i).astype(np.float32)
                  for i in model.graph.initializer}
        state = module.state_dict()
        if set(state) - set(arrays) or any(tuple(state[k].shape) != arrays[k].shape for k in state):
            raise InvalidInput("init_weights", f"{weights_dir}: {name} does not fit the config's network "
                                               f"(weights: {manifest['network']})")
        module.load_state_dict({k: torch.from_numpy(arrays[k]) for k in state})
    return manifest


@torch.no_grad()
def export_checkpoint(checkpoint: Path, out_dir: Path) -> Path:
    """Export ``checkpoint`` (a ``train`` ``last.pt``) to ``out_dir``; returns the manifest path."""
    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise InvalidInput("--checkpoint", f"no such file: {checkpoint}")
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    cfg = config_from_dict(state["config"])
    encoder, renderer = Encoder(cfg.network), Renderer(cfg.network)
    encoder.load_state_dict({k[len("encoder."):]: v for k, v in state["nets"].items()
                             if k.startswith("encoder.")})
    renderer.load_state_dict({k[len("renderer."):]: v for k, v in state["nets"].items()
                              if k.startswith("renderer.")})
    exported = export_networks(encoder, renderer, cfg.network.stride, cfg.network.channels,
                               Path(out_dir))
    validations = [h["val"] for h in state["history"] if "val" in h]
    fusion = cfg.real if cfg.real.enabled else cfg.sim
    manifest = {
        "format": 1,
        "network": {"stride": cfg.network.stride, "channels": cfg.network.channels,
                    "width": cfg.network.width, "renderer_levels": cfg.network.renderer_levels,
                    "subcell_placement": cfg.network.subcell_placement,
                    "encoder_input": "rgb (1, 3, H, W) float32 in [0, 1], H and W multiples of stride",
                    "renderer_inputs": "latent (1, C, h, w), valid (1, 1, h, w) in [0, 1], "
                                       "depth (1, 1, h, w) metres (0 = hole)",
                    "renderer_output": "rgb (1, 3, s*h, s*w) float32 in [0, 1]"},
        **exported,
        # the memory fusion the renderer was trained on; WorldModel runs its memory with it
        "memory": {"voxel_size": fusion.voxel_size, "voxel_per_footprint": fusion.voxel_per_footprint,
                   "max_weight": fusion.max_weight},
        "training": {"command": state["command"], "steps": state["step"],
                     "train_seconds": round(state["train_seconds"], 1),
                     "device": state["device"], "world_size": state["world_size"],
                     "initialised_from": state.get("initialised_from"),
                     "gpu_seconds": round(state["train_seconds"] * state["world_size"], 1)
                     if state["device"].startswith("cuda") else 0.0,
                     "data": {"seed": cfg.seed, "sources": cfg.data_sources,
                              "sim_train_seeds": cfg.sim.train_seeds if cfg.sim.enabled else [],
                              "sim_val_seeds": cfg.sim.val_seeds if cfg.sim.enabled else [],
                              "sim_scenes": cfg.sim.scenes if cfg.sim.enabled else [],
                              "real_sequences": cfg.real.sequences if cfg.real.enabled else [],
                              "real_val_sequences": cfg.real.val_sequences if cfg.real.enabled else [],
                              "natural_image_dirs": cfg.natural.image_dirs if cfg.natural.enabled else [],
                              "natural_heldout": cfg.natural.heldout if cfg.natural.enabled else []},
                     "config": cfg.to_dict()},
        "metrics": {"validation": validations[-1] if validations else {}},
    }
    path = Path(out_dir) / MANIFEST_NAME
    path.write_text(json.dumps(manifest, indent=2) + "\n")
    return path


@torch.no_grad()
def reexport_weights(weights_dir: Path, out_dir: Path) -> Path:
    """Export already exported weights again with this exporter (e.g. a dynamic batch for older
    files): the same float16 weights, new ONNX files and their manifest entries and parity; the
    rest of the manifest (training, data, metrics) is kept. Returns the manifest path."""
    from mirage_ros.runtime.networks import verified_manifest

    manifest = verified_manifest(Path(weights_dir))
    net = manifest["network"]
    cfg = NetworkConfig(stride=int(net["stride"]), channels=int(net["channels"]), width=int(net["width"]),
                        renderer_levels=int(net["renderer_levels"]),
                        subcell_placement=bool(net.get("subcell_placement", False)))
    encoder, renderer = Encoder(cfg), Renderer(cfg)
    load_onnx_weights(encoder, renderer, Path(weights_dir))
    manifest.update(export_networks(encoder, renderer, cfg.stride, cfg.channels, Path(out_dir)))
    path = Path(out_dir) / MANIFEST_NAME
    path.write_text(json.dumps(manifest, indent=2) + "\n")
    return path


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("export", help="export a training checkpoint to ONNX + manifest")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", help="train checkpoint (OUT/last.pt)")
    source.add_argument("--weights", help="exported weights to export again with this exporter (a folder "
                                          "with manifest.json; training record and metrics kept)")
    p.add_argument("--out", default="mirage_ros/weights", help="output folder (default: %(default)s)")
    p.set_defaults(func=_main)


def _main(args) -> int:
    if args.checkpoint:
        print(export_checkpoint(Path(args.checkpoint), Path(args.out)))
    else:
        print(reexport_weights(Path(args.weights), Path(args.out)))
    return 0
