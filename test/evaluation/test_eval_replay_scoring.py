"""Target planning (future views, revisits) and the report writer's atomicity."""

import json
from dataclasses import dataclass

import numpy as np
import pytest

from mirage_ros.errors import InvalidInput
from mirage_ros.evaluation import report as report_module
from mirage_ros.evaluation.metrics import PSNR_MAX_DB
from mirage_ros.evaluation.report import cost_rows, write_report
from mirage_ros.evaluation.scoring import (
    Example,
    Score,
    ScoreConfig,
    find_revisits,
    plan_future,
    score_sequence,
    summarise,
)
from mirage_ros.geometry import T_LINK_OPTICAL, Intrinsics


def planar_pose(x, y, yaw):
    c, s = np.cos(yaw), np.sin(yaw)
    T = np.array([[c, -s, 0, x], [s, c, 0, y], [0, 0, 1, 1.0], [0, 0, 0, 1.0]])
    return T @ T_LINK_OPTICAL  # camera looks along the base's x axis


def square_loop(rate=10.0, speed=1.0, side=4.0, laps=1.25):
    """Drive a square (corners turned in place), coming back to the start after 4 * side metres."""
    stamps, poses, t = [], [], 0.0
    for lap_side in range(int(4 * laps)):
        yaw = (lap_side % 4) * np.pi / 2
        start = np.array([[0, 0], [side, 0], [side, side], [0, side]][lap_side % 4], dtype=float)
        for step in np.arange(0.0, side, speed / rate):
            x, y = start + step * np.array([np.cos(yaw), np.sin(yaw)])
            stamps.append(t)
            poses.append(planar_pose(x, y, yaw))
            t += 1.0 / rate
    return np.array(stamps), np.array(poses)


def test_revisits_are_the_return_to_the_start_after_the_loop():
    stamps, poses = square_loop()
    found = find_revisits(stamps, poses, ScoreConfig(revisit_distance=0.3, query_every=0.5))
    assert found, "the loop comes back to its start"
    j, k = found[0]
    assert stamps[j] == pytest.approx(16.0, abs=0.35) and stamps[k] <= 0.3  # 16 m at 1 m/s
    assert all(stamps[b] - stamps[a] >= 0.5 - 1e-9 for (a, _), (b, _) in zip(found, found[1:]))
    # looking the other way at the same place is not a revisit (yaw by 180 deg about optical y)
    flipped = find_revisits(stamps, np.array([p @ np.diag([-1, 1, -1, 1]) if i >= 160 else p
                                              for i, p in enumerate(poses)]), ScoreConfig(revisit_distance=0.3))
    assert not flipped
    assert not find_revisits(stamps, poses, ScoreConfig(revisit_min_path=100.0))


def test_future_targets_follow_the_horizons_and_anchors():
    stamps = np.arange(0.0, 5.0, 0.1)
    plan = plan_future(stamps, ScoreConfig(horizons=(0.5, 1.0), query_every=1.0, warmup=0.5))
    assert sorted(plan) == [5, 15, 25, 35, 45][:4]  # the 4.5 s anchor has no target inside the run
    assert plan[5] == [(0.5, 10), (1.0, 15)]
    assert plan[35] == [(0.5, 40), (1.0, 45)]
    # a missing frame near t + h means no target for that horizon
    gappy = np.delete(stamps, [10])
    assert 5 not in plan_future(gappy, ScoreConfig(horizons=(0.5,), query_every=1.0, warmup=0.5))


@pytest.mark.parametrize("kwargs", [{"horizons": ()}, {"horizons": (0.0,)}, {"query_every": 0.0},
                                    {"revisit_min_time": -1.0}, {"target_tolerance": 0.0}, {"recall_window": -1.0}])
def test_bad_score_options_name_the_option(kwargs):
    with pytest.raises(InvalidInput) as info:
        ScoreConfig(**kwargs)
    assert info.value.parameter.startswith("--")


@pytest.mark.parametrize("recent_max, old_min", [(0.5, 0.5), (-0.1, 0.5), (0.1, 1.5)])
def test_recall_shares_must_leave_room_between_them(recent_max, old_min):
    with pytest.raises(InvalidInput, match="recent_max < old_min"):
        ScoreConfig(recall_recent_max=recent_max, recall_old_min=old_min)


@dataclass
class FlatFrame:
    """A grey frame with a white walker where ``motion_mask`` is set (or no mask at all)."""

    stamp: float
    motion_mask: np.ndarray | None
    K = Intrinsics(10.0, 10.0, 8.0, 6.0, 16, 12)

    depth = np.full((12, 16), 2.0, np.float32)

    @property
    def rgb(self):
        rgb = np.full((12, 16, 3), 100, np.uint8)
        if self.motion_mask is not None:
            rgb[self.motion_mask] = 255
        return rgb


