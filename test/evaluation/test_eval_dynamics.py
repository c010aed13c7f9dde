"""eval-dynamics: mask metrics, pooling over sequences, goal evaluation and a short real run."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from mirage_ros import cli
from mirage_ros.evaluation import eval_dynamics as ev
from mirage_ros.evaluation.metrics import (
    f1_from_counts,
    iou_from_counts,
    mask_counts,
    mask_f1,
    mask_iou,
    region_recall_counts,
)
from mirage_ros.runtime.networks import WEIGHTS_DIR


def test_mask_metrics_on_known_masks():
    pred = np.zeros((4, 4), bool)
    pred[:2] = True  # 8 pixels
    truth = np.zeros((4, 4), bool)
    truth[1:3] = True  # 8 pixels, 4 shared
    assert mask_counts(pred, truth) == (4, 4, 4)
    assert mask_iou(pred, truth) == pytest.approx(1 / 3)
    assert mask_f1(pred, truth) == pytest.approx(0.5)
    assert math.isnan(iou_from_counts(0, 0, 0)) and math.isnan(f1_from_counts(0, 0, 0))
    ids = np.zeros((4, 4), int)
    ids[0, :3] = 7  # fully flagged
    ids[3, :] = 2  # missed
    ids[2, 0] = 5  # 1 pixel: below min_pixels
    assert region_recall_counts(pred, ids, min_coverage=0.5, min_pixels=2) == (1, 2)


def test_mask_metrics_name_bad_shapes():
    with pytest.raises(ValueError, match="pred"):
        mask_counts(np.zeros((2, 2), bool), np.zeros((3, 2), bool))


def _sequence(ours, baseline_by_th, collision_fp=0, psnr_static=30.0, psnr_ours=29.8):
    def counts(tp, fp, fn, extra_fp=0):
        normal = dict(tp=tp, fp=fp, fn=fn, regions_found=1, regions=2)
        collision = dict(tp=0, fp=extra_fp, fn=0, regions_found=0, regions=0)
        return {"normal": normal, "collision": collision}

    psnr = {name: {"frame": [psnr_ours], "covered": [psnr_ours]} for name in ev.MODELS}
    psnr["static"] = {"frame": [psnr_static], "covered": [psnr_static]}
    return {
        "frames": 10, "collision_frames": 1, "unknown_frames": 0, "revisit_frames": 1,
        "ours": counts(*ours, extra_fp=collision_fp),
        "baseline": {th: counts(*c) for th, c in baseline_by_th.items()},
        "revisit_psnr": psnr, "detect_ms": {"mean": 5.0, "p95": 6.0},
    }


def test_summary_pools_counts_picks_best_baseline_and_evaluates_goals():
    seqs = [
        _sequence((90, 5, 5), {"0.1": (50, 50, 50), "0.2": (60, 10, 40)}, collision_fp=100),
        _sequence((80, 10, 10), {"0.1": (50, 50, 50), "0.2": (60, 10, 40)}, psnr_ours=29.0),
    ]
    s = ev.summarise(seqs)
    assert s["flags"]["ours"]["tp"] == 170 and s["flags"]["ours"]["fp"] == 115  # every frame
    assert s["flags"]["ours"]["f1"] == pytest.approx(340 / (340 + 115 + 15))
    assert s["flags_without_close"]["ours"]["fp"] == 15  # frames with a person close left out
    assert s["flags_without_close"]["ours"]["f1"] == pytest.approx(340 / (340 + 15 + 15))
    assert s["flags"]["baseline"]["threshold"] == 0.2
    assert s["flags"]["ours"]["region_recall"] == pytest.approx(0.5)
    assert s["revisit_gap_db"]["ours"] == pytest.approx(30.0 - 29.4)
    assert s["goals"] == {"f1>=0.85": False, "revisit_psnr_gap<=0.5dB": False,
                          "beats_baseline_f1": True}
    assert "MISSED" in ev.format_table({"summary": s})


def test_bad_arguments_name_the_option(capsys):
    assert cli.main(["eval-dynamics", "--frames", "-1"]) == 2
    assert "--frames" in capsys.readouterr().err


@pytest.mark.skipif(not (WEIGHTS_DIR / "manifest.json").exists(), reason="no shipped weights")
def test_short_real_run_reports_all_scores(tmp_path, capsys):
    out = tmp_path / "report.json"
    code = cli.main(["eval-dynamics", "--json", "--frames", "12", "--seeds", "2000",
                     "--width", "160", "--height", "120", "--no-progress", "--provider", "cpu",
                     "--out", str(out)])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report == json.loads(out.read_text())
    (seq,) = report["sequences"]
    assert seq["frames"] == 12
    ours = seq["ours"]["normal"]
    collision = seq["ours"]["collision"]
    truth = sum(ours[k] + collision[k] for k in ("tp", "fn"))
    assert truth > 0, "held-out sequence 2000 has walking people in its first second"
    assert set(report["summary"]["goals"]) == {"f1>=0.85", "revisit_psnr_gap<=0.5dB",
                                               "beats_baseline_f1"}
