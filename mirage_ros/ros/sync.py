"""Approximate time synchronisation of camera topics (image, depth, camera_info).

:class:`SynchronizedSubscription` uses ``message_filters.ApproximateTimeSynchronizer`` when
message_filters is importable, and otherwise :class:`ApproximateSync`, a small equivalent: each
input keeps a bounded queue; when a message arrives, the message closest in time from every other
queue is taken, and if all stamps lie within ``slop`` seconds the set is emitted and everything
at or before it is removed. Either way ``received`` / ``matched`` counters give the number of
frames dropped (input sets that were never matched) for diagnostics.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence

from mirage_ros.errors import InvalidInput
from mirage_ros.messages.convert import time_to_sec

try:
    import message_filters
except ImportError:  # pragma: no cover - depends on the machine
    message_filters = None


class ApproximateSync:
    """Group one message per input whose stamps differ by at most ``slop`` seconds.

    Args:
        n_inputs: number of inputs (>= 2).
        queue_size: messages kept per input (>= 1); the oldest is dropped when full.
        slop: largest allowed stamp difference within a set, seconds (>= 0).
        callback: called with one message per input, in input order.
    """

    def __init__(self, n_inputs: int, queue_size: int, slop: float, callback: Callable[..., None]):
        if n_inputs < 2:
            raise InvalidInput("n_inputs", f"need at least 2 inputs, got {n_inputs}")
        if queue_size < 1:
            raise InvalidInput("sync_queue_size", f"must be >= 1, got {queue_size}")
        if not slop >= 0.0:
            raise InvalidInput("sync_slop", f"must be >= 0 seconds, got {slop}")
        self._queues: list[list[tuple[float, int, object]]] = [[] for _ in range(n_inputs)]
        self._queue_size = queue_size
        self._slop = slop
        self._callback = callback
        self._serial = 0  # tie-breaker: messages are never compared

    def add(self, index: int, msg: object, stamp: float) -> None:
        """Offer ``msg`` (stamped ``stamp`` seconds) on input ``index``; may call the callback.

        Sets older than one already emitted are emitted too (as message_filters does): judging
        order (out-of-order frame, or a bag loop that resets the memory) is the caller's job.
        """
        queue = self._queues[index]
        self._serial += 1
        bisect.insort(queue, (stamp, self._serial, msg))
        if len(queue) > self._queue_size:
            queue.pop(0)
        chosen = [min(q, key=lambda item: abs(item[0] - stamp)) if q else None for q in self._queues]
        if any(item is None for item in chosen):
            return
        stamps = [item[0] for item in chosen]
        if max(stamps) - min(stamps) > self._slop:
            return
        for q, item in zip(self._queues, chosen):
            del q[: q.index(item) + 1]
        self._callback(*(item[2] for item in chosen))

    def clear(self) -> None:
        """Forget every queued message (after a time jump)."""
        for q in self._queues:
            q.clear()


class SynchronizedSubscription:
    """Subscriptions to several stamped topics delivered as synchronised sets.

    Attributes:
        received: messages received per input.
        matched: sets delivered to the callback.
        backend: ``"message_filters"`` or ``"mirage"`` (the :class:`ApproximateSync` fallback).
    """

    def __init__(self, node, inputs: Sequence[tuple[type, str]], qos, queue_size: int, slop: float,
                 callback: Callable[..., None]):
        self.received = [0] * len(inputs)
        self.matched = 0
        self._callback = callback
        if message_filters is not None:
            self.backend = "message_filters"
            subs = [message_filters.Subscriber(node, t, topic, qos_profile=qos) for t, topic in inputs]
            for i, sub in enumerate(subs):
                sub.registerCallback(self._counter(i))
            self._sync = message_filters.ApproximateTimeSynchronizer(subs, queue_size, slop)
            self._sync.registerCallback(self._deliver)
            self._subs = subs
        else:
            self.backend = "mirage"
            self._sync = ApproximateSync(len(inputs), queue_size, slop, self._deliver)
            self._subs = [
                node.create_subscription(t, topic, self._feeder(i), qos) for i, (t, topic) in enumerate(inputs)
            ]

    @property
    def dropped(self) -> int:
        """Input sets never delivered: the busiest input's count minus the sets matched."""
        return max(self.received) - self.matched

    def clear(self) -> None:
        """Drop what is queued (the fallback only; message_filters drops stale sets itself)."""
        if isinstance(self._sync, ApproximateSync):
            self._sync.clear()

    def _counter(self, index: int):
        def count(_msg) -> None:
            self.received[index] += 1

        return count

    def _feeder(self, index: int):
        def feed(msg) -> None:
            self.received[index] += 1
            self._sync.add(index, msg, time_to_sec(msg.header.stamp))

        return feed

    def _deliver(self, *msgs) -> None:
        self.matched += 1
        self._callback(*msgs)
