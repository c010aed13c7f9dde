"""The two array backends the memory's maths runs on: eager torch (:class:`TorchOps`) and an ONNX
graph recorder (:class:`OnnxOps`).

The maths (``update.py``, ``readout.py``, ``carve.py``, ``subcell.py``) is written once against the
small vocabulary below plus Python operators (``+ - * / < > <= >= & | ~``, unary ``-``). Each
method is one ONNX operator, named after it in its docstring, so the recorded graph holds exactly
the operators the maths names (shipped graphs stay free of Shape/Range: every node runs on the
CUDA provider and can be captured in a CUDA graph), and torch runs the same steps eagerly, with
autograd, for training and tests.

Rules the maths keeps so that both backends agree:

- a Python number takes the dtype of the tensor it meets (``x * 0.5`` with ``x`` int64 is an
  error in ONNX): write floats against float tensors, ints against integer tensors;
- integer division is :meth:`div_int` (ONNX ``Div`` truncates; only non-negative operands here);
- ``x == y`` records ``Equal`` on both (so :class:`Sym` is unhashable).

Build time and training only: needs ``onnx`` (recording) or ``torch`` (eager).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

OPSET = 18
IR_VERSION = 9


class _Shorthands:
    """Steps the maths takes over and over, written with the vocabulary (so once for both)."""

    def all_of(self, *conds):
        """``And`` of all ``conds``, left to right."""
        out = conds[0]
        for cond in conds[1:]:
            out = out & cond
        return out

    def col(self, x):
        """``(M,) -> (M, 1)``."""
        return self.unsqueeze(x, [1])

    def flat(self, x):
        """``(M, 1) -> (M,)``."""
        return self.reshape(x, [-1])

    def first_argmax(self, x, n: int):
        """``(M, n) -> (M, 1) int64``: the first column holding the row maximum on every provider
        (CUDA's ArgMax picks any of equal maxima)."""
        is_max = x == self.reduce("max", x, [1], keepdims=True)
        column = self.where(is_max, self.const(np.arange(n)[None, :], self.float32), float(n))
        return self.cast(self.reduce("min", column, [1], keepdims=True), self.int64)


class TorchOps(_Shorthands):
    """Eager torch: every method is the torch equivalent of the ONNX operator it names."""

    def __init__(self, device=None) -> None:
        import torch

        self.torch = torch
        self.device = device
        self.float32, self.float16, self.int64, self.int32, self.bool = (
            torch.float32, torch.float16, torch.int64, torch.int32, torch.bool)

    def const(self, value, dtype):
        """A constant tensor (an initializer in ONNX)."""
        return self.torch.as_tensor(np.asarray(value), dtype=dtype, device=self.device)

    def cast(self, x, dtype):
        """``Cast``."""
        return x.to(dtype)

    def where(self, cond, a, b):
        """``Where``."""
        t = self.torch
        a = a if isinstance(a, t.Tensor) else t.as_tensor(a, dtype=b.dtype, device=b.device)
        b = b if isinstance(b, t.Tensor) else t.as_tensor(b, dtype=a.dtype, device=a.device)
        return t.where(cond, a, b)

    def floor(self, x):
        """``Floor``."""
        return self.torch.floor(x)

    def isnan(self, x):
        """``IsNaN``."""
        return self.torch.isnan(x)

    def log(self, x):
        """``Log``."""
        return self.torch.log(x)

    def exp(self, x):
        """``Exp``."""
        return self.torch.exp(x)

    def maximum(self, a, b):
        """``Max`` (elementwise)."""
        return self.torch.maximum(a, self._like(b, a))

    def minimum(self, a, b):
        """``Min`` (elementwise)."""
        return self.torch.minimum(a, self._like(b, a))

    def clip(self, x, low: float, high: float):
        """``Clip``."""
        return self.torch.clamp(x, low, high)

    def mod(self, x, divisor):
        """``Mod`` (integer, the divisor's sign: Python's ``%``)."""
        return x % divisor

    def div_int(self, x, divisor):
        """``Div`` of integers (truncating)."""
        return self.torch.div(x, divisor, rounding_mode="trunc")

    def matmul(self, a, b):
        """``MatMul``."""
        return a @ b

    def reduce(self, kind: str, x, axes: Sequence[int] | None = None, keepdims: bool = True):
        """``Reduce{Sum,Mean,Min,Max}`` over ``axes`` (None: all)."""
        dims = tuple(range(x.dim())) if axes is None else tuple(axes)
        reducer = {"sum": x.sum, "mean": x.mean, "min": x.amin, "max": x.amax}[kind]
        return reducer(dim=dims, keepdim=keepdims)

    def argmax(self, x, axis: int):
        """``ArgMax`` keeping the axis (first of equal maxima on CPU; see :meth:`first_argmax`)."""
        return self.torch.argmax(x, dim=axis, keepdim=True)

    def sort_ascending(self, x, n: int, axis: int):
        """``TopK`` of all ``n`` elements along ``axis``, smallest first: the sorted values."""
        return self.torch.sort(x, dim=axis).values

    def cumsum(self, x, axis: int, exclusive: bool = False):
        """``CumSum``."""
        out = self.torch.cumsum(x, dim=axis)
        return out - x if exclusive else out

    def gather(self, x, index, axis: int = 0):
        """``Gather``: ``index`` (any shape, or an int: the axis is dropped) picks along ``axis``."""
        if isinstance(index, int):
            return x.select(axis, index)
        index = self.torch.where(index < 0, index + x.shape[axis], index)  # ONNX counts from the end
        flat = x.index_select(axis, index.reshape(-1))
        return flat.reshape(x.shape[:axis] + index.shape + x.shape[axis + 1:])

    def gather_elements(self, x, index, axis: int):
        """``GatherElements``."""
        return self.torch.gather(x, axis, index)

    def scatter(self, x, index, values, axis: int = 0, reduction: str | None = None):
        """``ScatterElements`` (``reduction`` None, ``"add"``, ``"max"`` or ``"min"``)."""
        if reduction is None:
            return x.scatter(axis, index, values)
        return x.scatter_reduce(axis, index, values, {"add": "sum", "max": "amax", "min": "amin"}[reduction])

    def scatter_rows(self, x, rows, values):
        """``ScatterND`` of whole rows: ``x[rows] = values`` for ``rows (N,)``."""
        return x.index_put((rows,), values)

    def concat(self, xs, axis: int):
        """``Concat``."""
        return self.torch.cat(list(xs), dim=axis)

    def split(self, x, n: int, axis: int):
        """``Split`` into ``n`` equal parts."""
        return list(self.torch.chunk(x, n, dim=axis))

    def slice(self, x, start: int, end: int, axis: int):
        """``Slice``."""
        return x.narrow(axis, start, min(end, x.shape[axis]) - start)

    def reshape(self, x, shape):
        """``Reshape`` (0 keeps that dimension, as in ONNX)."""
        return x.reshape(tuple(x.shape[k] if size == 0 else size for k, size in enumerate(shape)))

    def transpose(self, x, perm):
        """``Transpose``."""
        return x.permute(*perm)

    def unsqueeze(self, x, axes):
        """``Unsqueeze``."""
        for axis in sorted(axes):
            x = x.unsqueeze(axis)
        return x

    def squeeze(self, x, axes):
        """``Squeeze``."""
        for axis in sorted(axes, reverse=True):
            x = x.squeeze(axis)
        return x

    def space_to_depth(self, x, block: int):
        """``SpaceToDepth`` of ``(N, C, H, W)``."""
        return self.torch.nn.functional.pixel_unshuffle(x, block)

    def max_pool(self, x, kernel: int):
        """``MaxPool`` of ``(N, C, H, W)``, stride 1, padded by ``kernel // 2`` (with -inf)."""
        return self.torch.nn.functional.max_pool2d(x, kernel, stride=1, padding=kernel // 2)

    def grid_sample(self, x, grid):
        """``GridSample``: bilinear, border padding, ``align_corners`` 0."""
        return self.torch.nn.functional.grid_sample(x, grid, mode="bilinear", padding_mode="border",
                                                    align_corners=False)

    def _like(self, value, tensor):
        return value if isinstance(value, self.torch.Tensor) else self.torch.as_tensor(
            value, dtype=tensor.dtype, device=tensor.device)


class Sym:
    """A tensor of a graph being recorded: its value name and element type (a numpy dtype)."""

    __hash__ = None  # == records an Equal node

    def __init__(self, ops: OnnxOps, name: str, dtype) -> None:
        self.ops, self.name, self.dtype = ops, name, np.dtype(dtype)

    def _binary(self, op_type, other, reverse=False, out_dtype=None):
        other = self.ops.lift(other, self.dtype)
        a, b = (other, self) if reverse else (self, other)
        return self.ops.node(op_type, a, b, dtype=out_dtype or self.dtype)

    def __add__(self, o): return self._binary("Add", o)  # noqa: E704
    def __radd__(self, o): return self._binary("Add", o, True)  # noqa: E704
    def __sub__(self, o): return self._binary("Sub", o)  # noqa: E704
    def __rsub__(self, o): return self._binary("Sub", o, True)  # noqa: E704
    def __mul__(self, o): return self._binary("Mul", o)  # noqa: E704
    def __rmul__(self, o): return self._binary("Mul", o, True)  # noqa: E704
    def __truediv__(self, o): return self._binary("Div", o)  # noqa: E704
    def __rtruediv__(self, o): return self._binary("Div", o, True)  # noqa: E704
    def __lt__(self, o): return self._binary("Less", o, out_dtype=bool)  # noqa: E704
    def __le__(self, o): return self._binary("LessOrEqual", o, out_dtype=bool)  # noqa: E704
    def __gt__(self, o): return self._binary("Greater", o, out_dtype=bool)  # noqa: E704
    def __ge__(self, o): return self._binary("GreaterOrEqual", o, out_dtype=bool)  # noqa: E704
    def __eq__(self, o): return self._binary("Equal", o, out_dtype=bool)  # noqa: E704
    def __and__(self, o): return self._binary("And", o)  # noqa: E704
    def __or__(self, o): return self._binary("Or", o)  # noqa: E704
    def __invert__(self): return self.ops.node("Not", self, dtype=bool)  # noqa: E704
    def __neg__(self): return self.ops.node("Neg", self, dtype=self.dtype)  # noqa: E704


class OnnxOps(_Shorthands):
    """Records the maths as an ONNX graph: each method adds the node it names, constants are
    deduplicated initializers, :meth:`model` wraps the recorded graph."""

    float32, float16, int64, int32, bool = (np.dtype(np.float32), np.dtype(np.float16), np.dtype(np.int64),
                                            np.dtype(np.int32), np.dtype(bool))

    def __init__(self) -> None:
        import onnx

        self.onnx = onnx
        self.nodes: list = []
        self.initializers: list = []
        self.inputs: list = []
        self.outputs: list = []
        self._consts: dict[tuple, Sym] = {}
        self._count = 0

    # --- graph plumbing -------------------------------------------------------------------
    def _fresh(self, hint: str) -> str:
        self._count += 1
        return f"{hint}_{self._count}"

    def input(self, name: str, dtype, shape) -> Sym:
        """A graph input ``name`` of ``dtype`` and ``shape`` (ints or dimension names)."""
        self.inputs.append(self.onnx.helper.make_tensor_value_info(name, _elem(dtype), shape))
        return Sym(self, name, dtype)

    def output(self, x: Sym, name: str, shape) -> None:
        """Make ``x`` the graph output ``name``: its producing node's output is renamed (an
        ``Identity`` only where ``x`` is an input, a constant or already an output)."""
        producer = next((n for n in self.nodes if x.name in n.output), None)
        taken = {v.name for v in self.inputs} | {v.name for v in self.outputs} | {t.name for t in self.initializers}
        if producer is None or x.name in taken:
            self.nodes.append(self.onnx.helper.make_node("Identity", [x.name], [name]))
        else:
            for node in self.nodes:
                for field in (node.input, node.output):
                    for k, value in enumerate(field):
                        if value == x.name:
                            field[k] = name
            x.name = name
        self.outputs.append(self.onnx.helper.make_tensor_value_info(name, _elem(x.dtype), shape))

    def node(self, op_type: str, *inputs, dtype, n_out: int = 1, **attrs):
        """Add one ``op_type`` node; returns its output(s) as :class:`Sym` of ``dtype``."""
        names = [self._fresh(op_type.lower()) for _ in range(n_out)]
        self.nodes.append(self.onnx.helper.make_node(op_type, [x.name for x in inputs], names, **attrs))
        outs = [Sym(self, n, dtype) for n in names]
        return outs[0] if n_out == 1 else outs

    def const(self, value, dtype) -> Sym:
        """A constant tensor (one initializer per distinct value)."""
        array = np.asarray(value, dtype=dtype)
        key = (array.dtype.str, array.shape, array.tobytes())
        if key not in self._consts:
            name = self._fresh("const")
            self.initializers.append(self.onnx.numpy_helper.from_array(array, name))
            self._consts[key] = Sym(self, name, array.dtype)
        return self._consts[key]

    def lift(self, value, dtype) -> Sym:
        """``value`` as a tensor: a :class:`Sym` as it is, a number as a constant of ``dtype``."""
        return value if isinstance(value, Sym) else self.const(value, dtype)

    def _axes(self, axes) -> Sym:
        return self.const(list(axes), np.int64)

    def model(self, name: str, doc: str):
        """The recorded graph as a checked ``onnx.ModelProto`` (opset ``OPSET``, IR ``IR_VERSION``)."""
        helper = self.onnx.helper
        graph = helper.make_graph(self.nodes, name, self.inputs, self.outputs, self.initializers, doc_string=doc)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="mirage_ros")
        model.ir_version = IR_VERSION
        self.onnx.checker.check_model(model, full_check=True)
        return model

    # --- the vocabulary (TorchOps documents each) -----------------------------------------
    def cast(self, x, dtype):
        return self.node("Cast", x, dtype=dtype, to=_elem(dtype))

    def where(self, cond, a, b):
        dtype = a.dtype if isinstance(a, Sym) else b.dtype
        return self.node("Where", cond, self.lift(a, dtype), self.lift(b, dtype), dtype=dtype)

    def floor(self, x):
        return self.node("Floor", x, dtype=x.dtype)

    def isnan(self, x):
        return self.node("IsNaN", x, dtype=bool)

    def log(self, x):
        return self.node("Log", x, dtype=x.dtype)

    def exp(self, x):
        return self.node("Exp", x, dtype=x.dtype)

    def maximum(self, a, b):
        return self.node("Max", a, self.lift(b, a.dtype), dtype=a.dtype)

    def minimum(self, a, b):
        return self.node("Min", a, self.lift(b, a.dtype), dtype=a.dtype)

    def clip(self, x, low: float, high: float):
        return self.node("Clip", x, self.const(low, x.dtype), self.const(high, x.dtype), dtype=x.dtype)

    def mod(self, x, divisor):
        return self.node("Mod", x, self.lift(divisor, x.dtype), dtype=x.dtype)

    def div_int(self, x, divisor):
        return self.node("Div", x, self.lift(divisor, x.dtype), dtype=x.dtype)

    def matmul(self, a, b):
        return self.node("MatMul", a, b, dtype=a.dtype)

    def reduce(self, kind: str, x, axes: Sequence[int] | None = None, keepdims: bool = True):
        op_type = {"sum": "ReduceSum", "mean": "ReduceMean", "min": "ReduceMin", "max": "ReduceMax"}[kind]
        args = (x,) if axes is None else (x, self._axes(axes))
        return self.node(op_type, *args, dtype=x.dtype, keepdims=int(keepdims))

    def argmax(self, x, axis: int):
        return self.node("ArgMax", x, dtype=np.int64, axis=axis, keepdims=1)

    def sort_ascending(self, x, n: int, axis: int):
        values, _ = self.node("TopK", x, self._axes([n]), dtype=x.dtype, n_out=2, axis=axis, largest=0, sorted=1)
        return values

    def cumsum(self, x, axis: int, exclusive: bool = False):
        return self.node("CumSum", x, self.const(axis, np.int64), dtype=x.dtype, exclusive=int(exclusive))

    def gather(self, x, index, axis: int = 0):
        index = self.const(index, np.int64) if isinstance(index, int) else index
        return self.node("Gather", x, index, dtype=x.dtype, axis=axis)

    def gather_elements(self, x, index, axis: int):
        return self.node("GatherElements", x, index, dtype=x.dtype, axis=axis)

    def scatter(self, x, index, values, axis: int = 0, reduction: str | None = None):
        attrs = {"reduction": reduction} if reduction else {}
        return self.node("ScatterElements", x, index, self.lift(values, x.dtype), dtype=x.dtype, axis=axis, **attrs)

    def scatter_rows(self, x, rows, values):
        return self.node("ScatterND", x, self.unsqueeze(rows, [1]), values, dtype=x.dtype)

    def concat(self, xs, axis: int):
        return self.node("Concat", *xs, dtype=xs[0].dtype, axis=axis)

    def split(self, x, n: int, axis: int):
        return self.node("Split", x, dtype=x.dtype, n_out=n, axis=axis, num_outputs=n)

    def slice(self, x, start: int, end: int, axis: int):
        return self.node("Slice", x, self._axes([start]), self._axes([end]), self._axes([axis]), dtype=x.dtype)

    def reshape(self, x, shape):
        return self.node("Reshape", x, self._axes(shape), dtype=x.dtype)

    def transpose(self, x, perm):
        return self.node("Transpose", x, dtype=x.dtype, perm=list(perm))

    def unsqueeze(self, x, axes):
        return self.node("Unsqueeze", x, self._axes(axes), dtype=x.dtype)

    def squeeze(self, x, axes):
        return self.node("Squeeze", x, self._axes(axes), dtype=x.dtype)

    def space_to_depth(self, x, block: int):
        return self.node("SpaceToDepth", x, dtype=x.dtype, blocksize=block)

    def max_pool(self, x, kernel: int):
        return self.node("MaxPool", x, dtype=x.dtype, kernel_shape=[kernel] * 2, pads=[kernel // 2] * 4)

    def grid_sample(self, x, grid):
        return self.node("GridSample", x, grid, dtype=x.dtype, mode="bilinear", padding_mode="border",
                         align_corners=0)


def _elem(dtype) -> int:
    """ONNX element type of a numpy dtype."""
    from onnx import helper

    return helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
