"""ONNX Runtime sessions: provider choice, device buffers and IOBinding runs.

``provider`` is ``"auto"`` (CUDA when this onnxruntime build has it, else CPU), ``"cuda"``
(error if unavailable) or ``"cpu"``. The choice is logged once per process and provider as one
line on the ``mirage_ros.runtime`` logger, e.g.
``onnxruntime 1.31.1: provider cuda (CUDAExecutionProvider, device 0; asked: auto)``.

:class:`BoundSession` keeps its inputs and outputs as :class:`onnxruntime.OrtValue` buffers on the
session's device and runs through IOBinding, so state that lives between runs (the latent memory)
never goes through the host. With ``cuda_graph=True`` every distinct binding is captured once as a
CUDA graph (``gpu_graph_id``) and replayed after that; it needs buffers at fixed addresses, so
callers refill inputs in place (:meth:`BoundSession.write`) rather than binding new arrays.
A :class:`BufferView` binds part of a buffer, or all of it with another shape, without a copy
(one stage's ``(1, C, h, w)`` output as the next stage's ``(C, h, w)`` input).
"""

from __future__ import annotations

import logging
import os
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from mirage_ros.errors import InvalidInput, MirageError

LOG = logging.getLogger("mirage_ros.runtime")
PROVIDERS = ("auto", "cuda", "cpu")
_ORT_NAMES = {"cuda": "CUDAExecutionProvider", "cpu": "CPUExecutionProvider"}
_logged: set[tuple[str, str]] = set()


class ProviderUnavailable(MirageError):
    """The requested execution provider is not in this onnxruntime build."""


def resolve_provider(provider: str = "auto") -> str:
    """``"auto" | "cuda" | "cpu"`` -> the device actually used, ``"cuda"`` or ``"cpu"``.

    Raises:
        InvalidInput: ``provider`` is not one of :data:`PROVIDERS`.
        ProviderUnavailable: ``"cuda"`` asked but this onnxruntime has no CUDA provider.
    """
    if provider not in PROVIDERS:
        raise InvalidInput("provider", f"must be one of {PROVIDERS}, got {provider!r}")
    has_cuda = _ORT_NAMES["cuda"] in ort.get_available_providers()
    if provider == "cuda" and not has_cuda:
        raise ProviderUnavailable(
            f"provider 'cuda' asked but onnxruntime {ort.__version__} offers only "
            f"{ort.get_available_providers()} (install onnxruntime-gpu, see docs)"
        )
    device = "cuda" if provider == "cuda" or (provider == "auto" and has_cuda) else "cpu"
    if (provider, device) not in _logged:
        _logged.add((provider, device))
        detail = f"{_ORT_NAMES[device]}, device 0" if device == "cuda" else _ORT_NAMES[device]
        LOG.info("onnxruntime %s: provider %s (%s; asked: %s)", ort.__version__, device, detail, provider)
    return device


def session_options(threads: int | None = None) -> ort.SessionOptions:
    """Quiet options; ``threads`` intra-op threads (default ``MIRAGE_ORT_THREADS`` or 1: the
    memory graphs are chains of small ops that extra threads only slow down on a busy CPU)."""
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = int(threads or os.environ.get("MIRAGE_ORT_THREADS", 1))
    options.inter_op_num_threads = 1
    return options


