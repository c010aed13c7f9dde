"""The array vocabulary the memory's maths is written in, and its two backends: eager torch
(``torch_ops.TorchOps``) and an ONNX graph recorder (``onnx_ops.OnnxOps``).

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

import numpy as np


class Shorthands:
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
