"""ONNX backend of the memory's maths (``ops.py`` says the rules): records the shipped graphs."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mirage_ros.memory_maths.ops import Shorthands

OPSET = 18
IR_VERSION = 9


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


class OnnxOps(Shorthands):
    """Records the maths as an ONNX graph: each method adds the node it names, constants are
    deduplicated initializers, :meth:`model` wraps the recorded graph."""

    float32, float16, int64, int32, bool, uint8 = (np.dtype(np.float32), np.dtype(np.float16), np.dtype(np.int64),
                                                   np.dtype(np.int32), np.dtype(bool), np.dtype(np.uint8))

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