def create_session(
    model: str | Path | bytes,
    provider: str = "auto",
    *,
    cuda_graph: bool = False,
    threads: int | None = None,
    allow_tf32: bool = False,
) -> ort.InferenceSession:
    """Open an ONNX model on the chosen provider (see :func:`resolve_provider`).

    Args:
        model: path to a ``.onnx`` file, or its bytes.
        provider: ``"auto"``, ``"cuda"`` or ``"cpu"``.
        cuda_graph: with CUDA, capture runs as CUDA graphs (IOBinding with fixed buffers only).
        threads: CPU intra-op threads (see :func:`session_options`).
        allow_tf32: let CUDA run float32 MatMul/Conv in TF32 (10-bit mantissa). Off by default:
            in TF32 a point 5 m away moves by millimetres, enough to change voxel keys and
            z-buffer cells. Networks that tolerate it may turn it on for speed.

    Raises:
        InvalidInput / ProviderUnavailable: see :func:`resolve_provider`.
        MirageError: the file is missing or not a loadable model.
    """
    device = resolve_provider(provider)
    options = session_options(threads)
    if device == "cuda":
        cuda_options = {"device_id": "0", "use_tf32": "1" if allow_tf32 else "0"}
        if cuda_graph:
            cuda_options["enable_cuda_graph"] = "1"
        providers = [(_ORT_NAMES["cuda"], cuda_options), _ORT_NAMES["cpu"]]
    else:
        providers = [_ORT_NAMES["cpu"]]
    if device == "cuda":
        _preload_cuda_libraries()
    source = model if isinstance(model, bytes) else str(model)
    name = "<bytes>" if isinstance(model, bytes) else model
    errors = ort.capi.onnxruntime_pybind11_state
    try:
        session = ort.InferenceSession(source, options, providers=providers)
    except (errors.Fail, errors.NoSuchFile, errors.InvalidProtobuf, errors.InvalidGraph) as exc:
        raise MirageError(f"cannot open ONNX model {name}: {exc}") from None
    if session.get_providers()[0] != _ORT_NAMES[device]:  # ORT falls back silently when CUDA libs fail
        raise ProviderUnavailable(f"{_ORT_NAMES[device]} did not load for {name} (CUDA/cuDNN libraries "
                                  f"missing?); session runs on {session.get_providers()}")
    return session


def _preload_cuda_libraries() -> None:
    """Let onnxruntime-gpu find CUDA/cuDNN from pip ``nvidia-*`` packages (e.g. torch's) when the
    system has none; a no-op on builds without ``preload_dlls``."""
    if hasattr(ort, "preload_dlls") and not getattr(_preload_cuda_libraries, "done", False):
        _preload_cuda_libraries.done = True
        try:
            ort.preload_dlls()
        except Exception as exc:  # noqa: BLE001 - best effort; session creation reports the real failure
            LOG.debug("onnxruntime preload_dlls failed: %s", exc)


_NUMPY_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(int64)": np.int64,
                "tensor(int32)": np.int32, "tensor(bool)": np.bool_, "tensor(uint8)": np.uint8}


@dataclass(frozen=True, eq=False)
class BufferView:
    """Elements ``[start, start + prod(dims))`` of ``buffer`` (flat, C order) seen as a ``dims``
    tensor: bound in place of ``buffer``, no copy. Answers ``shape()`` and ``device_name()`` as an
    OrtValue does, and :meth:`BoundSession.to_host` takes it. Keep one per binding (bindings are
    cached by identity) and do not let it outlive ``buffer``'s contents."""

    buffer: ort.OrtValue
    dims: tuple[int, ...]
    start: int = 0

    def __post_init__(self) -> None:
        size = int(np.prod(self.buffer.shape()))
        if self.start < 0 or self.start + int(np.prod(self.dims)) > size:
            raise InvalidInput("shape", f"{self.dims} from element {self.start} exceeds the buffer's {size} elements")

    def shape(self) -> list[int]:
        return list(self.dims)

    def device_name(self) -> str:
        return self.buffer.device_name()

    def bind(self, binding, name: str, output: bool) -> None:
        """Bind as input (or output) ``name`` of ``binding``: the buffer's memory at ``start``."""
        dtype = _NUMPY_TYPES[self.buffer.data_type()]
        pointer = self.buffer.data_ptr() + self.start * np.dtype(dtype).itemsize
        bind = binding.bind_output if output else binding.bind_input
        bind(name, self.device_name().lower(), 0, dtype, list(self.dims), pointer)


