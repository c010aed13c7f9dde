"""Evaluation reports: ``report.json`` (every number), ``report.md`` and ``report.html`` with figures.

:func:`write_report` builds the whole report in a temporary folder beside the destination and
renames it into place at the end, so a crash or Ctrl-C never leaves a partial report under the
final name. An existing destination is replaced only if it is empty or holds an earlier report.
"""

from __future__ import annotations

import base64
import html
import json
import math
import os
import shlex
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mirage_ros.errors import InvalidInput
from mirage_ros.evaluation.scoring import KIND_ORDER, Example, Score, target_title

METRIC_COLUMNS = (("psnr", "PSNR dB", 2), ("ssim", "SSIM", 3), ("psnr_covered", "PSNR cov.", 2),
                  ("ssim_covered", "SSIM cov.", 3), ("coverage", "covered", 2),
                  ("psnr_static", "PSNR static", 2))


def check_destination(out: Path) -> None:
    """Refuse ``--out`` early if it is a file or a folder of something other than a report.

    Raises:
        InvalidInput: ``"--out"``.
    """
    if out.exists() and not out.is_dir():
        raise InvalidInput("--out", f"{out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / "report.json").exists():
        raise InvalidInput("--out", f"{out} is a non-empty folder without a report.json: not overwriting it")
    if not os.access(out.parent if out.parent.exists() else Path("."), os.W_OK):
        raise InvalidInput("--out", f"cannot write in {out.parent}")


def command_line(words: list[str], args, skip: tuple[str, ...]) -> str:
    """``words`` followed by every option of ``args`` that differs from ``args.option_defaults``
    (the parser's defaults), except the destinations in ``skip``: the command that reproduces a run.
    A boolean option is written as its flag, or ``--no-`` flag when turned off."""
    words = list(words)
    for dest, default in args.option_defaults.items():
        value = getattr(args, dest, default)
        if dest in skip or value == default:
            continue
        flag = "--" + dest.replace("_", "-")
        if isinstance(value, bool):
            words.append(flag if value else "--no-" + dest.replace("_", "-"))
        else:
            words += [flag, *(str(v) for v in (value if isinstance(value, (list, tuple)) else [value]))]
    return shlex.join(words)


def _fmt(value, digits: int) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:.{digits}f}"


def summary_tables(report: dict) -> list[tuple[str, list[str], list[list[str]]]]:
    """``[(title, header, rows)]`` of the report's summary, shared by Markdown and HTML."""
    rows = report["summary"]
    groups = [k[: -len(".n")] for k in rows[0] if k.endswith(".n")] if rows else []
    tables = []
    for group in groups:
        n = rows[0][f"{group}.n"]
        if n == 0:  # the report's skipped list says why
            continue
        header = ["method"] + [label for _, label, _ in METRIC_COLUMNS]
        body = [[r["method"]] + [_fmt(r[f"{group}.{key}"], d) for key, _, d in METRIC_COLUMNS] for r in rows]
        tables.append((f"{group} ({n} targets)", header, body))
    cost_header = ["method", "update ms (median)", "predict ms (median)", "memory at end", "memory peak"]
    cost = [[c["method"], _fmt(c["update_ms_median"], 1), _fmt(c["predict_ms_median"], 1),
             _bytes(c["memory_bytes_final"]), _bytes(c["memory_bytes_peak"])] for c in report["cost"]]
    tables.append(("cost", cost_header, cost))
    return tables


def _bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def cost_rows(timeline: Sequence[dict], scores: Sequence[Score], methods: Sequence[str]) -> list[dict]:
    """Per method: median update / predict time and memory bytes at the end and at the peak."""
    rows = []
    for name in methods:
        mine = [t for t in timeline if t["method"] == name]
        predict = [s.predict_ms for s in scores if s.method == name]
        memory = [t["memory_bytes"] for t in mine] or [0]
        rows.append({"method": name,
                     "update_ms_median": float(np.median([t["update_ms"] for t in mine])) if mine else float("nan"),
                     "predict_ms_median": float(np.median(predict)) if predict else float("nan"),
                     "memory_bytes_final": int(memory[-1]), "memory_bytes_peak": int(max(memory))})
    return rows


