"""``mirage-ros eval-sim``: fidelity of predicted views on held-out simulated scenes, vs baselines.

For every held-out (scene family, seed) the simulator drives the camera along its ``loop`` path
(which closes on itself: a revisit after a long detour) for ``--laps`` periods. Every frame is fed
to our world model (``WorldModel``) and the baselines (RGB point-cloud memory with re-encode,
last-frame warp) through the project's one sequence scorer (``evaluation.scoring``): future views
at ``--horizons`` along the true path and revisits after at least ``--revisit-min-path`` metres,
PSNR / SSIM on the whole frame and on the covered region. Moving people are kept out of every
memory with the simulator's ground-truth motion masks (``--dynamics truth``; the detector is scored
by ``eval-dynamics``). Prints / writes JSON, draws the observed / predicted / error figure and can
record the result in the weights manifest (``--record-manifest``). With people walking, it also
reports ``people_bound``: the best mean PSNR any model can reach on these targets when it is right
to ``q`` dB everywhere but on the people walking, who are in the targets and in no memory.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from mirage_ros.errors import InvalidInput
from mirage_ros.evaluation.methods import METHOD_NAMES, build_methods
from mirage_ros.evaluation.metrics import mse, psnr, psnr_bound
from mirage_ros.evaluation.report import command_line
from mirage_ros.evaluation.scoring import ScoreConfig, score_sequence, summarise, target_group, target_title
from mirage_ros.runtime.networks import MANIFEST_NAME, SUBCELL_PLACEMENT, WEIGHTS_DIR

#: Goals of the fidelity issue, checked on the measured summary (never assumed).
REVISIT_PSNR_GOAL_DB = 28.0
FUTURE_GAIN_GOAL_DB = 3.0
FUTURE_GOAL_HORIZON_S = 1.0
#: Scene errors (dB) at which ``people_bound`` is reported.
PEOPLE_BOUND_SCENE_DB = (26.0, 28.0, 30.0, 33.0)


def sim_sequence(scene: str, seed: int, args, path: str = "loop") -> tuple:
    """``(simulator, frames iterator, stamps (N,), poses (N, 4, 4))`` for one held-out sequence."""
    from mirage_ros.sim import SimConfig, Simulator

    sim = Simulator(SimConfig(scene=scene, seed=seed, width=args.width, height=args.height,
                              rate_hz=args.rate, path=path, actors=args.actors, noise=args.noise))
    duration = args.duration if args.duration else args.laps * sim.period
    n = int(math.floor(duration * args.rate)) + 1
    stamps = np.arange(n) / args.rate
    poses = np.stack([sim.pose_at(t) for t in stamps])
    return sim, sim.frames(n), stamps, poses


def check_goals(summary: list[dict]) -> dict:
    """The issue's goals evaluated on ``summarise`` rows (measured values and pass/fail)."""
    rows = {r["method"]: r for r in summary}
    ours = rows.get("latent_memory", {})
    goals = {}
    revisit = ours.get("revisit.psnr", float("nan"))
    goals["revisit_psnr_ge_28dB"] = {"measured": revisit, "goal": REVISIT_PSNR_GOAL_DB,
                                     "pass": bool(revisit >= REVISIT_PSNR_GOAL_DB)}
    if "rgb_point_cloud" in rows:
        base = rows["rgb_point_cloud"]["revisit.psnr"]
        goals["revisit_psnr_ge_point_cloud"] = {"measured": revisit, "baseline": base,
                                                "pass": bool(revisit >= base)}
    key = f"future@{FUTURE_GOAL_HORIZON_S:g}s.psnr"
    # "last-frame warp" reads two ways: our latents of that frame through our renderer (the
    # strict one: ours without memory) or its pixels re-encoded (the point cloud without memory)
    for goal, baseline in (("future_1s_ge_last_frame_plus_3dB", "last_frame_warp"),
                           ("future_1s_ge_rgb_frame_warp_plus_3dB", "rgb_frame_warp")):
        if baseline in rows:
            ours_f, base_f = ours.get(key, float("nan")), rows[baseline][key]
            goals[goal] = {"measured": ours_f, "baseline": base_f, "gain": ours_f - base_f,
                           "goal_gain": FUTURE_GAIN_GOAL_DB, "pass": bool(ours_f - base_f >= FUTURE_GAIN_GOAL_DB)}
    return goals