class GreyWorld:
    """A world model that knows the static scene exactly (grey) and sees no walker."""

    name = "grey"

    def observe(self, frame, dynamic_mask):
        pass

    def predict(self, T_world_cam, K):
        return np.full((12, 16, 3), 100, np.uint8), np.ones((12, 16), bool)

    def memory_bytes(self):
        return 0


@pytest.mark.parametrize("with_mask", [True, False])
def test_static_psnr_leaves_out_the_targets_walkers(with_mask):
    walker = np.zeros((12, 16), bool)
    walker[2:10, 3:6] = True
    stamps, poses = square_loop(laps=0.25)
    frames = [FlatFrame(t, walker if with_mask else None) for t in stamps]
    result = score_sequence(frames, stamps, poses, [GreyWorld()], ScoreConfig(horizons=(0.5,)))
    assert result.scores
    for s in result.scores:
        if with_mask:  # wrong only on the walker: 155 grey levels over 24 of 192 pixels
            assert s.psnr == pytest.approx(10 * np.log10(255 ** 2 / (155 ** 2 * 24 / 192)))
            assert s.psnr_static == PSNR_MAX_DB
        else:
            assert s.psnr == PSNR_MAX_DB and np.isnan(s.psnr_static)


def fake_run():
    """Scores of two methods, as score_sequence would make them (numbers chosen, not measured)."""
    scores = [Score("future", m, 1.0, t, t + 1.0, p, 0.5, p + 1, 0.6, 0.8, p + 2, 2.0)
              for m, p in (("a", 20.0), ("b", 15.0)) for t in (0.0, 1.0)]
    scores.append(Score("revisit", "a", None, 4.9, 5.0, 25.0, 0.7, float("nan"), float("nan"), 0.0, 26.0, 2.0))
    timeline = [{"stamp": t, "method": m, "memory_bytes": 1000 * (i + 1), "update_ms": 3.0}
                for i, t in enumerate((0.0, 1.0, 2.0)) for m in ("a", "b")]
    rgb = np.zeros((12, 16, 3), np.uint8)
    examples = [Example("future", 1.0, 2.0, rgb, {m: (rgb, np.ones((12, 16), bool)) for m in "ab"})]
    report = {"command": "mirage-ros eval x --out y", "versions": {"provider": "cpu"},
              "recording": {"path": "x", "kind": "tum", "frames": 3, "t0": 0.0, "duration_s": 2.0,
                            "width": 16, "height": 12},
              "methods": ["a", "b"], "planned": {"future": 2, "revisit": 1},
              "summary": summarise(scores, ["a", "b"], (1.0,)), "cost": cost_rows(timeline, scores, ["a", "b"]),
              "dynamics": {"source": "off", "iou": None}, "skipped": [{"what": "frame t=9", "reason": "no pose"}]}
    return report, scores, timeline, examples


def test_report_has_every_part_and_strict_json(tmp_path):
    report, scores, timeline, examples = fake_run()
    out = write_report(tmp_path / "rep", report, scores, timeline, examples)
    document = json.loads((out / "report.json").read_text())
    assert document["summary"][0]["future@1s.psnr"] == pytest.approx(20.0)
    assert document["summary"][0]["revisit.psnr_covered"] is None  # NaN -> null, strict JSON
    assert document["summary"][1]["revisit.n"] == 0
    md = (out / "report.md").read_text()
    assert "| a | 20.00 | 0.500 | 21.00 | 0.600 | 0.80 | 22.00 |" in md and "frame t=9: no pose" in md
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == len(document["figures"]) >= 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rep"]


def test_a_failing_report_leaves_nothing_and_keeps_the_previous_one(tmp_path, monkeypatch):
    report, scores, timeline, examples = fake_run()
    out = write_report(tmp_path / "rep", report, scores, timeline, examples)
    before = (out / "report.json").read_text()

    def broken(*args, **kwargs):
        raise RuntimeError("disk full while drawing")

    monkeypatch.setattr(report_module, "_figures", broken)
    with pytest.raises(RuntimeError):
        write_report(tmp_path / "rep", report, scores, timeline, examples)
    with pytest.raises(RuntimeError):
        write_report(tmp_path / "new", report, scores, timeline, examples)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rep"]
    assert (out / "report.json").read_text() == before


def test_report_refuses_to_replace_a_folder_that_is_not_a_report(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    report, scores, timeline, examples = fake_run()
    with pytest.raises(InvalidInput) as info:
        write_report(tmp_path / "mine", report, scores, timeline, examples)
    assert info.value.parameter == "--out"
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "precious"