def _figures(report: dict, scores: Sequence[Score], timeline: Sequence[dict], examples: Sequence[Example],
             overlays: Sequence[tuple], folder: Path) -> list[tuple[str, str]]:
    """Draw the figures into ``folder``; returns ``[(file name, caption)]``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = report["methods"]
    t0 = report["recording"]["t0"]
    figures = []

    def save(fig, name: str, caption: str) -> None:
        fig.savefig(folder / name, dpi=90, bbox_inches="tight")
        plt.close(fig)
        figures.append((name, caption))

    error_map = matplotlib.colormaps["magma"].with_extremes(bad="0.6")
    for index, example in enumerate(examples):
        fig, axes = plt.subplots(len(methods), 3, figsize=(9, 2.4 * len(methods)), squeeze=False)
        for row, name in enumerate(methods):
            rgb, valid = example.predictions[name]
            observed = example.observed[: rgb.shape[0], : rgb.shape[1]]
            error = np.abs(rgb.astype(np.float32) - observed.astype(np.float32)).mean(axis=2)
            for col, (image, title) in enumerate(((observed, "observed"), (rgb, f"{name} predicted"),
                                                  (error, "|error| (grey = not covered)"))):
                ax = axes[row, col]
                if col == 2:
                    ax.imshow(np.where(valid, error, np.nan), cmap=error_map, vmin=0, vmax=128)
                else:
                    ax.imshow(image)
                ax.set_title(title, fontsize=8)
                ax.axis("off")
        what = target_title(example.kind, example.horizon)
        fig.suptitle(f"{what}, t={example.target_stamp - t0:.2f} s", fontsize=10)
        save(fig, f"example_{index}_{example.kind}.png",
             f"Observed / predicted / error: {what} (the best-covered target of the run's second half)")

    groups = sorted({(s.kind, s.horizon) for s in scores}, key=lambda g: (KIND_ORDER.index(g[0]), g[1] or 0))
    if groups:
        fig, axes = plt.subplots(len(groups), 1, figsize=(8, 2.2 * len(groups)), squeeze=False, sharex=True)
        for ax, (kind, horizon) in zip(axes[:, 0], groups):
            for name in methods:
                pts = [(s.target_stamp - t0, s.psnr) for s in scores
                       if s.method == name and s.kind == kind and s.horizon == horizon]
                if pts:
                    ax.plot(*zip(*pts), marker=".", label=name)
            ax.set_ylabel("PSNR dB")
            ax.set_title(target_title(kind, horizon), fontsize=9)
            ax.grid(alpha=0.3)
        axes[0, 0].legend(fontsize=8)
        axes[-1, 0].set_xlabel("time of the real frame (s)")
        save(fig, "psnr_over_time.png", "Whole-frame PSNR of each prediction over the run")

    fig, ax = plt.subplots(figsize=(8, 3))
    for name in methods:
        pts = [(t["stamp"] - t0, t["memory_bytes"] / 2**20) for t in timeline if t["method"] == name]
        ax.plot(*zip(*pts), label=name)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("memory MiB")
    ax.set_yscale("symlog", linthresh=0.01)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    save(fig, "memory_over_time.png", "Memory held by each method over the run")

    fig, axes = plt.subplots(1, 2, figsize=(10, 3))
    for name in methods:
        update = [t["update_ms"] for t in timeline if t["method"] == name]
        predict = [s.predict_ms for s in scores if s.method == name]
        axes[0].hist(update, bins=30, alpha=0.6, label=name)
        if predict:
            axes[1].hist(predict, bins=30, alpha=0.6, label=name)
    for ax, title in zip(axes, ("update (observe) ms", "prediction ms")):
        ax.set_xlabel(title)
        ax.set_ylabel("count")
        ax.legend(fontsize=8)
    save(fig, "latency_histogram.png", "Latency per frame (update) and per predicted view, this machine")

    if overlays:
        fig, axes = plt.subplots(1, len(overlays), figsize=(3.2 * len(overlays), 2.8), squeeze=False)
        for ax, (stamp, rgb, mask, truth) in zip(axes[0], overlays):
            tinted = rgb.astype(np.float32)
            tinted[mask] = 0.5 * tinted[mask] + 0.5 * np.array([255.0, 0.0, 0.0])
            ax.imshow(tinted.astype(np.uint8))
            if truth is not None and truth.any():
                ax.contour(truth, levels=[0.5], colors="cyan", linewidths=0.8)
            ax.set_title(f"t={stamp - t0:.2f} s", fontsize=8)
            ax.axis("off")
        save(fig, "moving_mask_overlay.png",
             "Moving-object mask (red) kept out of memory; ground-truth outline (cyan) where the input has it")
    return figures


def _facts(report: dict) -> list[tuple[str, object]]:
    """What was read and how (detected topics, frames, intrinsics) and what each method is."""
    rec = report["recording"]
    facts = [(key, value) for key, value in rec.get("details", {}).items()]
    if "intrinsics" in rec:
        facts.append(("intrinsics", ", ".join(f"{k} {v:.2f}" for k, v in rec["intrinsics"].items())))
    facts += [(name, text) for name, text in report.get("method_details", {}).items()]
    return facts


def _markdown(report: dict, figures: list[tuple[str, str]]) -> str:
    rec = report["recording"]
    lines = [f"# mirage-ros eval: {Path(rec['path']).name}", "",
             f"- input: `{rec['path']}` ({rec['kind']}), {rec['frames']} frames over {rec['duration_s']:.1f} s, "
             f"{rec['width']}x{rec['height']}",
             f"- command: `{report['command']}`",
             f"- methods: {', '.join(report['methods'])}; provider {report['versions'].get('provider', '?')}",
             f"- targets: {report['planned']['future']} future views, {report['planned']['revisit']} revisits, "
             f"{report['planned'].get('recall', 0)} out-of-view recalls",
             f"- dynamic mask: {report['dynamics']['source']}", ""]
    for title, header, rows in summary_tables(report):
        lines += [f"## {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        lines.append("")
    if report["dynamics"].get("iou") is not None:
        d = report["dynamics"]
        lines += [f"Moving mask vs ground truth: IoU {d['iou']:.3f}, F1 {d['f1']:.3f} over {d['frames']} frames.", ""]
    for name, caption in figures:
        lines += [f"![{caption}](figures/{name})", "", f"*{caption}*", ""]
    lines += ["## Input and methods", ""]
    lines += [f"- {key}: {value}" for key, value in _facts(report)]
    lines += ["", "## Skipped", ""]
    lines += [f"- {s['what']}: {s['reason']}" for s in report["skipped"]] or ["nothing"]
    lines += ["", "Full numbers: `report.json`."]
    return "\n".join(lines) + "\n"


def _html(report: dict, markdown_free: list[tuple[str, str]], folder: Path) -> str:
    esc = html.escape
    rec = report["recording"]
    parts = ["<!doctype html><meta charset='utf-8'>",
             f"<title>mirage-ros eval: {esc(Path(rec['path']).name)}</title>",
             "<style>body{font-family:sans-serif;max-width:1100px;margin:auto}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}td:first-child{text-align:left}"
             "img{max-width:100%}code{background:#eee}</style>",
             f"<h1>mirage-ros eval: {esc(Path(rec['path']).name)}</h1>",
             f"<p>{esc(rec['kind'])}, {rec['frames']} frames over {rec['duration_s']:.1f} s, "
             f"{rec['width']}x{rec['height']}. Command: <code>{esc(report['command'])}</code></p>"]
    for title, header, rows in summary_tables(report):
        parts.append(f"<h2>{esc(title)}</h2><table><tr>" + "".join(f"<th>{esc(h)}</th>" for h in header) + "</tr>")
        parts += ["<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in rows]
        parts.append("</table>")
    for name, caption in markdown_free:
        data = base64.b64encode((folder / name).read_bytes()).decode()
        parts.append(f"<figure><img src='data:image/png;base64,{data}' alt='{esc(caption)}'>"
                     f"<figcaption>{esc(caption)}</figcaption></figure>")
    parts.append("<h2>Input and methods</h2><ul>")
    parts += [f"<li>{esc(key)}: {esc(str(value))}</li>" for key, value in _facts(report)]
    parts.append("</ul><h2>Skipped</h2><ul>")
    parts += [f"<li>{esc(s['what'])}: {esc(s['reason'])}</li>" for s in report["skipped"]] or ["<li>nothing</li>"]
    parts.append("</ul>")
    return "\n".join(parts) + "\n"


def _json_safe(value):
    """NaN / inf become null (strict JSON); numpy scalars become Python numbers."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def write_report(out: Path, report: dict, scores: Sequence[Score], timeline: Sequence[dict],
                 examples: Sequence[Example], overlays: Sequence[tuple] = ()) -> Path:
    """Write ``report.json``, ``report.md``, ``report.html`` and ``figures/`` into ``out``, atomically.

    Args:
        out: destination folder (replaced if it holds an earlier report).
        report: the JSON document (``recording``, ``methods``, ``summary``, ``cost``, ``command``,
            ``versions``, ``planned``, ``dynamics``, ``skipped`` are used by the text).
        scores, timeline, examples: from :func:`mirage_ros.evaluation.scoring.score_sequence`.
        overlays: ``[(stamp, rgb, mask, truth | None)]`` moving-mask overlays.

    Returns:
        ``out``.
    """
    out = Path(out)
    check_destination(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        (staging / "figures").mkdir()
        figures = _figures(report, scores, timeline, examples, overlays, staging / "figures")
        document = _json_safe({**report, "figures": [f"figures/{n}" for n, _ in figures]})
        (staging / "report.json").write_text(json.dumps(document, indent=1, allow_nan=False) + "\n")
        (staging / "report.md").write_text(_markdown(report, figures))
        (staging / "report.html").write_text(_html(report, figures, staging / "figures"))
        old = None
        if out.exists():
            old = out.parent / f".{out.name}.old-{os.getpid()}"
            out.rename(old)
        staging.rename(out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out
