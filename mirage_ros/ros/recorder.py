"""Record what nodes publish, from another process: used by the demo, the benchmark and tests.

    with Recorder("mirage_demo_recorder") as rec:
        views = rec.record("/mirage/predicted/views", PredictedView)
        rec.spin_until(lambda: len(views) >= 3, timeout=20.0)

Each message is kept with its arrival time (``time.monotonic()``) as :class:`Received`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy


@dataclass
class Received:
    """A message and the monotonic time it arrived at."""

    msg: object
    arrived: float


class Recorder:
    """An rclpy node (own context) that keeps every message of the topics it records.

    Args:
        name: node name.
        max_messages: per topic; older messages are dropped beyond (bounded memory).
    """

    def __init__(self, name: str, max_messages: int = 10_000):
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = Node(name, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._max = max_messages
        self.topics: dict[str, list[Received]] = {}

    def record(self, topic: str, msg_type, qos: QoSProfile | int = 10, best_effort: bool = False) -> list[Received]:
        """Start recording ``topic``; returns the (growing) list of :class:`Received`."""
        store = self.topics.setdefault(topic, [])

        def keep(msg, arrived: float) -> None:
            store.append(Received(msg, arrived))
            if len(store) > self._max:
                del store[0]

        self.subscribe(topic, msg_type, keep, qos, best_effort)
        return store

    def subscribe(self, topic: str, msg_type, callback: Callable[[object, float], None],
                  qos: QoSProfile | int = 10, best_effort: bool = False) -> None:
        """Call ``callback(msg, arrived)`` for every message instead of keeping it."""
        if best_effort:
            qos = QoSProfile(depth=qos if isinstance(qos, int) else qos.depth, reliability=ReliabilityPolicy.BEST_EFFORT)
        self.node.create_subscription(msg_type, topic, lambda msg: callback(msg, time.monotonic()), qos)

    def publisher(self, topic: str, msg_type, qos: QoSProfile | int = 10):
        """A publisher on this recorder's node."""
        return self.node.create_publisher(msg_type, topic, qos)

    def call(self, service: str, srv_type, request=None, timeout: float = 10.0):
        """Call a service and return its response (``None`` if it is not there in ``timeout`` s)."""
        client = self.node.create_client(srv_type, service)
        try:
            if not self.spin_until(client.service_is_ready, timeout):
                return None
            future = client.call_async(request if request is not None else srv_type.Request())
            self.spin_until(future.done, timeout)
            return future.result() if future.done() else None
        finally:
            self.node.destroy_client(client)

    def spin_for(self, seconds: float) -> None:
        """Process callbacks for ``seconds``."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.executor.spin_once(timeout_sec=min(0.05, max(0.0, deadline - time.monotonic())))

    def spin_until(self, condition: Callable[[], bool], timeout: float) -> bool:
        """Process callbacks until ``condition()`` holds (True) or ``timeout`` s pass (False)."""
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                return False
            self.executor.spin_once(timeout_sec=0.05)
        return True

    def wait_for_subscribers(self, publisher, count: int = 1, timeout: float = 10.0) -> bool:
        """Spin until ``publisher`` has ``count`` matched subscriptions."""
        return self.spin_until(lambda: publisher.get_subscription_count() >= count, timeout)

    def close(self) -> None:
        """Destroy the node and shut its context down."""
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