def save_figure(path: Path, examples: list, methods: list[str]) -> Path:
    """PNG: one column per example (a revisit and future views); rows observed (people walking
    outlined), then for each method its prediction (with its PSNR, and without the walkers) and
    its absolute error (brighter = worse)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = 1 + 2 * len(methods)
    fig, axes = plt.subplots(rows, len(examples), figsize=(3.2 * len(examples), 2.5 * rows), squeeze=False)
    for col, ex in enumerate(examples):
        title = target_title(ex.kind, ex.horizon)
        moving = ex.moving if ex.moving is not None else np.zeros(ex.observed.shape[:2], bool)
        panels = [("observed (cyan: walking)" if moving.any() else "observed", ex.observed, None)]
        for name in methods:
            rgb, valid = ex.predictions[name]
            h, w = rgb.shape[:2]
            observed = ex.observed[:h, :w]
            error = np.abs(rgb.astype(np.int16) - observed.astype(np.int16)).mean(axis=2)
            score = f"{psnr(rgb, observed):.1f} dB"
            if moving.any():
                score += f", {psnr(rgb, observed, ~moving[:h, :w]):.1f} without walkers"
            panels += [(f"{name}", rgb, score), (f"{name} |error|", np.clip(error * 4, 0, 255).astype(np.uint8), None)]
        for row, (label, image, score) in enumerate(panels):
            ax = axes[row, col]
            ax.imshow(image, cmap="magma" if image.ndim == 2 else None, vmin=0, vmax=255)
            ax.set_xticks([]), ax.set_yticks([])
            if row == 0 and moving.any():
                ax.contour(moving, levels=[0.5], colors="cyan", linewidths=0.7)
            if score:
                ax.text(0.02, 0.03, score, transform=ax.transAxes, fontsize=6, color="white",
                        bbox={"facecolor": "black", "alpha": 0.6, "pad": 1, "linewidth": 0})
            if col == 0:
                ax.set_ylabel(label, fontsize=8)
            if row == 0:
                ax.set_title(f"{title} (t={ex.target_stamp:.1f} s)", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def score_config(args) -> ScoreConfig:
    return ScoreConfig(horizons=tuple(args.horizons), query_every=args.query_every,
                       revisit_min_path=args.revisit_min_path, revisit_min_time=args.revisit_min_time,
                       max_revisits=args.max_revisits, warmup=args.warmup, recall_window=args.recall_window,
                       examples=8)


def people_mse(sim, scores: list) -> dict[str, list[float]]:
    """Per target group, what the walking people alone cost each scored target frame of ``sim``'s
    run: the squared error of the people-free render at that pose against the observed frame on
    the frame's moving pixels (``motion_mask``), averaged over the whole frame. People standing
    still may be in a memory, so they are not counted."""
    from mirage_ros.sim import Simulator

    empty = Simulator(replace(sim.config, actors=False))
    first = scores[0].method if scores else None
    per_frame: dict[int, float] = {}
    out: dict[str, list[float]] = {}
    for s in scores:
        if s.method != first:
            continue
        j = round(s.target_stamp * sim.config.rate_hz)
        if j not in per_frame:
            frame = sim.frame_at(j)
            moving = frame.motion_mask
            per_frame[j] = mse(empty.frame_at(j).rgb, frame.rgb, moving) * moving.mean() if moving.any() else 0.0
        out.setdefault(target_group(s.kind, s.horizon), []).append(per_frame[j])
    return out


def people_bound(mse_by_group: dict[str, list[float]]) -> dict[str, dict[str, float]]:
    """Per target group and scene error ``q`` (``PEOPLE_BOUND_SCENE_DB``): the best mean PSNR of
    a world model ``q`` dB right everywhere but on the people walking (``metrics.psnr_bound``)."""
    return {group: {f"{q:g}": psnr_bound(np.array(values), q) for q in PEOPLE_BOUND_SCENE_DB}
            for group, values in mse_by_group.items()}


def score_one(args, scene: str, seed: int, path: str, show_progress: bool) -> tuple[list, list, dict, dict, dict]:
    """Replay one held-out sequence through every method:
    ``(scores, examples, summary, manifest, people_mse)`` (``people_mse`` empty without actors)."""
    from tqdm import tqdm

    config = score_config(args)
    methods = build_methods(tuple(args.methods), args.provider, weights_dir=args.weights,
                            capacity_points=args.capacity_points,
                            subcell_placement=SUBCELL_PLACEMENT[args.subcell_placement])
    names = [m.name for m in methods]
    sim, frames, stamps, poses = sim_sequence(scene, seed, args, path)
    truth = (lambda f: f.motion_mask) if args.dynamics == "truth" else None
    with tqdm(total=len(stamps), desc=f"eval-sim {scene}/{seed}/{path}", unit="frame",
              disable=not show_progress, file=sys.stderr) as bar:
        result = score_sequence(frames, stamps, poses, methods, config, dynamic_mask=truth,
                                progress=bar.update)
    summary = {"scene": scene, "seed": seed, "path": path, "frames": result.frames, "period_s": sim.period,
               "planned": result.planned, "memory": methods[0].model.stats(),
               "summary": summarise(result.scores, names, config.horizons)}
    people = people_mse(sim, result.scores) if args.actors else {}
    return result.scores, [(scene, seed, ex) for ex in result.examples], summary, \
        methods[0].model.networks.manifest, people


def run_eval_sim(args, command: str) -> dict:
    """Score every held-out sequence (``args.workers`` at a time); returns the JSON document."""
    from concurrent.futures import ProcessPoolExecutor

    started = time.perf_counter()
    config = score_config(args)
    jobs = [(scene, seed, path) for path in args.paths for scene in args.scenes for seed in args.seeds]
    if args.workers > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(min(args.workers, len(jobs))) as pool:
            futures = [pool.submit(score_one, args, scene, seed, path, False) for scene, seed, path in jobs]
            results = [f.result() for f in futures]
    else:
        results = [score_one(args, scene, seed, path, not args.no_progress) for scene, seed, path in jobs]
    scores = [s for r in results for s in r[0]]
    examples = [e for r in results for e in r[1]]
    manifest = results[0][3]
    names = [row["method"] for row in results[0][2]["summary"]]
    summary = summarise(scores, names, config.horizons)
    people: dict[str, list[float]] = {}
    for r in results:
        for group, values in r[4].items():
            people.setdefault(group, []).extend(values)
    return {
        "command": command,
        "weights": {k: v["sha256"] for k, v in manifest["files"].items()},
        "network": {"stride": manifest["network"]["stride"], "channels": manifest["network"]["channels"]},
        "sequences": {"scenes": args.scenes, "seeds": args.seeds, "paths": args.paths, "laps": args.laps,
                      "duration_s": args.duration, "rate_hz": args.rate, "size": [args.width, args.height],
                      "actors": args.actors, "noise": args.noise, "dynamics": args.dynamics},
        "score_config": {"horizons": config.horizons, "query_every": config.query_every,
                         "revisit_min_path": config.revisit_min_path,
                         "revisit_min_time": config.revisit_min_time},
        "summary": summary, "goals": check_goals(summary), "people_bound": people_bound(people),
        "per_sequence": [r[2] for r in results],
        "elapsed_s": round(time.perf_counter() - started, 1),
        "_examples": examples,
    }


def pick_figure_examples(examples: list) -> list:
    """The revisit and the 1 s future view of the first sequence that has both (else what exists)."""
    chosen = []
    for kind, horizon in (("revisit", None), ("future", FUTURE_GOAL_HORIZON_S)):
        match = [ex for _, _, ex in examples if ex.kind == kind and ex.horizon == horizon]
        if match:
            chosen.append(match[0])
    return chosen or [ex for _, _, ex in examples[:2]]


def record_in_manifest(weights_dir: Path, report: dict) -> Path:
    """Write the eval-sim summary, goals and command into ``weights_dir/manifest.json``."""
    path = Path(weights_dir) / MANIFEST_NAME
    manifest = json.loads(path.read_text())
    manifest.setdefault("metrics", {})["eval_sim"] = {
        k: report[k] for k in ("command", "sequences", "score_config", "summary", "goals", "elapsed_s")}
    path.write_text(json.dumps(manifest, indent=2) + "\n")
    return path


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("eval-sim", help="fidelity on held-out simulated scenes vs baselines",
                              description=__doc__.splitlines()[0],
                              formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--scenes", nargs="+", default=["corridor", "office", "warehouse"])
    p.add_argument("--paths", nargs="+", choices=("loop", "pan", "forward"), default=["loop"],
                   help="camera paths, each a sequence per scene and seed: loop (revisits its start), pan (looks "
                        "60 deg left and right at each waypoint: out-of-view recall targets), forward (drives "
                        "to the end and back) (default: loop)")
    p.add_argument("--seeds", nargs="+", type=int, default=[2000],
                   help="held-out seeds (training uses 0-7, validation 1000)")
    p.add_argument("--laps", type=float, default=1.1, help="loop periods to drive (> 1 closes the loop)")
    p.add_argument("--duration", type=float, default=None, help="seconds to drive instead of --laps")
    p.add_argument("--rate", type=float, default=5.0, help="frame rate, Hz")
    p.add_argument("--width", type=int, default=320)
    p.add_argument("--height", type=int, default=240)
    p.add_argument("--actors", action=argparse.BooleanOptionalAction, default=True,
                   help="people walking (kept out of memory by --dynamics)")
    p.add_argument("--noise", choices=("none", "kinect"), default="none", help="sensor model")
    p.add_argument("--dynamics", choices=("truth", "off"), default="truth",
                   help="moving pixels kept out of every memory: ground truth or none")
    p.add_argument("--horizons", type=float, nargs="+", default=[0.5, 1.0, 2.0])
    p.add_argument("--query-every", type=float, default=2.0, help="s between scored anchors / revisits")
    p.add_argument("--revisit-min-path", type=float, default=15.0, help="m travelled between visits")
    p.add_argument("--revisit-min-time", type=float, default=20.0, help="s between visits")
    p.add_argument("--max-revisits", type=int, default=20)
    p.add_argument("--recall-window", type=float, default=3.0,
                   help="out-of-view recall targets: future views the frames of this many s up to the anchor saw "
                        "< 10 %% of (default 3)")
    p.add_argument("--warmup", type=float, default=2.0, help="s observed before the first anchor")
    p.add_argument("--methods", nargs="+", choices=METHOD_NAMES, default=list(METHOD_NAMES))
    p.add_argument("--provider", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--weights", type=Path, default=None, help="weights folder (default: shipped)")
    p.add_argument("--capacity-points", type=int, default=None)
    p.add_argument("--subcell-placement", choices=tuple(SUBCELL_PLACEMENT), default="auto",
                   help="draw rendered cells where their memory points project (auto: as the networks were trained)")
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    p.add_argument("--out", type=Path, default=None, help="also write eval_sim.json here (a folder)")
    p.add_argument("--figure", type=Path, default=None, help="observed / predicted / error PNG")
    p.add_argument("--record-manifest", action="store_true",
                   help="store summary + goals in the weights manifest (the shipped numbers)")
    p.add_argument("--workers", type=int, default=1,
                   help="sequences scored in parallel processes (results do not depend on it)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=main, option_defaults={a.dest: a.default for a in p._actions if a.option_strings})


def _command(args) -> str:
    return command_line(["mirage-ros", "eval-sim"], args,
                        skip=("help", "no_progress", "json", "record_manifest", "out", "figure", "workers"))


def main(args) -> int:
    for name in ("width", "height"):
        if getattr(args, name) < 16:
            raise InvalidInput(f"--{name}", f"must be >= 16, got {getattr(args, name)}")
    if not args.rate > 0:
        raise InvalidInput("--rate", f"must be > 0, got {args.rate}")
    if args.workers < 1:
        raise InvalidInput("--workers", f"must be >= 1, got {args.workers}")
    if not args.laps > 0:
        raise InvalidInput("--laps", f"must be > 0, got {args.laps}")
    report = run_eval_sim(args, _command(args))
    examples = report.pop("_examples")
    if args.figure:
        report["figure"] = str(args.figure)
    text = json.dumps(report, indent=2, default=float)
    if args.out:  # numbers first: a figure failure must not lose them
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "eval_sim.json").write_text(text + "\n")
    if args.record_manifest:
        record_in_manifest(args.weights or WEIGHTS_DIR, report)
    if args.json:
        print(text)
    else:
        for row in report["summary"]:
            print(row["method"], {k: round(v, 2) for k, v in row.items()
                                  if k.endswith((".psnr", ".psnr_static")) and isinstance(v, float)})
        print(json.dumps(report["goals"], indent=1, default=float))
        if report["people_bound"]:
            print("best mean PSNR of a model q dB right but for the people:",
                  json.dumps(report["people_bound"]))
    if args.figure:
        save_figure(args.figure, pick_figure_examples(examples),
                    [row["method"] for row in report["summary"]])
    return 0
