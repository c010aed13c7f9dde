"""eval-sim end to end on a short, small simulated run (shipped ONNX weights, CPU)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from mirage_ros.cli import main as cli_main
from mirage_ros.evaluation.eval_sim import REVISIT_PSNR_GOAL_DB, check_goals, people_bound, people_mse
from mirage_ros.evaluation.metrics import psnr_bound
from mirage_ros.evaluation.scoring import Score
from mirage_ros.runtime.networks import WEIGHTS_DIR, verified_manifest
from mirage_ros.sim import SimConfig, Simulator


def test_eval_sim_scores_methods_and_records_manifest(tmp_path, capsys):
    weights = tmp_path / "weights"
    shutil.copytree(WEIGHTS_DIR, weights)
    figure = tmp_path / "fig.png"
    rc = cli_main(["eval-sim", "--scenes", "office", "--seeds", "2001", "--duration", "9",
                   "--rate", "4", "--width", "128", "--height", "96", "--no-actors",
                   "--query-every", "2", "--revisit-min-path", "0.5", "--revisit-min-time", "3",
                   "--methods", "latent_memory", "last_frame_warp", "--provider", "cpu",
                   "--weights", str(weights), "--json", "--no-progress", "--figure", str(figure),
                   "--record-manifest"])
    assert rc == 0
    report = json.loads(capsys.readouterr().out)
    rows = {r["method"]: r for r in report["summary"]}
    assert set(rows) == {"latent_memory", "last_frame_warp"}
    for row in rows.values():
        for h in ("0.5", "1", "2"):
            assert row[f"future@{h}s.n"] > 0
            assert 5 < row[f"future@{h}s.psnr"] < 60 and 0 < row[f"future@{h}s.ssim"] <= 1
    goals = report["goals"]
    revisit = rows["latent_memory"]["revisit.psnr"]
    assert goals["revisit_psnr_ge_28dB"]["pass"] == bool(revisit >= REVISIT_PSNR_GOAL_DB)
    gain = goals["future_1s_ge_last_frame_plus_3dB"]["gain"]
    assert np.isclose(gain, rows["latent_memory"]["future@1s.psnr"] - rows["last_frame_warp"]["future@1s.psnr"])
    assert figure.stat().st_size > 10_000
    manifest = verified_manifest(weights)  # recording metrics must not break the sha256 check
    assert manifest["metrics"]["eval_sim"]["summary"] == json.loads(json.dumps(report["summary"]))
    assert "eval-sim" in manifest["metrics"]["eval_sim"]["command"]
    assert report["people_bound"] == {}  # --no-actors: nothing to bound


def test_goals_follow_the_measured_numbers():
    row = {"method": "latent_memory", "revisit.psnr": 27.9, "future@1s.psnr": 25.0}
    base = {"method": "last_frame_warp", "revisit.psnr": 20.0, "future@1s.psnr": 21.9}
    goals = check_goals([row, base])
    assert not goals["revisit_psnr_ge_28dB"]["pass"]
    assert goals["future_1s_ge_last_frame_plus_3dB"]["pass"]
    row["future@1s.psnr"] = 24.8
    assert not check_goals([row, base])["future_1s_ge_last_frame_plus_3dB"]["pass"]
    pixels = {"method": "rgb_frame_warp", "revisit.psnr": 18.0, "future@1s.psnr": 20.0}
    goals = check_goals([row, base, pixels])  # each reading of "last-frame warp" on its own
    assert goals["future_1s_ge_rgb_frame_warp_plus_3dB"]["pass"]
    assert goals["future_1s_ge_rgb_frame_warp_plus_3dB"]["gain"] == pytest.approx(4.8)
    assert not goals["future_1s_ge_last_frame_plus_3dB"]["pass"]


def test_people_bound_counts_only_what_the_people_walking_cost():
    sim = Simulator(SimConfig(scene="corridor", seed=2001, width=128, height=96, rate_hz=4.0,
                              path="loop", actors=True))
    frames = [0, 75, 357]  # nobody in view; a person walking fills ~28 %; one standing fills ~29 %
    people = [sim.frame_at(j) for j in frames]
    assert [round(float((f.instance_ids > 0).mean()), 2) for f in people] == [0.0, 0.28, 0.29]
    assert [bool(f.motion_mask.any()) for f in people] == [False, True, False]
    scores = [Score("future", m, 1.0, j / 4.0 - 1.0, j / 4.0, 20.0, 0.5, 20.0, 0.5, 1.0, 20.0, 1.0)
              for j in frames for m in ("a", "b")]  # one entry per frame: the first method's
    scores.append(Score("revisit", "a", None, 18.5, 18.75, 20.0, 0.5, 20.0, 0.5, 1.0, 20.0, 1.0))
    cost = people_mse(sim, scores)
    assert sorted(cost) == ["future@1s", "revisit"] and len(cost["future@1s"]) == 3
    # a standing person may be in a memory: only the walker counts
    assert cost["future@1s"][0] == cost["future@1s"][2] == 0.0 and cost["future@1s"][1] > 1e-3
    assert cost["revisit"] == [cost["future@1s"][1]]  # frame 75 again, rendered once
    bound = people_bound(cost)
    assert bound["revisit"]["28"] < bound["revisit"]["33"] < psnr_bound(np.zeros(1), 33.0) == 33.0
    expected = np.mean([28.0, -10 * np.log10(cost["future@1s"][1] + 10 ** -2.8), 28.0])
    assert bound["future@1s"]["28"] == pytest.approx(expected)
    assert np.isnan(psnr_bound(np.zeros(0), 28.0))
