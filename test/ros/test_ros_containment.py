"""The callback boundary of every node (ros/node_util.ContainedNode): an exception a callback did
not foresee is logged (naming topic, message class, field or place) and counted, and the node
keeps running. A real rclpy node, publisher and service client in this process."""

from __future__ import annotations

import time

import pytest

from mirage_ros.errors import InvalidInput


def _node_class():
    from std_msgs.msg import String
    from std_srvs.srv import Trigger

    from mirage_ros.ros.node_util import ContainedNode

    class Fragile(ContainedNode):
        """Raises on purpose: one class of failure per input."""

        def __init__(self, **kwargs):
            super().__init__("fragile", **kwargs)
            self.received: list[str] = []
            self.ticks = 0
            self.create_subscription(String, "words", self._on_word, 10)
            self.create_timer(0.05, self._tick)
            self.create_service(Trigger, "poke", self._poke)

        def _on_word(self, msg) -> None:
            if msg.data == "index":
                [][1]  # noqa: B018 - an IndexError the callback did not foresee
            if msg.data == "invalid":
                raise InvalidInput("words.data", "not a word we know")
            self.received.append(msg.data)

        def _tick(self) -> None:
            self.ticks += 1
            if self.ticks == 1:
                raise ZeroDivisionError("first tick")

        def _poke(self, request, response):
            raise KeyError("nothing to poke")

    return Fragile, String, Trigger


@pytest.mark.usefixtures("interfaces")
def test_each_failure_class_is_contained_logged_and_counted(capfd):
    import rclpy
    from rclpy.executors import SingleThreadedExecutor

    Fragile, String, Trigger = _node_class()
    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        node = Fragile(context=context)
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        words = node.create_publisher(String, "words", 10)
        client = node.create_client(Trigger, "poke")
        deadline = time.monotonic() + 20
        while words.get_subscription_count() == 0 or not client.service_is_ready():
            executor.spin_once(timeout_sec=0.05)
            assert time.monotonic() < deadline
        for word in ("index", "invalid", "hello"):
            words.publish(String(data=word))
        future = client.call_async(Trigger.Request())
        while not (future.done() and "hello" in node.received and node.ticks > 2):
            executor.spin_once(timeout_sec=0.05)
            assert time.monotonic() < deadline, (node.received, node.ticks, dict(node.callback_errors))
        response = future.result()
        counts = dict(node.callback_errors)
        errors = node.error_counts()
    finally:
        rclpy.shutdown(context=context)
    assert not response.success and response.message == "KeyError: 'nothing to poke'"
    assert counts == {"words: IndexError": 1, "words: InvalidInput": 1, "tick: ZeroDivisionError": 1,
                      "poke: KeyError": 1}
    assert errors["callback_errors"] == 4 and errors["callback_error words: IndexError"] == 1
    log = capfd.readouterr().err
    assert "words (String) failed, the node keeps running: IndexError: list index out of range (at " \
           "test_ros_containment.py:" in log
    assert "words (String) failed, the node keeps running: field words.data: not a word we know" in log
    assert "tick (timer) failed, the node keeps running: ZeroDivisionError: first tick" in log
    assert "poke (Trigger) failed, the node keeps running: KeyError" in log
