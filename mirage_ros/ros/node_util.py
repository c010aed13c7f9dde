"""What every node of the package shares: throttled warnings per cause, callbacks that cannot
stop the node, and its ``main``."""

from __future__ import annotations

import functools
import signal
import sys
import threading
import time
import traceback
from collections import Counter

from rclpy.node import Node

from mirage_ros.errors import InvalidInput, MirageError


class WarningThrottle:
    """At most one warning per cause every ``period`` seconds, with a count of the ones held back.

    rclpy's ``throttle_duration_sec`` throttles per call site, so one ``_skip`` helper would let
    a frequent cause (say, out-of-order stamps) hide a rare one (a zero camera matrix).
    """

    def __init__(self, logger, period: float = 2.0):
        self._logger = logger
        self._period = period
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def warn(self, cause: str, text: str, period: float | None = None) -> bool:
        """Log ``text`` unless ``cause`` was logged less than ``period`` s ago; True if logged."""
        now = time.monotonic()
        period = self._period if period is None else period
        if now - self._last.get(cause, -float("inf")) < period:
            self._held[cause] = self._held.get(cause, 0) + 1
            return False
        held = self._held.pop(cause, 0)
        self._last[cause] = now
        self._logger.warning(text + (f" ({held} more like this since the last warning)" if held else ""))
        return True


def node_warnings(node) -> WarningThrottle:
    """The node's own :class:`WarningThrottle` (a :class:`ContainedNode`'s), or a new one for
    another node: helpers that log for a node share its throttle."""
    return getattr(node, "warn", None) or WarningThrottle(node.get_logger())


