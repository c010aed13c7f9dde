"""The shipped encoder and renderer, run through ONNX Runtime (no torch).

``Networks.load()`` reads ``mirage_ros/weights/manifest.json``, checks every ONNX file's sha256
against it (a mismatch or a missing file raises :class:`WeightsError` naming the file) and opens
one session per network on the chosen provider (``mirage_ros.runtime.session``), plus the
geometric sub-cell placement graph (``memory_maths.subcell``) that moves rendered cells to where their
memory points project, used when the manifest says the renderer was trained with it
(``network.subcell_placement``).

Shapes: images ``(H, W, 3) uint8``; latents ``(C, h, w) float32`` with ``h = H // s``,
``w = W // s`` (``s`` = the manifest's stride; pixels past the last whole block are cropped, as in
``geometry.Intrinsics.scaled``); the renderer returns ``(s*h, s*w, 3) uint8``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mirage_ros import graphs
from mirage_ros.errors import InvalidInput, MirageError
from mirage_ros.runtime.session import create_session

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
MANIFEST_NAME = "manifest.json"
#: ``subcell_placement`` settings of nodes and evaluations -> ``Networks.load``'s argument. Not
#: "on" / "off": YAML (ROS parameters, launch arguments) reads those as booleans.
SUBCELL_PLACEMENT = {"auto": None, "enabled": True, "disabled": False}


class WeightsError(MirageError):
    """The shipped weights are missing, unreadable or do not match their manifest."""


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes (as recorded in, and checked against, the manifest)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def verified_manifest(weights_dir: Path) -> dict:
    """Read ``weights_dir/manifest.json`` and check the sha256 of every file it lists.

    Returns:
        The manifest as a dict.

    Raises:
        WeightsError: manifest or a listed file missing, malformed, or a sha256 mismatch.
    """
    path = Path(weights_dir) / MANIFEST_NAME
    try:
        manifest = json.loads(path.read_text())
        files = manifest["files"]
        network = manifest["network"]
        int(network["stride"]), int(network["channels"])
    except FileNotFoundError:
        raise WeightsError(f"no weights manifest at {path}") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise WeightsError(f"malformed weights manifest {path}: {exc!r}") from None
    for name in ("encoder", "renderer"):
        if name not in files:
            raise WeightsError(f"{path} lists no '{name}' file")
        onnx_path = Path(weights_dir) / files[name]["file"]
        if not onnx_path.is_file():
            raise WeightsError(f"{name} weights file missing: {onnx_path}")
        digest = sha256_file(onnx_path)
        if digest != files[name]["sha256"]:
            raise WeightsError(f"sha256 mismatch for {onnx_path}: file {digest}, "
                               f"manifest {files[name]['sha256']} (corrupted or replaced weights)")
    return manifest


@dataclass
class Networks:
    """Encoder + renderer ONNX sessions.

    Attributes:
        stride: latent stride ``s``.
        channels: latent channels ``C``.
        manifest: the verified manifest (training command, metrics, parity).
        provider: execution provider actually in use.
    """

    stride: int
    channels: int
    manifest: dict
    provider: str
    _encoder: object
    _renderer: object
    _subcell: object | None  # the placement graph's session, only for networks trained with it

    @classmethod
    def load(cls, weights_dir: str | Path | None = None, provider: str = "auto",
             threads: int | None = None, subcell_placement: bool | None = None) -> Networks:
        """Open the shipped networks (or those in ``weights_dir``) after verifying their sha256.

        Args:
            weights_dir: folder holding ``manifest.json`` and the ONNX files; default: the
                package's ``mirage_ros/weights``.
            provider: ``"auto"`` (CUDA when available), ``"cuda"`` or ``"cpu"``.
            threads: CPU intra-op threads (default: ``runtime.session``'s).
            subcell_placement: move rendered cells by the read-out's offsets (``memory_maths.subcell``);
                default: as the networks were trained (the manifest's ``network.subcell_placement``).

        Raises:
            WeightsError: missing files or sha256 mismatch.
            InvalidInput: unknown ``provider``.
        """
        weights_dir = Path(weights_dir) if weights_dir is not None else WEIGHTS_DIR
        manifest = verified_manifest(weights_dir)
        files = manifest["files"]
        encoder = create_session(weights_dir / files["encoder"]["file"], provider, threads=threads)
        renderer = create_session(weights_dir / files["renderer"]["file"], provider, threads=threads)
        net = manifest["network"]
        if subcell_placement is None:
            subcell_placement = bool(net.get("subcell_placement", False))
        subcell = create_session(graphs.path(graphs.SUBCELL), provider, threads=threads) if subcell_placement else None
        return cls(int(net["stride"]), int(net["channels"]), manifest,
                   encoder.get_providers()[0], encoder, renderer, subcell)

    @property
    def subcell_placement(self) -> bool:
        """Whether rendered cells are moved by the read-out's offsets (``memory_maths.subcell``)."""
        return self._subcell is not None

    @property
    def memory_settings(self) -> dict:
        """``MemoryConfig`` fields the networks were trained with and the runtime memory follows
        (``max_weight``, the voxel policy: the renderer learnt latents fused that way); empty for
        weights whose manifest predates them (the defaults apply). Weights trained in fixed voxels
        (no ``voxel_per_footprint`` recorded) keep the runtime's footprint voxels: those cover the
        frame, which the fixed training voxels did not."""
        memory = dict(self.manifest.get("memory", {}))
        if "voxel_per_footprint" not in memory:
            memory.pop("voxel_size", None)
        return memory

    def latent_shape(self, height: int, width: int) -> tuple[int, int]:
        """``(h, w)`` latent grid of an ``height x width`` image."""
        return height // self.stride, width // self.stride

    def encode(self, rgb: np.ndarray) -> np.ndarray:
        """``(H, W, 3) uint8`` image -> ``(C, H // s, W // s) float32`` latent.

        Raises:
            InvalidInput: ``rgb`` not ``(H, W, 3) uint8`` or smaller than one latent cell.
        """
        rgb = np.asarray(rgb)
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise InvalidInput("rgb", f"must be (H, W, 3) uint8, got {rgb.shape} {rgb.dtype}")
        h, w = self.latent_shape(*rgb.shape[:2])
        if h == 0 or w == 0:
            raise InvalidInput("rgb", f"image {rgb.shape[:2]} smaller than stride {self.stride}")
        s = self.stride
        x = rgb[: h * s, : w * s].transpose(2, 0, 1)[None].astype(np.float32) / 255.0
        return self._encoder.run(None, {"rgb": x})[0][0]

    def render(self, readout, shape: tuple[int, int] | None = None) -> np.ndarray:
        """Render a memory read-out (``.latent``, ``.valid``, ``.depth``, ``.offset``): see
        :meth:`render_arrays`.

        With ``shape (H, W)``, the ragged edge past whole latent cells (``H % stride`` rows,
        ``W % stride`` columns) repeats the last rendered row / column, giving ``(H, W, 3)``.
        """
        return self.render_views([readout], shape)[0]

    def render_views(self, readouts, shape: tuple[int, int] | None = None) -> list[np.ndarray]:
        """Render read-outs of one grid size in one renderer call (views along a path): the same
        images as :meth:`render` of each (``shape`` as there). Renderers exported with a fixed
        batch of 1 (older weights) render them one after the other."""
        readouts = list(readouts)
        if not readouts:
            raise InvalidInput("readouts", "need at least one read-out")
        images = self._render([self._checked(r.latent, r.valid, r.depth, r.offset) for r in readouts])
        if shape is None:
            return images
        return [np.pad(small, ((0, shape[0] - small.shape[0]), (0, shape[1] - small.shape[1]), (0, 0)), mode="edge")
                for small in images]

    @property
    def renders_batches(self) -> bool:
        """Whether the renderer takes several views per call (exported with a dynamic batch)."""
        return not isinstance(self._renderer.get_inputs()[0].shape[0], int)

    def _render(self, arrays: list[tuple]) -> list[np.ndarray]:
        """``(s*h, s*w, 3) uint8`` images of checked ``(latent, valid, depth, offset)`` tuples."""
        if len({a[0].shape for a in arrays}) > 1:
            raise InvalidInput("readouts", f"must share one grid size, got {sorted({a[0].shape for a in arrays})}")
        place = all(a[3] is not None for a in arrays) and self.subcell_placement
        images = []
        step = len(arrays) if self.renders_batches else 1
        for start in range(0, len(arrays), step):
            chunk = arrays[start: start + step]
            latent, valid, depth = (np.stack([a[k] for a in chunk]) for k in range(3))
            valid = valid * (depth > 0)
            out = self._renderer.run(None, {"latent": latent, "valid": valid[:, None],
                                            "depth": (depth * valid)[:, None]})[0]
            if place:
                out = self._subcell.run(None, {"rgb": out, "offset": np.stack([a[3] for a in chunk])})[0]
            images.extend((np.clip(out, 0.0, 1.0).transpose(0, 2, 3, 1) * 255.0 + 0.5).astype(np.uint8))
        return images

    def render_arrays(self, latent: np.ndarray, valid: np.ndarray, depth: np.ndarray,
                      offset: np.ndarray | None = None) -> np.ndarray:
        """Warped latent -> image, filling cells where ``valid`` is False.

        Args:
            latent: ``(C, h, w)`` float latent (values in invalid cells are ignored).
            valid: ``(h, w)`` bool or float in ``[0, 1]``.
            depth: ``(h, w)`` metres at each cell (0 or NaN where invalid).
            offset: ``(2, h, w)`` where each cell's point projects, in cells from its centre
                (``Readout.offset``); with ``subcell_placement`` the rendered cells are moved
                there (``memory_maths.subcell``). None: content stays on the cell centres.

        Returns:
            ``(s*h, s*w, 3) uint8`` image.

        Raises:
            InvalidInput: naming the argument whose shape does not fit.
        """
        return self._render([self._checked(latent, valid, depth, offset)])[0]

    def _checked(self, latent, valid, depth, offset):
        """``(latent (C, h, w), valid (h, w), depth (h, w), offset (2, h, w) or None)`` as float32,
        NaN depths / offsets zeroed; raises ``InvalidInput`` naming a misshapen argument."""
        latent = np.asarray(latent, dtype=np.float32)
        if latent.ndim != 3 or latent.shape[0] != self.channels:
            raise InvalidInput("latent", f"must be ({self.channels}, h, w), got {latent.shape}")
        grid = latent.shape[1:]
        valid = np.asarray(valid, dtype=np.float32)
        depth = np.nan_to_num(np.asarray(depth, dtype=np.float32), nan=0.0, posinf=0.0)
        for name, arr in (("valid", valid), ("depth", depth)):
            if arr.shape != grid:
                raise InvalidInput(name, f"must be {grid} like the latent grid, got {arr.shape}")
        if offset is not None and self.subcell_placement:
            offset = np.nan_to_num(np.asarray(offset, dtype=np.float32))
            if offset.shape != (2, *grid):
                raise InvalidInput("offset", f"must be {(2, *grid)} like the latent grid, got {offset.shape}")
        else:
            offset = None
        return latent, valid, depth, offset
