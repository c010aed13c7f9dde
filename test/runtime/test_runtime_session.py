"""Provider choice and IOBinding runs on real ONNX Runtime sessions (CPU here; CUDA on the GPU box)."""

import logging

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from mirage_ros.errors import InvalidInput, MirageError
from mirage_ros.runtime import session as S


def add_one_model() -> bytes:
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "one"], ["y"])], "add_one",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n"])],
        [helper.make_tensor("one", TensorProto.FLOAT, [], [1.0])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    return model.SerializeToString()


HAS_CUDA = "CUDAExecutionProvider" in ort.get_available_providers()


def test_provider_choice_and_log_line(caplog):
    S._logged.clear()
    with caplog.at_level(logging.INFO, logger="mirage_ros.runtime"):
        assert S.resolve_provider("cpu") == "cpu"
        assert S.resolve_provider("auto") == ("cuda" if HAS_CUDA else "cpu")
        S.resolve_provider("cpu")  # logged once only
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2 and "provider cpu (CPUExecutionProvider; asked: cpu)" in lines[0]
    with pytest.raises(InvalidInput, match="provider"):
        S.resolve_provider("tpu")


@pytest.mark.skipif(HAS_CUDA, reason="this onnxruntime has CUDA")
def test_cuda_request_without_cuda_is_a_clear_error():
    with pytest.raises(S.ProviderUnavailable, match="onnxruntime-gpu"):
        S.resolve_provider("cuda")


def test_create_session_reports_a_broken_model():
    with pytest.raises(MirageError, match="cannot open ONNX model"):
        S.create_session(b"not a model", "cpu")
    assert S.create_session(add_one_model(), "cpu").get_providers()[0] == "CPUExecutionProvider"


@pytest.mark.parametrize("provider", ["cpu"] + (["cuda"] if HAS_CUDA else []))
def test_bound_session_runs_in_place_buffers(provider):
    sess = S.BoundSession(add_one_model(), provider)
    x, y = sess.alloc((4,), np.float32), sess.alloc((4,), np.float32)
    for k in range(3):
        S.BoundSession.write(x, np.full(4, k, np.float32))
        sess.run({"x": x}, {"y": y})
        np.testing.assert_array_equal(S.BoundSession.to_host(y), np.full(4, k + 1, np.float32))
    assert len(sess._bindings) == 1  # the same buffers reuse one binding
    with pytest.raises(InvalidInput, match="inputs"):
        sess.run({}, {"y": y})


def test_buffer_view_binds_part_of_a_buffer_without_a_copy():
    """A ``(2, 3)`` buffer's second row bound as a ``(3,)`` input, and an output written into the
    first row: the graph sees and writes the buffer itself; a view past the buffer's end is refused."""
    session = S.BoundSession(add_one_model(), "cpu")
    buffer = session.upload(np.arange(6, dtype=np.float32).reshape(2, 3))
    second, first = S.BufferView(buffer, (3,), 3), S.BufferView(buffer, (3,))
    assert second.shape() == [3] and second.device_name().lower() == "cpu"
    np.testing.assert_array_equal(S.BoundSession.to_host(second), [3.0, 4.0, 5.0])
    session.run({"x": second}, {"y": first})
    np.testing.assert_array_equal(S.BoundSession.to_host(buffer), [[4.0, 5.0, 6.0], [3.0, 4.0, 5.0]])
    with pytest.raises(InvalidInput, match="exceeds"):
        S.BufferView(buffer, (4,), 3)
