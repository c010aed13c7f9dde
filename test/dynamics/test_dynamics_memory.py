"""The mask feedback loop with the real LatentMemory (ONNX graphs on CPU): a person walking across
the analytic corridor of ``test_dynamics`` is detected against the memory's own read-out and never
written into it. Features are pooled colours (a stand-in encoder: no trained network needed).
"""

from __future__ import annotations

import numpy as np
from helpers.corridor import RATE, K, person, pose, render

from mirage_ros.dynamics import STATE_MOVING, MovingObjectDetector
from mirage_ros.geometry import upsample_cells
from mirage_ros.memory import LatentMemory, MemoryConfig

STRIDE = 4
CHANNELS = 4


def features(rgb: np.ndarray) -> np.ndarray:
    """``(H, W, 3) uint8 -> (4, H/4, W/4)``: mean colour per cell plus a constant channel."""
    h, w = rgb.shape[0] // STRIDE, rgb.shape[1] // STRIDE
    cells = rgb[: h * STRIDE, : w * STRIDE].reshape(h, STRIDE, w, STRIDE, 3).mean(axis=(1, 3)) / 255
    return np.concatenate([cells.transpose(2, 0, 1), np.full((1, h, w), 0.5)]).astype(np.float32)


def walk(feedback: bool) -> tuple[LatentMemory, list]:
    """3 empty frames, then a person crossing at 5 m while the camera drives forward."""
    # every point drawn at once, so the detector judges from the third frame on
    memory = LatentMemory(MemoryConfig(channels=CHANNELS, stride=STRIDE, voxel_size=0.05, readout_min_count=1), "cpu")
    detector = MovingObjectDetector()
    detections = []
    for i in range(18):
        T, t = pose(z=0.03 * i), i / RATE
        rgb, depth, _ = render(T, [] if i < 3 else [person(-1.0 + 0.1 * (i - 3))])
        readout = memory.read_out(T, K)
        detection = detector.update(
            rgb, depth, K, T, t, None,
            upsample_cells(readout.depth, STRIDE, K.shape, repeat_edge=True),
            upsample_cells(readout.valid, STRIDE, K.shape, repeat_edge=True),
            live_latent=features(rgb), warped_latent=readout.latent, warped_valid=readout.valid,
        )
        memory.insert(features(rgb), depth, K, T, t, detection.memory_mask if feedback else None)
        detections.append(detection)
    return memory, detections


def person_points(memory: LatentMemory) -> int:
    """Stored points inside the volume the person swept (above the floor)."""
    p = memory.points()["positions"]
    inside = (p[:, 0] > -1.3) & (p[:, 0] < 0.8) & (p[:, 1] > -0.5) & (p[:, 1] < 1.1)
    return int(np.count_nonzero(inside & (p[:, 2] > 4.7) & (p[:, 2] < 5.3)))


def test_flagged_pixels_never_enter_the_memory():
    memory, detections = walk(feedback=True)
    # empty memory: the first frame is held back, the second (no person yet) fills the memory
    assert [d.status for d in detections[:2]] == ["unknown", "unknown"]
    assert detections[0].memory_mask.all() and not detections[1].memory_mask.any()
    assert all(d.status == "ok" for d in detections[2:])
    assert all(any(r.state == STATE_MOVING for r in d.regions) for d in detections[5:])
    assert person_points(memory) == 0
    # contrast: the same walk without the feedback writes the person into memory
    unmasked, _ = walk(feedback=False)
    assert person_points(unmasked) > 20


def test_mask_against_the_memory_read_out_matches_the_person():
    _, detections = walk(feedback=True)
    for i, d in enumerate(detections[5:], start=5):
        _, _, ids = render(pose(z=0.03 * i), [person(-1.0 + 0.1 * (i - 3))])
        truth = ids == 1
        f1 = 2 * np.count_nonzero(d.mask & truth) / (np.count_nonzero(d.mask) + np.count_nonzero(truth))
        assert f1 > 0.8, (i, f1)
