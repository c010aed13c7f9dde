"""The shipped ONNX graphs: recorded identically from ``memory_maths``, in the allowed opset/IR
range, and on ORT CPU matching the same maths run eagerly in torch (1e-4) over a multi-frame
stream with fusion and eviction."""

import numpy as np
import pytest
import torch
from helpers.memory_reference import assert_state_matches, reference_update, torch_state
from helpers.scene import box_room_depth, look_at

from mirage_ros import geometry as g
from mirage_ros import graphs
from mirage_ros.memory import LatentMemory, MemoryConfig
from mirage_ros.memory import layout as L
from mirage_ros.memory_maths.torch_ops import TorchOps
from mirage_ros.memory_maths.readout import read_out, read_out_torch


def test_shipped_graphs_are_what_the_builder_makes():
    onnx = pytest.importorskip("onnx")  # build-time only dependency
    from mirage_ros.memory_maths import build

    for name, model in build.build_all().items():
        shipped = graphs.path(name).read_bytes()
        assert model.SerializeToString(deterministic=True) == shipped, (
            f"{name}.onnx is stale: run python -m mirage_ros.memory_maths.build")
        loaded = onnx.load_from_string(shipped)
        assert loaded.ir_version <= 13 and loaded.opset_import[0].version >= 18
        ops = {node.op_type for node in loaded.graph.node}
        assert not ops & {"Range", "Shape", "ConstantOfShape"}  # keeps every node on the CUDA EP


@pytest.mark.parametrize("stride", [4, 8])
def test_ort_cpu_matches_torch_over_a_stream(stride):
    K = g.Intrinsics(40.0, 40.0, 31.5, 23.5, 64, 48)
    C = 3
    cfg = MemoryConfig(channels=C, stride=stride, capacity_points=160, voxel_size=0.3, max_weight=3.0,
                       carve=False)  # the reference is the update alone (carving: test_carve.py)
    mem = LatentMemory(cfg, provider="cpu")
    state = torch_state(mem.host_state())
    rng = np.random.default_rng(stride)
    K_latent = K.scaled(stride)
    h, w = K_latent.height, K_latent.width
    for frame in range(12):
        a = 0.5 * frame
        T = look_at([0.4 * np.cos(a), 0.3 * np.sin(a), 0.1], [3 * np.cos(a + 1), 3 * np.sin(a + 1), -0.4])
        depth = box_room_depth(K, T)
        depth[rng.random(depth.shape) < 0.05] = np.nan
        dynamic = np.zeros(K.shape, bool)
        dynamic[rng.integers(0, 48), :20] = True
        latent = rng.normal(size=(C, h, w)).astype(np.float32)
        stamp = 100.0 + frame
        mem.insert(latent, depth, K, T, stamp, dynamic_mask=dynamic)
        state = reference_update(state, cfg, stamp - 100.0, depth, dynamic, latent, K_latent, T)
        assert_state_matches(mem.host_state(), state)
    stats = mem.stats()
    assert stats["evictions"] > 0 and stats["cells_revisited"] > 0  # the stream exercised both paths

    T_view = T @ g.pose_from_tq([0.1, -0.05, 0.2], [0.995, 0.0, 0.0998, 0.0])  # near the last frame
    out = mem.read_out(T_view, K)
    slots = state["keys"].shape[0]
    ids = {k: torch.from_numpy(v) for k, v in L.readout_ids(slots).items()}
    ref = read_out(TorchOps(), state["positions"], state["latents"], state["counts"], ids["slot_ids"],
                   ids["spill_ids"], torch.from_numpy(L.projection_matrix(K_latent, g.invert_pose(T_view)))[None],
                   torch.from_numpy(L.readout_grid(w, h, cfg.near, cfg.readout_min_count)),
                   torch.full((1, h, w), float("inf")))
    ref = [x[0] for x in ref]
    assert out.valid.any()
    np.testing.assert_array_equal(out.valid, ref[1].numpy())
    np.testing.assert_allclose(out.latent, ref[0].numpy(), atol=1e-4)
    np.testing.assert_allclose(out.depth, ref[2].numpy(), atol=1e-4)
    np.testing.assert_allclose(out.offset, ref[3].numpy(), atol=1e-4)
    assert np.all(np.abs(out.offset) <= 0.5) and np.abs(out.offset[:, out.valid]).mean() > 0.05


