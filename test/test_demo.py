"""`mirage-ros demo` end to end: sim_camera -> world_model -> consistency_monitor as real processes
over DDS; predicted views come back future-stamped in the camera frame at the camera's size, the
monitor's masks come back for live frames, and demo_out/ is written."""

import json

import numpy as np
import pytest

from mirage_ros.cli import build_parser
from mirage_ros.demo import run_demo


@pytest.mark.usefixtures("interfaces")
def test_demo_round_trip_and_outputs(tmp_path):
    argv = ["demo", "--duration", "8", "--out", str(tmp_path / "demo_out"), "--width", "160", "--height", "120",
            "--provider", "cpu", "--rate", "5"]
    summary, rec = run_demo(build_parser(argv).parse_args(argv))
    out = tmp_path / "demo_out"
    assert (out / "contact_sheet.png").stat().st_size > 10_000
    assert (out / "latency_memory.png").is_file()
    assert json.loads((out / "summary.json").read_text()) == summary
    assert summary["frames_integrated"] >= 3 and summary["memory_points"] > 0
    observed = set(rec.observed_at)  # stamps (ns) of the camera frames this process saw
    # views are made from real camera frames (this process subscribes a little after the world
    # model, and may miss a frame of the best-effort camera)
    sources = {source for source, _, _, _ in rec.views if source >= min(observed)}
    assert len(sources) >= 3 and len(sources & observed) >= 0.8 * len(sources)
    for source, horizon, arrived, coverage in rec.views:
        assert horizon in (0.5, 1.0, 2.0) and 0.0 <= coverage <= 1.0
    assert all(view.shape == (120, 160, 3) for view in rec.predicted.values())
    masks = {k for k in rec.masks if k >= min(observed)}
    assert len(masks) >= 3 and len(masks & observed) >= 0.8 * len(masks), "stamped like live frames"
    assert all(mask.shape == (120, 160) and mask.dtype == bool for mask in rec.masks.values())
    lat = np.array([x[2] for x in rec.latencies()])
    assert lat.size and np.all(lat > 0)
