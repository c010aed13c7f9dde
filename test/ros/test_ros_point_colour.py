"""The linear latent -> colour probe recovers colours that are linear in the latent."""

import numpy as np

from mirage_ros.ros.point_colour import LinearColourProbe


def test_probe_recovers_a_linear_colour_code():
    rng = np.random.default_rng(0)
    mixing = rng.normal(size=(3, 8))
    probe = LinearColourProbe(channels=8, ridge=1e-9)
    assert (probe.colours(np.zeros((2, 8))) == 128).all()
    for _ in range(3):
        cells = rng.integers(30, 220, (6, 10, 3)).astype(np.float64)  # per-cell mean colour
        codes = cells.reshape(-1, 3) / 255.0 @ mixing  # latent = colour @ mixing (linear code)
        rgb = np.repeat(np.repeat(cells, 4, 0), 4, 1).astype(np.uint8)
        probe.update(codes.T.reshape(8, 6, 10), rgb, stride=4)
    got = probe.colours(codes)
    assert np.abs(got.astype(int) - cells.reshape(-1, 3).astype(int)).max() <= 1
