"""The fallback approximate-time synchroniser (message_filters is not installed here)."""

import pytest

from mirage_ros.errors import InvalidInput
from mirage_ros.ros.sync import ApproximateSync


def _collect(n=3, queue=5, slop=0.02):
    out = []
    return ApproximateSync(n, queue, slop, lambda *m: out.append(m)), out


def test_matches_within_slop_in_any_arrival_order():
    sync, out = _collect()
    sync.add(1, "d1", 1.005)
    sync.add(0, "i1", 1.0)
    assert out == []
    sync.add(2, "c1", 0.995)
    assert out == [("i1", "d1", "c1")]


def test_rejects_sets_wider_than_slop_and_picks_closest():
    sync, out = _collect()
    sync.add(0, "i1", 1.0)
    sync.add(1, "d_far", 1.1)
    sync.add(2, "c1", 1.0)
    assert out == []
    sync.add(1, "d1", 1.01)
    assert out == [("i1", "d1", "c1")]
    # d_far (1.1) was after the set: kept for the next one.
    sync.add(0, "i2", 1.1)
    sync.add(2, "c2", 1.1)
    assert out[-1] == ("i2", "d_far", "c2")


def test_late_sets_are_still_emitted_and_queue_is_bounded():
    sync, out = _collect(n=2, queue=2)
    sync.add(0, "a", 2.0)
    sync.add(1, "b", 2.0)
    sync.add(0, "late", 1.0)  # older than an emitted set: the node decides (out-of-order, bag loop)
    sync.add(1, "late_d", 1.0)
    assert out == [("a", "b"), ("late", "late_d")]
    for k in range(5):  # only input 0 talks: its queue stays bounded
        sync.add(0, f"i{k}", 3.0 + k)
    assert len(sync._queues[0]) == 2
    sync.add(1, "d", 6.99)
    assert out[-1] == ("i4", "d")


def test_clear_and_bad_parameters():
    sync, out = _collect(n=2)
    sync.add(0, "a", 5.0)
    sync.clear()
    sync.add(1, "b", 5.0)
    assert out == []  # "a" was forgotten
    sync.add(0, "c", 5.0)
    assert out == [("c", "b")]
    with pytest.raises(InvalidInput, match="sync_slop"):
        ApproximateSync(2, 3, -1.0, print)
    with pytest.raises(InvalidInput, match="sync_queue_size"):
        ApproximateSync(2, 0, 0.1, print)
