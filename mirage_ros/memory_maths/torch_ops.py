"""Eager torch backend of the memory's maths (``ops.py`` says the rules): training and tests."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mirage_ros.memory_maths.ops import Shorthands


class TorchOps(Shorthands):
    """Eager torch: every method is the torch equivalent of the ONNX operator it names."""

    def __init__(self, device=None) -> None:
        import torch

        self.torch = torch
        self.device = device
        self.float32, self.float16, self.int64, self.int32, self.bool, self.uint8 = (
            torch.float32, torch.float16, torch.int64, torch.int32, torch.bool, torch.uint8)

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