class BoundSession:
    """A session whose inputs and outputs are device-resident OrtValues, run through IOBinding.

    Args:
        model, provider, threads, allow_tf32: as :func:`create_session`.
        cuda_graph: capture each distinct binding as a CUDA graph (CUDA only; ignored on CPU).
    """

    MAX_BINDINGS = 32  # cached bindings (each keeps its buffers alive); a CUDA graph per binding

    def __init__(self, model, provider: str = "auto", *, cuda_graph: bool = False, threads=None,
                 allow_tf32: bool = False):
        self.device = resolve_provider(provider)
        self.cuda_graph = bool(cuda_graph) and self.device == "cuda"
        self.session = create_session(model, self.device, cuda_graph=self.cuda_graph, threads=threads,
                                      allow_tf32=allow_tf32)
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]
        self._bindings: dict[tuple, tuple] = {}
        self._graph_ids = 0

    def alloc(self, shape, dtype) -> ort.OrtValue:
        """A zero-filled ``shape``/``dtype`` buffer on this session's device."""
        return self.upload(np.zeros(shape, dtype))

    def upload(self, array: np.ndarray) -> ort.OrtValue:
        """A new device buffer holding a copy of ``array``."""
        array = np.ascontiguousarray(array)
        if self.device == "cuda":
            return ort.OrtValue.ortvalue_from_numpy(array, "cuda", 0)
        return ort.OrtValue.ortvalue_from_numpy(array.copy())

    def wrap(self, array: np.ndarray) -> ort.OrtValue:
        """A CPU buffer over ``array`` itself, no copy: the caller keeps ``array`` unchanged while
        the value is bound (CPU sessions only; use :meth:`upload` for a device)."""
        if self.device != "cpu":
            raise InvalidInput("array", f"wrap() shares host memory; this session runs on {self.device}")
        return ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(array))

    @staticmethod
    def to_host(buffer: ort.OrtValue | BufferView) -> np.ndarray:
        """A host copy of ``buffer`` (or of the elements a :class:`BufferView` sees) that owns its
        memory (``OrtValue.numpy()`` of a CPU value is a view that dies with the buffer)."""
        if isinstance(buffer, BufferView):
            size = int(np.prod(buffer.dims))
            flat = buffer.buffer.numpy().reshape(-1)[buffer.start: buffer.start + size]
            return np.array(flat.reshape(buffer.dims), copy=True)
        return np.array(buffer.numpy(), copy=True)

    @staticmethod
    def write(buffer: ort.OrtValue, array: np.ndarray) -> None:
        """Copy ``array`` into ``buffer`` in place (same shape and dtype; address unchanged)."""
        buffer.update_inplace(np.ascontiguousarray(array))

    def run(self, inputs: Mapping[str, ort.OrtValue | BufferView],
            outputs: Mapping[str, ort.OrtValue | BufferView]) -> None:
        """Run with every input and output bound to the given buffers (outputs are overwritten).

        A binding (the same buffers for the same names) is built once and reused; with CUDA graphs
        each distinct binding gets its own graph id, captured on its first run, so CUDA-graph
        callers must keep their buffers fixed (refill them with :meth:`write`).
        """
        key = tuple((n, id(v)) for n, v in inputs.items()) + tuple((n, id(v)) for n, v in outputs.items())
        if key not in self._bindings:
            if len(self._bindings) >= self.MAX_BINDINGS:  # callers binding fresh buffers every run
                self._bindings.clear()
            missing = set(self.input_names) - set(inputs)
            if missing:
                raise InvalidInput("inputs", f"no buffer for {sorted(missing)}")
            binding = self.session.io_binding()
            for names, output in ((inputs, False), (outputs, True)):
                for name, value in names.items():
                    if isinstance(value, BufferView):
                        value.bind(binding, name, output)
                    elif output:
                        binding.bind_ortvalue_output(name, value)
                    else:
                        binding.bind_ortvalue_input(name, value)
            run_options = ort.RunOptions()
            if self.cuda_graph:  # never reuse an id: its captured graph holds the old addresses
                self._graph_ids += 1
                run_options.add_run_config_entry("gpu_graph_id", str(self._graph_ids))
            # keep the buffers alive as long as the binding that points at them
            self._bindings[key] = (binding, run_options, dict(inputs), dict(outputs))
        binding, run_options = self._bindings[key][:2]
        self.session.run_with_iobinding(binding, run_options)

    def forget_bindings(self) -> None:
        """Drop cached bindings (call after reallocating buffers, e.g. on a new image size)."""
        self._bindings.clear()


class BufferSets:
    """Buffer sets made on first use by ``make(key)`` (a dict of device buffers, e.g. per image size
    or view count) and kept for the next call with that key; at most ``keep`` keys, the least
    recently used dropped first (a path's view count varies from message to message)."""

    def __init__(self, make: Callable[..., dict], keep: int = 12):
        self._make, self._keep = make, keep
        self._sets: OrderedDict = OrderedDict()

    def __call__(self, *key) -> dict:
        if key in self._sets:
            self._sets.move_to_end(key)
        else:
            self._sets[key] = self._make(*key)
            while len(self._sets) > self._keep:
                self._sets.popitem(last=False)
        return self._sets[key]
