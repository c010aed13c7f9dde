"""memory_maths records graphs that compute what the shipped (hand-assembled) graphs compute: the
same operators, and bit-identical states and read-outs over a stream with fusion, eviction and
carving, at every stride. Kept until the shipped graphs are rebuilt from memory_maths."""

import collections

import numpy as np
import onnxruntime as ort
import pytest
from helpers.scene import box_room_depth, look_at

from mirage_ros import geometry as g
from mirage_ros.memory import LatentMemory, MemoryConfig
from mirage_ros.memory import layout as L

onnx = pytest.importorskip("onnx")


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    from mirage_ros.memory_maths import build

    out = tmp_path_factory.mktemp("graphs")
    build.main(["--out", str(out)])
    return out


def test_same_operators(recorded):
    for shipped in sorted(L.GRAPH_DIR.glob("*.onnx")):
        old = collections.Counter(n.op_type for n in onnx.load(str(shipped)).graph.node if n.op_type != "Identity")
        new = collections.Counter(n.op_type for n in onnx.load(str(recorded / shipped.name)).graph.node)
        if shipped.stem != L.SUBCELL_GRAPH:  # that one now takes a batch: fewer Gathers
            assert old == new, shipped.name


def _stream(graph_dir, stride, carve, monkeypatch):
    monkeypatch.setattr(L, "GRAPH_DIR", graph_dir)
    K = g.Intrinsics(40.0, 40.0, 31.5, 23.5, 64, 48)
    cfg = MemoryConfig(channels=3, stride=stride, capacity_points=160, voxel_size=0.3, max_weight=3.0, carve=carve)
    mem = LatentMemory(cfg, provider="cpu")
    rng = np.random.default_rng(stride)
    h, w = K.scaled(stride).height, K.scaled(stride).width
    outs = []
    for frame in range(14):
        a = 0.5 * frame
        T = look_at([0.4 * np.cos(a), 0.3 * np.sin(a), 0.1], [3 * np.cos(a + 1), 3 * np.sin(a + 1), -0.4])
        depth = box_room_depth(K, T) * (1.3 if frame % 3 == 2 else 1.0)  # farther walls: carving acts
        depth[rng.random(depth.shape) < 0.05] = np.nan
        dynamic = np.zeros(K.shape, bool)
        dynamic[rng.integers(0, 48), :20] = True
        mem.insert(rng.normal(size=(3, h, w)).astype(np.float32), depth, K, T, 100.0 + frame, dynamic_mask=dynamic)
        outs += list(mem.host_state().values())
        view = mem.read_out(T @ g.pose_from_tq([0.1, -0.05, 0.2], [0.995, 0.0, 0.0998, 0.0]), K)
        outs += [getattr(view, f) for f in view.FIELDS]
    return outs, mem.stats()


@pytest.mark.parametrize("stride", L.STRIDES)
@pytest.mark.parametrize("carve", [False, True])
def test_bit_identical_stream(recorded, stride, carve, monkeypatch):
    old, old_stats = _stream(L.GRAPH_DIR, stride, carve, monkeypatch)
    new, new_stats = _stream(recorded, stride, carve, monkeypatch)
    assert old_stats == new_stats and old_stats["points_live"] > 0
    assert not carve or old_stats["points_carved"] > 0
    for a, b in zip(old, new):
        np.testing.assert_array_equal(a, b)


def test_subcell_identical(recorded):
    rng = np.random.default_rng(0)
    feed = {"rgb": rng.random((1, 3, 48, 64), np.float32), "offset": rng.random((1, 2, 12, 16), np.float32) - 0.5}
    old = ort.InferenceSession(str(L.graph_path(L.SUBCELL_GRAPH))).run(None, feed)[0]
    new = ort.InferenceSession(str(recorded / f"{L.SUBCELL_GRAPH}.onnx")).run(None, feed)[0]
    np.testing.assert_array_equal(old, new)
