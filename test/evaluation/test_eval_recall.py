"""Out-of-view recall targets (evaluation/recall.py): a future view the seconds before its anchor did
not see and an older frame did; and their own row in the scored results."""

import numpy as np
from helpers.scene import box_room_depth, look_at

from mirage_ros import geometry as g
from mirage_ros.evaluation.recall import ViewCoverage

K = g.Intrinsics(60.0, 60.0, 47.5, 35.5, 96, 72)


def _looking(yaw: float) -> np.ndarray:
    return look_at([0.0, 0.0, 0.0], [3 * np.cos(yaw), 3 * np.sin(yaw), 0.0])


def test_turning_away_and_back_makes_a_recall_target():
    coverage = ViewCoverage(window=3.0)
    stamp = 0.0
    for yaw in np.linspace(0.0, 0.2, 10):  # 1 s looking at +x
        coverage.add(stamp, box_room_depth(K, _looking(yaw)), K, _looking(yaw))
        stamp += 0.1
    for _ in range(40):  # 4 s looking the other way
        coverage.add(stamp, box_room_depth(K, _looking(np.pi)), K, _looking(np.pi))
        stamp += 0.1
    back = _looking(0.1)
    recent, old = coverage.shares(stamp, box_room_depth(K, back), K, back)
    assert recent < 0.02 and old > 0.9
    assert coverage.is_recall(stamp, box_room_depth(K, back), K, back)
    assert not coverage.is_recall(stamp - 3.5, box_room_depth(K, back), K, back)  # anchored before the turn
    coverage.add(stamp, box_room_depth(K, back), K, back)  # now it was just seen: no longer a recall
    again = _looking(0.12)
    assert not coverage.is_recall(stamp + 0.1, box_room_depth(K, again), K, again)
    never = _looking(np.pi / 2)  # a view no frame saw
    assert not coverage.is_recall(stamp + 0.1, box_room_depth(K, never), K, never)
    # what any frame up to the anchor saw: the upper bound of a memory's coverage there
    assert coverage.seen_share(stamp, box_room_depth(K, back), K, back) > 0.9
    assert coverage.seen_share(stamp, box_room_depth(K, never), K, never) < 0.05
    assert coverage.seen_share(0.5, box_room_depth(K, never), K, never) < 0.05


def test_occluded_or_absent_surfaces_are_not_seen():
    """An older frame that saw a nearer surface (or nothing) in that direction did not see the
    target's surface."""
    coverage = ViewCoverage(window=3.0)
    pose = _looking(0.0)
    wall = box_room_depth(K, pose)
    coverage.add(0.0, np.minimum(wall, 0.5), K, pose)  # something stood 0.5 m ahead
    coverage.add(0.1, np.zeros_like(wall), K, pose)  # no depth at all
    assert coverage.shares(10.0, wall, K, pose) == (0.0, 0.0)


class _Blank:
    """The smallest world model: predicts a grey frame (scoring needs no more here)."""

    name = "blank"

    def observe(self, frame, dynamic_mask):
        pass

    def predict(self, T_world_cam, K):
        return np.full((K.height, K.width, 3), 128, np.uint8), np.zeros(K.shape, bool)

    def memory_bytes(self):
        return 0


def test_recall_targets_get_their_own_row():
    from types import SimpleNamespace

    from mirage_ros.evaluation.scoring import ScoreConfig, score_sequence, summarise

    yaws = [0.02 * i for i in range(10)] + [np.pi] * 40 + [0.1 + 0.02 * i for i in range(10)]
    stamps = 0.1 * np.arange(len(yaws))
    poses = np.stack([_looking(y) for y in yaws])
    frames = [SimpleNamespace(stamp=t, rgb=np.zeros((72, 96, 3), np.uint8), depth=box_room_depth(K, T), K=K,
                              T_world_cam=T, motion_mask=None) for t, T in zip(stamps, poses)]
    config = ScoreConfig(horizons=(0.5,), query_every=0.5)
    result = score_sequence(frames, stamps, poses, [_Blank()], config)
    recalls = [s for s in result.scores if s.kind == "recall"]
    assert result.planned["recall"] == len(recalls) == 1
    assert (recalls[0].anchor_stamp, recalls[0].target_stamp) == (stamps[45], stamps[50])
    row = summarise(result.scores, ["blank"], config.horizons)[0]
    assert row["recall.n"] == 1 and row["recall.psnr"] == recalls[0].psnr
    # the first frames saw that view: a memory of everything seen could cover nearly all of it
    assert row["recall.seen"] == recalls[0].seen > 0.9
    assert all(np.isnan(s.seen) for s in result.scores if s.kind != "recall")
