"""Memory files: exact round trip, atomic write, clear errors that leave the live memory alone."""

import json
import zipfile

import numpy as np
import pytest

from mirage_ros import geometry as g
from mirage_ros.memory import LatentMemory, MemoryConfig, MemoryFileError

K = g.Intrinsics(48.0, 48.0, 31.5, 23.5, 64, 48)


def filled(seed=0, **overrides):
    cfg = MemoryConfig(**{"channels": 4, "capacity_points": 800, "voxel_size": 0.05, **overrides})
    mem = LatentMemory(cfg, provider="cpu")
    rng = np.random.default_rng(seed)
    for k in range(3):
        T = np.eye(4)
        T[:3, 3] = rng.normal(0, 0.3, 3)
        mem.insert(rng.normal(size=(4, 6, 8)).astype(np.float32), rng.uniform(1, 3, K.shape).astype(np.float32),
                   K, T, 1.7e9 + k)
    return mem


def same_state(a, b):
    sa, sb = a.host_state(), b.host_state()
    return all(np.array_equal(sa[n], sb[n], equal_nan=True) for n in sa)


def test_save_load_round_trips_exactly(tmp_path):
    mem = filled()
    path = mem.save(tmp_path / "mem")  # suffix added
    assert path.name == "mem.npz" and not list(tmp_path.glob(".*tmp"))
    other = LatentMemory(mem.config, provider="cpu")
    other.load(path)
    assert same_state(mem, other)
    np.testing.assert_array_equal(mem.points()["last_seen"], other.points()["last_seen"])  # epoch kept
    a, b = mem.read_out(np.eye(4), K), other.read_out(np.eye(4), K)
    assert np.array_equal(a.latent, b.latent) and np.array_equal(a.valid, b.valid)
    other.insert(np.zeros((4, 6, 8), np.float32), np.full(K.shape, 2.0, np.float32), K, np.eye(4), 1.7e9 + 5)
    assert other.stats()["frames"] == 4  # the loaded memory keeps working


def corrupt_bytes(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def rewrite_meta(path, **changes):
    with np.load(path) as npz:
        arrays = {n: npz[n] for n in npz.files}
    meta = json.loads(arrays["meta"].tobytes())
    meta.update(changes)
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    np.savez(path, **arrays)


def tamper_latents(path):
    with np.load(path) as npz:
        arrays = {n: npz[n] for n in npz.files}
    arrays["latents"] = arrays["latents"] + np.float16(1)
    np.savez(path, **arrays)


@pytest.mark.parametrize("damage, message", [
    (corrupt_bytes, "memory file|sha256|metadata"),
    (lambda p: p.write_bytes(p.read_bytes()[:200]), "not a readable"),
    (lambda p: p.write_text("hello"), "not a readable"),
    (lambda p: rewrite_meta(p, version=99), "version"),
    (lambda p: rewrite_meta(p, format="other"), "format"),
    (tamper_latents, "sha256"),
    (lambda p: p.unlink(), "no such"),
])
def test_bad_file_fails_clearly_and_leaves_memory_untouched(tmp_path, damage, message):
    path = filled(1).save(tmp_path / "mem.npz")
    damage(path)
    live = filled(2)
    before = live.host_state()
    with pytest.raises(MemoryFileError, match=message):
        live.load(path)
    after = live.host_state()
    assert all(np.array_equal(before[n], after[n], equal_nan=True) for n in before)


@pytest.mark.parametrize("overrides, field", [(dict(channels=8), "channels"), (dict(voxel_size=0.1), "voxel_size"),
                                              (dict(capacity_points=1600), "capacity")])
def test_mismatched_config_is_refused(tmp_path, overrides, field):
    path = filled(3).save(tmp_path / "mem.npz")
    other = LatentMemory(MemoryConfig(**{"channels": 4, "capacity_points": 800, "voxel_size": 0.05, **overrides}),
                         provider="cpu")
    with pytest.raises(MemoryFileError, match=field):
        other.load(path)
    assert other.stats()["points"] == 0


def test_file_has_no_pickled_objects(tmp_path):
    path = filled(4).save(tmp_path / "mem.npz")
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
    assert "meta.npy" in names
    with np.load(path, allow_pickle=False) as npz:
        assert all(npz[n].dtype != object for n in npz.files)
