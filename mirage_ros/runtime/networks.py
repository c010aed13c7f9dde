"""The shipped encoder and renderer, run through ONNX Runtime (no torch).

``Networks.load()`` reads ``mirage_ros/weights/manifest.json``, checks every ONNX file's sha256
against it (a mismatch or a missing file raises :class:`WeightsError` naming the file) and opens
one session per network on the chosen provider (``mirage_ros.runtime.session``), plus the graphs
around them (``memory_maths.views``: camera image in, read-outs to renderer inputs with the newest
frame overlaid, 8-bit image out) and the geometric sub-cell placement graph
(``memory_maths.subcell``) that moves rendered cells to where their memory points project, used
when the manifest says the renderer was trained with it (``network.subcell_placement``).

Every stage runs through IOBinding on device buffers (``BoundSession``): on CUDA an image goes up
once and a view comes down once as ``uint8`` (:meth:`Networks.encode_device`,
:meth:`Networks.compose_device`, :meth:`Networks.render_device`); the host methods
(:meth:`Networks.encode`, :meth:`Networks.render_views`) are those with an upload and a download.

Shapes: images ``(H, W, 3) uint8``; latents ``(C, h, w) float32`` with ``h = H // s``,
``w = W // s`` (``s`` = the manifest's stride; pixels past the last whole block are cropped, as in
``geometry.Intrinsics.scaled``); the renderer returns ``(s*h, s*w, 3) uint8``.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mirage_ros import graphs
from mirage_ros.errors import InvalidInput, MirageError
from mirage_ros.runtime.session import BoundSession, BufferSets, BufferView

#: outputs of the view-inputs graph (``memory_maths.views``): the renderer's inputs and the read-out
#: the view shows (newest frame overlaid)
COMPOSED = ("render_latent", "render_valid", "render_depth", "cell_valid", "cell_depth", "cell_offset")

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
MANIFEST_NAME = "manifest.json"
#: Networks shipped in the package, by the name ``weights_dir`` arguments and parameters take:
#: ``standard`` (also ``""``), and ``light`` (a quarter of the renderer's work, for CPU robots;
#: docs/training.md gives both's fidelity and speed).
SHIPPED_NETWORKS = {"": WEIGHTS_DIR, "standard": WEIGHTS_DIR, "light": WEIGHTS_DIR / "light"}
#: ``subcell_placement`` settings of nodes and evaluations -> ``Networks.load``'s argument. Not
#: "on" / "off": YAML (ROS parameters, launch arguments) reads those as booleans.
SUBCELL_PLACEMENT = {"auto": None, "enabled": True, "disabled": False}


class WeightsError(MirageError):
    """The shipped weights are missing, unreadable or do not match their manifest."""


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes (as recorded in, and checked against, the manifest)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def weights_path(weights_dir: str | Path | None) -> Path:
    """The folder of ``weights_dir``: a name of ``SHIPPED_NETWORKS`` (None: ``standard``) or a
    folder path as it is."""
    if weights_dir is None:
        return WEIGHTS_DIR
    return SHIPPED_NETWORKS.get(str(weights_dir), Path(weights_dir))


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
    """Encoder + renderer ONNX sessions and the graphs around them (module docstring).

    Attributes:
        stride: latent stride ``s``.
        channels: latent channels ``C``.
        manifest: the verified manifest (training command, metrics, parity).
        provider: execution provider actually in use.
        renders_batches: whether the renderer takes several views per call (exported with a
            dynamic batch; older weights render a batch one view after the other).
    """

    stride: int
    channels: int
    manifest: dict
    provider: str
    _encoder: BoundSession
    _renderer: BoundSession
    _subcell: BoundSession | None  # the placement graph, only for networks trained with it
    _glue: dict  # graphs.IMAGE_IN / VIEW_INPUTS / IMAGE_OUT -> BoundSession

    def __post_init__(self) -> None:
        self.renders_batches = not isinstance(self._renderer.session.get_inputs()[0].shape[0], int)
        self._frames = BufferSets(self._frame_buffers, keep=2)
        self._views = BufferSets(self._view_buffers)
        # read-out sets made only when used: all invalid (compose without a newest frame), and
        # read-outs uploaded from the host (render_views)
        self._nothing = BufferSets(self._readout_set)
        self._host = BufferSets(self._readout_set)
        #: held by whoever runs a chain of device steps on these buffers (``WorldModel``)
        self.lock = threading.RLock()

    @classmethod
    def load(cls, weights_dir: str | Path | None = None, provider: str = "auto",
             threads: int | None = None, subcell_placement: bool | None = None, allow_tf32: bool = False,
             cuda_graph: bool = False) -> Networks:
        """Open the shipped networks (or those in ``weights_dir``) after verifying their sha256.

        Args:
            weights_dir: folder holding ``manifest.json`` and the ONNX files, or the name of
                shipped networks (``SHIPPED_NETWORKS``: ``standard``, ``light``); default: standard.
            provider: ``"auto"`` (CUDA when available), ``"cuda"`` or ``"cpu"``.
            threads: CPU intra-op threads (default: ``runtime.session``'s).
            subcell_placement: move rendered cells by the read-out's offsets (``memory_maths.subcell``);
                default: as the networks were trained (the manifest's ``network.subcell_placement``).
            allow_tf32: on CUDA, run the encoder's and renderer's convolutions in TF32 (faster on
                tensor cores, ~1e-3 relative error; the memory's graphs stay float32).
            cuda_graph: on CUDA, capture every stage as a CUDA graph per image size and view count
                (their buffers are fixed, refilled in place).

        Raises:
            WeightsError: missing files or sha256 mismatch.
            InvalidInput: unknown ``provider``.
        """
        weights_dir = weights_path(weights_dir)
        manifest = verified_manifest(weights_dir)
        files = manifest["files"]
        options = {"threads": threads, "cuda_graph": cuda_graph}
        encoder = BoundSession(weights_dir / files["encoder"]["file"], provider, allow_tf32=allow_tf32, **options)
        device = encoder.device
        renderer = BoundSession(weights_dir / files["renderer"]["file"], device, allow_tf32=allow_tf32, **options)
        net = manifest["network"]
        if subcell_placement is None:
            subcell_placement = bool(net.get("subcell_placement", False))
        subcell = BoundSession(graphs.path(graphs.SUBCELL), device, **options) if subcell_placement else None
        glue = {name: BoundSession(graphs.path(name), device, **options)
                for name in (graphs.IMAGE_IN, graphs.VIEW_INPUTS, graphs.IMAGE_OUT)}
        return cls(int(net["stride"]), int(net["channels"]), manifest,
                   encoder.session.get_providers()[0], encoder, renderer, subcell, glue)

    @property
    def device(self) -> str:
        """``"cuda"`` or ``"cpu"``: where the device buffers live."""
        return self._encoder.device

    @property
    def cuda_graph(self) -> bool:
        """Whether the stages run as captured CUDA graphs (``load(cuda_graph=True)`` on CUDA)."""
        return self._encoder.cuda_graph

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

    # ------------------------------------------------------------------ encoder
    def encode(self, rgb: np.ndarray) -> np.ndarray:
        """``(H, W, 3) uint8`` image -> ``(C, H // s, W // s) float32`` latent.

        Raises:
            InvalidInput: ``rgb`` not ``(H, W, 3) uint8`` or smaller than one latent cell.
        """
        with self.lock:
            return BoundSession.to_host(self.encode_device(rgb))

    def encode_device(self, rgb: np.ndarray) -> BufferView:
        """:meth:`encode` without the download: the latent ``(C, h, w)`` as a device buffer
        (``LatentMemory.insert`` takes it), valid until the next image of this size is encoded."""
        rgb = np.asarray(rgb)
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise InvalidInput("rgb", f"must be (H, W, 3) uint8, got {rgb.shape} {rgb.dtype}")
        h, w = self.latent_shape(*rgb.shape[:2])
        if h == 0 or w == 0:
            raise InvalidInput("rgb", f"image {rgb.shape[:2]} smaller than stride {self.stride}")
        s = self.stride
        frame = self._frames(h, w)
        BoundSession.write(frame["rgb"], rgb[: h * s, : w * s])
        self._glue[graphs.IMAGE_IN].run({"rgb": frame["rgb"]}, {"image": frame["image"]})
        self._encoder.run({self._encoder.input_names[0]: frame["image"]},
                          {self._encoder.output_names[0]: frame["latent"]})
        return frame["latent_view"]

    def _frame_buffers(self, h: int, w: int) -> dict:
        s, alloc = self.stride, self._encoder.alloc
        latent = alloc((1, self.channels, h, w), np.float32)
        return {"rgb": alloc((h * s, w * s, 3), np.uint8), "image": alloc((1, 3, h * s, w * s), np.float32),
                "latent": latent, "latent_view": BufferView(latent, (self.channels, h, w))}

    # ------------------------------------------------------------------ renderer
    def compose_device(self, readout: dict, newest: dict | None = None) -> dict:
        """Device read-outs of ``V`` views -> the renderer's inputs (``COMPOSED``).

        Args:
            readout: ``latent (V, C, h, w)``, ``valid (V, h, w) bool``, ``depth (V, h, w)``,
                ``offset (V, 2, h, w)`` device buffers (``LatentMemory.read_out_views_device``).
            newest: the newest frame's read-out, overlaid where it sees the surface
                (``memory_maths.views.overlay``); None: the memory alone.

        Returns:
            The ``COMPOSED`` buffers (``cell_*``: the read-out the view shows), reused by the next
            call with as many views of this grid size.
        """
        v, h, w = readout["valid"].shape()
        buffers = self._views(v, h, w)
        newest = newest if newest is not None else self._nothing(v, h, w)
        inputs = {**{n: readout[n] for n in _READOUT}, **{f"newest_{n}": newest[n] for n in _READOUT}}
        composed = {n: buffers[n] for n in COMPOSED}
        self._glue[graphs.VIEW_INPUTS].run(inputs, composed)
        return composed

    def render_device(self, composed: dict, place: bool = True):
        """Render :meth:`compose_device`'s output: ``(V, s*h, s*w, 3) uint8`` on the device,
        reused by the next call with as many views of this grid size. ``place``: move cells by
        their offsets when the networks do (:attr:`subcell_placement`)."""
        v, h, w = composed["cell_valid"].shape()
        buffers = self._views(v, h, w)
        names = self._renderer.input_names
        inputs = dict(zip(names, (composed["render_latent"], composed["render_valid"], composed["render_depth"])))
        output = self._renderer.output_names[0]
        if self.renders_batches:
            self._renderer.run(inputs, {output: buffers["rgb"]})
        else:  # one view at a time, each through its slice of the buffers
            for i in range(v):
                self._renderer.run({n: buffers["slices"][n][i] for n in names}, {output: buffers["slices"]["rgb"][i]})
        rgb = buffers["rgb"]
        if place and self.subcell_placement:
            self._subcell.run({"rgb": rgb, "offset": composed["cell_offset"]}, {"rgb_placed": buffers["placed"]})
            rgb = buffers["placed"]
        self._glue[graphs.IMAGE_OUT].run({"rgb": rgb}, {"image": buffers["image"]})
        return buffers["image"]

    def _readout_set(self, v: int, h: int, w: int) -> dict:
        return readout_buffers(self._renderer, v, self.channels, h, w)

    def _view_buffers(self, v: int, h: int, w: int) -> dict:
        s, c, alloc = self.stride, self.channels, self._renderer.alloc
        composed_shapes = {"render_latent": (v, c, h, w), "render_valid": (v, 1, h, w), "render_depth": (v, 1, h, w),
                           "cell_depth": (v, h, w), "cell_offset": (v, 2, h, w)}
        buffers = {
            **{n: alloc(shape, np.float32) for n, shape in composed_shapes.items()},
            "cell_valid": alloc((v, h, w), np.bool_),
            "rgb": alloc((v, 3, s * h, s * w), np.float32),
            "image": alloc((v, s * h, s * w, 3), np.uint8),
        }
        if self.subcell_placement:
            buffers["placed"] = alloc((v, 3, s * h, s * w), np.float32)
        if not self.renders_batches:
            sources = dict(zip(self._renderer.input_names, ("render_latent", "render_valid", "render_depth")), rgb="rgb")
            buffers["slices"] = {n: [_slice(buffers[src], i) for i in range(v)] for n, src in sources.items()}
        return buffers

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
        return self._render([self._checked(r.latent, r.valid, r.depth, r.offset) for r in readouts], shape)

    def _render(self, arrays: list[tuple], shape: tuple[int, int] | None = None) -> list[np.ndarray]:
        """Images of checked ``(latent, valid, depth, offset)`` tuples (``render_views``)."""
        if len({a[0].shape for a in arrays}) > 1:
            raise InvalidInput("readouts", f"must share one grid size, got {sorted({a[0].shape for a in arrays})}")
        place = all(a[3] is not None for a in arrays)
        with self.lock:
            images = BoundSession.to_host(self.render_device(self.compose_device(self._upload(arrays)), place))
        return [pad_to(image, shape) for image in images]

    def upload_readouts(self, readouts) -> dict:
        """Host read-outs of one grid size (``.latent``, ``.valid``, ``.depth``, ``.offset``) as
        ``(V, ...)`` device buffers for :meth:`compose_device` (reused by the next upload of as
        many views of this grid size)."""
        return self._upload([self._checked(r.latent, r.valid, r.depth, r.offset) for r in readouts])

    def _upload(self, arrays: list[tuple]) -> dict:
        """Checked ``(latent, valid, depth, offset)`` tuples into the ``host`` buffers (offset
        None: zeros)."""
        _, h, w = arrays[0][0].shape
        host = self._host(len(arrays), h, w)
        for k, name in enumerate(_READOUT):
            BoundSession.write(host[name], np.stack([a[k] if a[k] is not None else np.zeros((2, h, w), np.float32)
                                                     for a in arrays]))
        return host

    def render_arrays(self, latent: np.ndarray, valid: np.ndarray, depth: np.ndarray,
                      offset: np.ndarray | None = None) -> np.ndarray:
        """Warped latent -> image, filling cells where ``valid`` is False.

        Args:
            latent: ``(C, h, w)`` float latent (values in invalid cells are ignored).
            valid: ``(h, w)`` bool (any nonzero number counts as covered).
            depth: ``(h, w)`` metres at each cell (0, NaN or inf: drawn as a hole).
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
        """``(latent (C, h, w) float32, valid (h, w) bool, depth (h, w) float32, offset (2, h, w)
        float32 or None)``; raises ``InvalidInput`` naming a misshapen argument."""
        latent = np.asarray(latent, dtype=np.float32)
        if latent.ndim != 3 or latent.shape[0] != self.channels:
            raise InvalidInput("latent", f"must be ({self.channels}, h, w), got {latent.shape}")
        grid = latent.shape[1:]
        valid = np.asarray(valid) != 0
        depth = np.asarray(depth, dtype=np.float32)
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


_READOUT = ("latent", "valid", "depth", "offset")


def readout_buffers(session: BoundSession, v: int, channels: int, h: int, w: int) -> dict:
    """Zero-filled (all invalid) read-out buffers of ``v`` views of an ``h x w`` grid on
    ``session``'s device, as :meth:`Networks.compose_device` takes them: ``latent (v, C, h, w)``,
    ``valid (v, h, w) bool``, ``depth (v, h, w)``, ``offset (v, 2, h, w)``."""
    return {"latent": session.alloc((v, channels, h, w), np.float32), "valid": session.alloc((v, h, w), np.bool_),
            "depth": session.alloc((v, h, w), np.float32), "offset": session.alloc((v, 2, h, w), np.float32)}


def _slice(buffer, i: int) -> BufferView:
    """View ``i`` of a ``(V, ...)`` buffer, as a batch of one."""
    shape = buffer.shape()
    return BufferView(buffer, (1, *shape[1:]), i * int(np.prod(shape[1:])))


def pad_to(image: np.ndarray, shape: tuple[int, int] | None) -> np.ndarray:
    """``(h, w, 3)`` image grown to ``shape (H, W)`` by repeating its last row and column (the
    ragged edge past whole latent cells); as it is when ``shape`` is None or its own."""
    if shape is None or image.shape[:2] == tuple(shape):
        return image
    return np.pad(image, ((0, shape[0] - image.shape[0]), (0, shape[1] - image.shape[1]), (0, 0)), mode="edge")