def test_read_out_torch_is_differentiable_in_latents():
    K_latent = g.Intrinsics(6.0, 6.0, 3.5, 2.5, 8, 6)
    rng = np.random.default_rng(0)
    points = np.concatenate([rng.uniform(-1, 1, (200, 2)), rng.uniform(1, 3, (200, 1))], axis=1)
    latents = torch.randn(200, 5, requires_grad=True)
    latent, valid, depth, _ = read_out_torch(torch.from_numpy(points), latents, np.eye(4), K_latent, 6, 8)
    assert latent.shape == (5, 6, 8) and valid.any()
    latent.sum().backward()
    grads = latents.grad.abs().sum(dim=1)
    assert int((grads > 0).sum()) == int(valid.sum())  # exactly one winner per valid cell
    assert torch.all(depth[valid] > 1.0)


@pytest.mark.skipif("CUDAExecutionProvider" not in __import__("onnxruntime").get_available_providers(),
                    reason="needs onnxruntime-gpu and a GPU")
@pytest.mark.parametrize("cuda_graph", [False, True])
def test_cuda_matches_cpu(cuda_graph):
    """Same frames on CUDA and CPU. Float rounding may differ on the GPU (fused multiply-add), so a
    point near a voxel face can fuse differently: compare agreement rates, not bits."""
    K = g.Intrinsics(40.0, 40.0, 31.5, 23.5, 64, 48)
    cfg = MemoryConfig(channels=3, capacity_points=800, voxel_size=0.1)
    gpu, cpu = LatentMemory(cfg, "cuda", cuda_graph=cuda_graph), LatentMemory(cfg, "cpu")
    assert gpu.device == "cuda"
    rng = np.random.default_rng(1)
    agree = total = 0
    for frame in range(8):
        T = look_at([0.3 * np.cos(frame), 0.2, 0.0], [3 * np.cos(frame + 1), 3 * np.sin(frame + 1), 0.0])
        depth, latent = box_room_depth(K, T), rng.normal(size=(3, 6, 8)).astype(np.float32)
        for mem in (gpu, cpu):
            mem.insert(latent, depth, K, T, float(frame))
        a, b = gpu.read_out(T, K), cpu.read_out(T, K)
        close = (a.valid == b.valid) & np.all(np.abs(a.latent - b.latent) < 1e-3, axis=0)
        agree, total = agree + int(close.sum()), total + close.size
    assert agree / total > 0.97
    keys_gpu, keys_cpu = gpu.host_state()["keys"], cpu.host_state()["keys"]
    assert (keys_gpu != keys_cpu).mean() < 0.02


def test_views_graph_reads_out_like_single_calls():
    """``read_out_views`` (one call of the views graph) gives each pose's single read-out exactly."""
    from mirage_ros.memory import LatentMemory, MemoryConfig
    from mirage_ros.sim import SimConfig, Simulator

    sim = Simulator(SimConfig(scene="office", seed=2001, width=96, height=72, rate_hz=4.0, path="loop"))
    frames = list(sim.frames(5))
    memory = LatentMemory(MemoryConfig(channels=3, stride=4, capacity_points=20_000, readout_min_count=1),
                          provider="cpu")
    rng = np.random.default_rng(0)
    for f in frames:
        memory.insert(rng.normal(size=(3, 18, 24)).astype(np.float32), f.depth, f.K, f.T_world_cam, f.stamp)
    poses = [f.T_world_cam for f in frames[::2]] + [frames[-1].T_world_cam @ g.pose_from_tq([0.2, 0, 0.3], [1, 0, 0, 0])]
    views = memory.read_out_views(poses, frames[0].K)
    assert len(views) == len(poses)
    for pose, view in zip(poses, views):
        single = memory.read_out(pose, frames[0].K)
        assert single.valid.any()
        for field in ("latent", "valid", "depth", "offset"):
            np.testing.assert_array_equal(getattr(view, field), getattr(single, field), err_msg=field)
