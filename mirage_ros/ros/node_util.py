"""What every node of the package shares: throttled warnings per cause, and its ``main``."""

from __future__ import annotations

import signal
import sys
import time

from mirage_ros.errors import MirageError


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


def run_node(node_class, args=None, threads: int = 1) -> None:
    """Init rclpy, spin ``node_class()`` until Ctrl-C / shutdown (then exit 0, however many
    interrupts arrive); exit 2 with one line naming the parameter when one is bad (wrong type, out
    of range, not a choice).

    ``threads > 1``: a multi-threaded executor; callbacks of the node's default group still run
    one at a time, other callback groups (TF) run beside them."""
    import rclpy
    from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException
    from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor, SingleThreadedExecutor

    rclpy.init(args=args)
    node = None
    try:
        node = node_class()
        executor = MultiThreadedExecutor(num_threads=threads) if threads > 1 else SingleThreadedExecutor()
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
