"""Sensor realism of training batches (``model.augment``), on real frames of the TUM clip."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mirage_ros.evaluation import metrics
from mirage_ros.model import augment
from mirage_ros.model.config import AugmentConfig

CLIP = Path(__file__).resolve().parents[1] / "data/rgbd_dataset_freiburg1_rpy_clip"


def real_image() -> np.ndarray:
    """A ``(240, 320, 3) uint8`` crop of a real Kinect frame."""
    path = sorted((CLIP / "rgb").iterdir())[0]
    return np.asarray(Image.open(path).convert("RGB"))[120:360, 160:480]


def to_tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(image.transpose(2, 0, 1)[None] / 255.0).float()


def to_image(frames: torch.Tensor) -> np.ndarray:
    return (frames[0].permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)


@pytest.mark.parametrize("quality", [20, 50, 90])
def test_jpeg_loss_matches_a_real_encoder(quality):
    image = real_image()
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "JPEG", quality=quality)  # libjpeg, 4:2:0
    libjpeg = np.asarray(Image.open(buffer).convert("RGB"))
    ours = to_image(augment.jpeg(to_tensor(image), np.array([float(quality)])))
    # the same loss at every quality (34 dB at 20 to 46 dB at 90 on this frame): ours is as far
    # from the original as libjpeg's, within the differences of chroma upsampling and rounding
    assert metrics.psnr(ours, image) == pytest.approx(metrics.psnr(libjpeg, image), abs=3.0)


def test_motion_blur_and_shear_touch_only_the_chosen_frames():
    frames = to_tensor(real_image()).repeat(3, 1, 1, 1)
    rng = np.random.default_rng(0)
    chosen = np.array([True, False, True])
    blurred = augment.motion_blur(frames, chosen, 9, rng)
    assert torch.equal(blurred[1], frames[1])
    # a blur keeps the mean and lowers the high frequencies (the gradient energy)
    for j in (0, 2):
        assert float(blurred[j].mean()) == pytest.approx(float(frames[j].mean()), abs=2e-3)
        assert blurred[j].diff(dim=-1).abs().mean() < 0.9 * frames[j].diff(dim=-1).abs().mean()
    sheared = augment.rolling_shear(frames, chosen, 0.05, rng)
    assert torch.equal(sheared[1], frames[1]) and not torch.equal(sheared[0], frames[0])


def clip_batch(b: int = 2, k: int = 3, h: int = 60, w: int = 80, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    depth = torch.from_numpy(rng.uniform(0.5, 5.0, (b, k, h * w)).astype(np.float32))
    origin = torch.from_numpy(rng.normal(size=(b, k, 3)).astype(np.float32))
    direction = torch.nn.functional.normalize(torch.from_numpy(rng.normal(size=(b, k, h * w, 3)).astype(np.float32)), dim=-1)
    image = to_tensor(real_image())
    return {"context_rgb": image.repeat(b * k, 1, 1, 1).view(b, k, 3, 240, 320).clone(),
            "target_rgb": image.repeat(b, 1, 1, 1).clone(),
            "context_points": origin[:, :, None] + direction * depth[..., None],
            "context_ok": torch.ones(b, k, h * w, dtype=torch.bool), "context_depth": depth,
            "context_origin": origin, "context_far_depth": torch.full((b, k), 6.0)}


def test_sensor_batch_is_a_pure_function_of_the_rng():
    first, second = clip_batch(), clip_batch()
    augment.sensor_batch(first, AugmentConfig(), 60, 80, np.random.default_rng(7))
    augment.sensor_batch(second, AugmentConfig(), 60, 80, np.random.default_rng(7))
    for key in first:
        assert torch.equal(first[key], second[key]), key


def test_sensor_depth_moves_points_along_their_rays_and_cuts_holes():
    batch = clip_batch()
    points, origin = batch["context_points"].clone(), batch["context_origin"][:, :, None]
    cfg = AugmentConfig(probability=1.0, depth_quantisation_probability=1.0, depth_hole_fraction=0.3,
                        flying_pixel_probability=0.0)
    augment.sensor_batch(batch, cfg, 60, 80, np.random.default_rng(3))
    ok = batch["context_ok"]
    assert 0.5 < float(ok.float().mean()) < 1.0  # holes, not everything
    before, after = points - origin, batch["context_points"] - origin
    cross = torch.linalg.cross(before, after)
    assert float(cross.abs().max()) < 1e-3  # same ray, holes too
    # a hole's cell goes to the frame's far depth (6 m here), where the runtime's overlay puts it
    scale = after.norm(dim=-1) / before.norm(dim=-1)
    hole_depth = clip_batch()["context_depth"] * scale
    assert torch.allclose(hole_depth[~ok], torch.tensor(6.0), rtol=1e-4)
    # quantised: the step grows with depth squared (a few mm at 1 m, centimetres at 4 m)
    change = (batch["context_depth"] - clip_batch()["context_depth"]).abs()[ok]
    depth = clip_batch()["context_depth"][ok]
    assert float(change[depth < 1.0].max()) < 0.005 and float(change[depth > 4.0].max()) > 0.02
    assert float(change[depth > 4.0].max()) < 0.5 * 4.35e-3 * 5.0 ** 2 + 1e-3


def test_colour_look_is_shared_and_unsensed_samples_stay_clean():
    batch, clean = clip_batch(), clip_batch()
    augment.sensor_batch(batch, AugmentConfig(probability=0.0), 60, 80, np.random.default_rng(1))
    # no sample sensed: every context frame of a sample is its target (8-bit rounding), depth as read
    for key in ("context_points", "context_ok", "context_depth"):
        assert torch.equal(batch[key], clean[key]), key
    for j in range(2):
        assert float((batch["context_rgb"][j] - batch["target_rgb"][j][None]).abs().max()) <= 1 / 255 + 1e-6
    assert not torch.allclose(batch["target_rgb"][0], batch["target_rgb"][1])
