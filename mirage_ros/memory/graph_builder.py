"""The small builder every memory graph is written with (:mod:`onnx_graphs`, :mod:`carve`,
:mod:`subcell`): constants deduplicated, ``op`` returning output names, the state's tensor types.
Build time only (needs ``onnx``)."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from mirage_ros.memory import layout as L

OPSET = 18
IR_VERSION = 9


class GraphBuilder:
    """Tiny node/constant accumulator: ``op`` returns the output name(s) of the node it adds."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._consts: dict[tuple, str] = {}
        self._count = 0

    def _fresh(self, hint: str) -> str:
        self._count += 1
        return f"{hint}_{self._count}"

    def const(self, value, dtype) -> str:
        array = np.asarray(value, dtype=dtype)
        key = (array.dtype.str, array.shape, array.tobytes())
        if key not in self._consts:
            name = self._fresh("const")
            self.initializers.append(numpy_helper.from_array(array, name))
            self._consts[key] = name
        return self._consts[key]

    def f(self, value) -> str:
        return self.const(value, np.float32)

    def i(self, value) -> str:
        return self.const(value, np.int64)

    def op(self, op_type: str, *inputs: str, n_out: int = 1, out: str | None = None, **attrs):
        outputs = [out] if out else [self._fresh(op_type.lower()) for _ in range(n_out)]
        self.nodes.append(helper.make_node(op_type, list(inputs), outputs, **attrs))
        return outputs[0] if n_out == 1 else outputs

    # shorthands for the ops used over and over
    def where(self, cond, a, b):
        return self.op("Where", cond, a, b)

    def and_(self, *conds):
        out = conds[0]
        for cond in conds[1:]:
            out = self.op("And", out, cond)
        return out

    def col(self, x):  # (M,) -> (M, 1)
        return self.op("Unsqueeze", x, self.i([1]))

    def flat(self, x):  # (M, 1) -> (M,)
        return self.op("Reshape", x, self.i([-1]))

    def take(self, x, index: int, axis: int):  # one column / row, dimension dropped
        return self.op("Gather", x, self.i(index), axis=axis)

    def imod(self, x, divisor):  # integer x mod divisor > 0, in [0, divisor) also for x < 0
        return self.op("Mod", x, divisor)

    def first_argmax(self, x, n: int):  # (M, n) -> (M, 1) int64: first column holding the row max
        """ArgMax with ties broken towards the first column on every provider (CUDA's ArgMax picks
        any of equal maxima): the smallest column index among those equal to the row maximum."""
        is_max = self.op("Equal", x, self.op("ReduceMax", x, self.i([1]), keepdims=1))
        column = self.where(is_max, self.f(np.arange(n)[None, :]), self.f(float(n)))
        return self.op("Cast", self.op("ReduceMin", column, self.i([1]), keepdims=1), to=TensorProto.INT64)

    def model(self, name, inputs, outputs, doc) -> onnx.ModelProto:
        graph = helper.make_graph(self.nodes, name, inputs, outputs, self.initializers, doc_string=doc)
        model = helper.make_model(
            graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="mirage_ros"
        )
        model.ir_version = IR_VERSION
        onnx.checker.check_model(model, full_check=True)
        return model


def value_info(name, elem, shape):
    """A graph input / output: ``name`` of element type ``elem`` and ``shape`` (ints or symbols)."""
    return helper.make_tensor_value_info(name, elem, shape)


F32, F16, I64, I32, BOOL = (TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.INT64,
                            TensorProto.INT32, TensorProto.BOOL)
STATE_TYPES = {
    "positions": (F32, ["S", 3]),
    "latents": (F16, ["S", "C"]),
    "weights": (F32, ["S"]),
    "last_seen": (F32, ["S"]),
    "counts": (I32, ["S"]),
    "keys": (I64, ["S"]),
    "stats": (I64, [L.N_STATS]),
}


def split_scalars(b: GraphBuilder, vector: str, names) -> dict[str, str]:
    """``{name: (1,) tensor}`` of a parameter vector, in one Split."""
    return dict(zip(names, b.op("Split", vector, n_out=len(names), axis=0, num_outputs=len(names))))