class ContainedNode(Node):
    """A node whose subscription, timer and service callbacks cannot stop it.

    Every callback made through :meth:`create_subscription`, :meth:`create_timer` and
    :meth:`create_service` (the helpers that subscribe for a node, message_filters and the TF
    source included) is wrapped: an exception it raises is logged, throttled per place and
    exception class, naming the topic, the message class and (for :class:`InvalidInput`) the
    field, and counted in :attr:`callback_errors`, and the executor goes on. Callbacks still
    validate their input themselves and skip a bad message with a warning of their own; this is
    the boundary for what they did not foresee: one malformed message must never end perception.
    A failure during shutdown is re-raised, so that Ctrl-C still ends the node.

    Attributes:
        warn: the node's :class:`WarningThrottle`.
        callback_errors: exceptions caught at the boundary, per ``"<topic or callback>: <class>"``.
    """

    def __init__(self, node_name: str, **kwargs):
        super().__init__(node_name, **kwargs)
        self.warn = WarningThrottle(self.get_logger())
        self.callback_errors: Counter[str] = Counter()
        self._side_nodes: dict[str, tuple] = {}

    def side_node(self, suffix: str) -> ContainedNode:
        """This node's helper ``<name>_<suffix>`` (same namespace and context; its callbacks'
        errors counted and its warnings throttled here), spun by a single-threaded executor of its
        own on a daemon thread until this node is destroyed; one per ``suffix``.

        For subscriptions that must keep flowing while this node's callbacks work (TF while the
        world model renders). A multi-threaded executor for the whole node does that too, but in
        rclpy its extra threads take the GIL from the working callback at each of its many ONNX
        Runtime calls: the world model's observe took 125 ms instead of 22 ms in the demo."""
        if suffix not in self._side_nodes:
            from rclpy.executors import SingleThreadedExecutor

            side = ContainedNode(f"{self.get_name()}_{suffix}", namespace=self.get_namespace(), context=self.context)
            side.warn, side.callback_errors = self.warn, self.callback_errors
            executor = SingleThreadedExecutor(context=self.context)
            executor.add_node(side)
            thread = threading.Thread(target=_spin_until_shutdown, args=(executor,), daemon=True,
                                      name=f"{self.get_name()}_{suffix}")
            thread.start()
            self._side_nodes[suffix] = (side, executor, thread)
        return self._side_nodes[suffix][0]

    def destroy_node(self):
        for side, executor, thread in self._side_nodes.values():
            executor.shutdown(timeout_sec=1.0)
            thread.join(timeout=1.0)
            side.destroy_node()
        self._side_nodes.clear()
        return super().destroy_node()

    def create_subscription(self, msg_type, topic, callback, qos_profile, **kwargs):
        return super().create_subscription(msg_type, topic, self._contained(callback, topic, msg_type.__name__),
                                           qos_profile, **kwargs)

    def create_timer(self, timer_period_sec, callback, *args, **kwargs):
        return super().create_timer(timer_period_sec, self._contained(callback, _name(callback), "timer"),
                                    *args, **kwargs)

    def create_service(self, srv_type, srv_name, callback, **kwargs):
        return super().create_service(srv_type, srv_name, self._contained(callback, srv_name, srv_type.__name__,
                                                                          service=True), **kwargs)

    def _contained(self, callback, where: str, what: str, service: bool = False):
        @functools.wraps(callback)
        def contained(*args):
            try:
                return callback(*args)
            except Exception as exc:  # noqa: BLE001 - the point of this boundary; logged and counted below
                from rclpy.executors import ExternalShutdownException

                if isinstance(exc, ExternalShutdownException) or not self.context.ok():
                    raise
                self._caught(exc, where, what)
                if not service:
                    return None
                response = args[-1]  # a service answers, with the failure where it can say one
                if hasattr(response, "success"):
                    response.success, response.message = False, f"{type(exc).__name__}: {exc}"
                return response

        return contained

    def error_counts(self) -> dict[str, int]:
        """Diagnostics values: ``callback_errors`` (total) and one count per place and class."""
        return {"callback_errors": sum(self.callback_errors.values()),
                **{f"callback_error {key}": n for key, n in sorted(self.callback_errors.items())}}

    def _caught(self, exc: Exception, where: str, what: str) -> None:
        key = f"{where}: {type(exc).__name__}"
        self.callback_errors[key] += 1
        if isinstance(exc, InvalidInput):
            detail = f"field {exc.parameter}: {exc.reason}"
        else:
            place = traceback.extract_tb(exc.__traceback__)[-1]
            detail = f"{type(exc).__name__}: {exc} (at {place.filename.rsplit('/', 1)[-1]}:{place.lineno})"
        self.warn.warn("callback " + key, f"{where} ({what}) failed, the node keeps running: {detail}")


def _spin_until_shutdown(executor) -> None:
    from rclpy.executors import ExternalShutdownException, ShutdownException

    try:
        executor.spin()
    except (ExternalShutdownException, ShutdownException):
        pass


def _name(callback) -> str:
    return getattr(callback, "__name__", type(callback).__name__).lstrip("_")


def run_node(node_class, args=None) -> None:
    """Init rclpy, spin ``node_class()`` until Ctrl-C / shutdown (then exit 0, however many
    interrupts arrive); exit 2 with one line naming the parameter when one is bad (wrong type, out
    of range, not a choice).

    One thread runs the node's callbacks, one at a time; what must keep flowing while they work
    goes on a :meth:`ContainedNode.side_node`."""
    import rclpy
    from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException
    from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor

    rclpy.init(args=args)
    node = None
    try:
        node = node_class()
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except (MirageError, InvalidParameterTypeException, InvalidParameterValueException) as exc:
        print(f"[{node_class.__name__}] error: {exc}", file=sys.stderr)
        sys.exit(2)
    except Exception:
        if rclpy.ok():
            raise
        # Ctrl-C shut the context down while a callback ran (publishing, waiting): its failure
        # is the shutdown itself, not an error to report
    finally:
        # Ctrl-C under `ros2 launch` comes twice (the terminal signals the process group and
        # launch forwards it): the second one must not abort the teardown with a traceback
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if node is not None:
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
