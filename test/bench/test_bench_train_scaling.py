"""train_scaling's throughput: samples/s from the trainer's log, start-up excluded."""

import pytest

from mirage_ros.bench.train_scaling import throughput


def test_throughput_skips_warm_up_records():
    recs = [{"step": 1, "seconds": 20.0}, {"step": 50, "seconds": 30.0}, {"val": {}, "step": 50},
            {"step": 100, "seconds": 35.0}, {"step": 150, "seconds": 40.0}]
    # steps 50 -> 150 in 10 s, 24 samples a step
    assert throughput(recs, per_step=24, warmup_step=50) == pytest.approx(100 * 24 / 10)


def test_throughput_needs_two_timed_records():
    with pytest.raises(RuntimeError, match="two timed"):
        throughput([{"step": 1, "seconds": 1.0}, {"step": 100, "seconds": 9.0}], 8, warmup_step=50)
