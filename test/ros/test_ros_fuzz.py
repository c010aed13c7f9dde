"""Malformed input: hypothesis over the pure decoders and checks every message goes through, then
a few cases of every fuzz class over real DDS against the running nodes (``mirage-ros bench fuzz``
runs the full 10,000)."""

from __future__ import annotations

import math
import re
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mirage_ros.errors import InvalidInput
from mirage_ros.ros.plausibility import Bounds, Timeline, Verdict

ODD_FLOATS = st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                       st.sampled_from([0.0, -0.0, 1e-30, 1e30, -1e30, 525.0, 319.5, 1.0]))
ENCODINGS = st.one_of(st.sampled_from(["rgb8", "bgr8", "rgba8", "bgra8", "mono8", "32FC1", "16UC1"]),
                      st.text(max_size=12))
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _only_invalid_input(call):
    """``call()``'s result, or None when it raised :class:`InvalidInput`; any other exception fails."""
    try:
        return call()
    except InvalidInput:
        return None


@FAST
@given(width=st.integers(-2, 40), height=st.integers(-2, 40), step=st.integers(-1, 400), encoding=ENCODINGS,
       size=st.integers(0, 5000), bigendian=st.booleans())
def test_any_image_layout_decodes_or_is_refused_by_name(width, height, step, encoding, size, bigendian):
    from mirage_ros.messages import convert

    msg = SimpleNamespace(width=width, height=height, step=step, encoding=encoding, is_bigendian=bigendian,
                          data=bytes(size))
    for decode in (convert.rgb_from_image, convert.depth_from_image, convert.mask_from_image):
        out = _only_invalid_input(lambda: decode(msg))
        if out is not None:
            assert out.shape[:2] == (height, width)


@FAST
@given(k=st.lists(ODD_FLOATS, min_size=9, max_size=9), width=st.integers(-1, 2000), height=st.integers(-1, 2000))
def test_any_camera_info_is_a_plausible_camera_or_refused(k, width, height):
    from mirage_ros.messages import convert

    msg = SimpleNamespace(k=k, p=[0.0] * 12, width=width, height=height)
    K = _only_invalid_input(lambda: Bounds().intrinsics(convert.intrinsics_from_camera_info(msg)))
    if K is not None:
        assert all(math.isfinite(v) for v in (K.fx, K.fy, K.cx, K.cy)) and K.fx > 0 and K.fy > 0


@FAST
@given(points=st.lists(st.tuples(ODD_FLOATS, ODD_FLOATS, ODD_FLOATS), max_size=30),
       quats=st.lists(st.tuples(ODD_FLOATS, ODD_FLOATS, ODD_FLOATS, ODD_FLOATS), max_size=30),
       spacing=st.sampled_from([0.0, 0.5, 1e-9, 1e9]))
def test_any_path_gives_finite_poses_or_is_refused(points, quats, spacing):
    from mirage_ros.ros.prediction_poses import check_path, path_poses, sample_path

    n = min(len(points), len(quats))
    positions = _only_invalid_input(lambda: check_path(np.array(points[:n], float).reshape(-1, 3), 1e5))
    if positions is None:
        return
    picks = sample_path(positions, spacing, 8)
    poses = path_poses(positions, np.array(quats[:n], float).reshape(-1, 4), picks)
    assert len(picks) <= 8 and np.isfinite(poses).all()


@FAST
@given(data=st.binary(max_size=600), fmt=st.sampled_from(["png", "jpeg", "16UC1; compressedDepth png",
                                                          "32FC1; compressedDepth", "rgb8; rvl", ""]))
def test_any_compressed_payload_decodes_or_is_refused(data, fmt):
    from mirage_ros.messages.compressed import depth_from_compressed, rgb_from_compressed

    msg = SimpleNamespace(format=fmt, data=data)
    _only_invalid_input(lambda: rgb_from_compressed(msg, 10_000))
    _only_invalid_input(lambda: depth_from_compressed(msg, 10_000))


@FAST
@given(steps=st.lists(st.floats(0.01, 0.5), min_size=5, max_size=40), outlier=st.integers(1, 30),
       jump=st.sampled_from([-3 * 3600.0, -50.0, 2.0, 3 * 3600.0, 1e9]))
def test_one_outlier_stamp_never_resets_the_time_line(steps, outlier, jump):
    stamps = list(np.cumsum(steps) + 100.0)
    outlier = min(outlier, len(stamps) - 1)
    stamps[outlier] += jump
    timeline = Timeline(jump_threshold=1.0, confirm_frames=3)
    verdicts = [timeline.check(t) for t in stamps]
    assert Verdict.RESET not in verdicts
    assert all(v is Verdict.ACCEPT for i, v in enumerate(verdicts) if i != outlier)


@pytest.mark.usefixtures("interfaces")
def test_every_fuzz_class_over_dds_leaves_the_nodes_alive_and_predicting(tmp_path, ros_env):
    from mirage_ros.bench.fuzz import CLASSES, Campaign

    campaign = Campaign(tmp_path, seed=1, big=False, env=ros_env)
    try:
        campaign.wait_ready()
        # settle past the nodes' 2 s warning throttle: each class's warnings counted as its own
        results = [campaign.run_class(name, 3, settle=2.1) for name in CLASSES]
        results.append(campaign.run_class("mixed", 12, kinds=list(CLASSES), settle=2.1))
        logs = {name: node.output() for name, node in campaign.nodes.items()}
    finally:
        campaign.close()
    assert not [r.name for r in results if r.crashes], logs
    assert not [r.name for r in results if not r.still_publishing], logs
    answered = [r.name for r in results if sum(r.warnings.values()) > 0]
    assert len(answered) >= len(results) - 2, (answered, logs)  # a warning throttled within 2 s may be held back
    assert all(r.memory_points_after > 0 for r in results), "a class emptied the memory"
    for name, text in logs.items():  # nothing reached the callback boundary: every class was foreseen
        assert not re.search("failed, the node keeps running", text), (name, text)
