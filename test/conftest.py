"""Session-wide test set-up: an isolated ROS 2 graph, and child processes that join it.

Isolation (applied in ``pytest_configure``, before any test module imports rclpy):

- ``ROS_DOMAIN_ID``: a random domain in 1..101, other than the shell's own ``ROS_DOMAIN_ID``,
  that no other test session on this machine holds (each session takes an exclusive lock on
  ``$TMPDIR/mirage_ros_test_domains/<id>.lock``), so parallel runs and other developers' nodes
  never cross-talk. Override: ``MIRAGE_TEST_DOMAIN_ID``.
- ``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST`` (and ``ROS_LOCALHOST_ONLY=1`` on Humble): DDS
  traffic stays on this host.
- ``ROS_LOG_DIR``: a temporary folder, so test runs do not fill ``~/.ros/log``.
- ``AMENT_PREFIX_PATH`` gains the venv (``sys.prefix``) when it is an ament prefix: the venv is
  where ``make setup`` installs mirage_ros's share/ and the interface packages.

Messages: ``mirage_ros_msgs`` and, where no ROS provides it, a ``tf2_msgs`` stand-in are built
and installed into the venv by ``make setup`` (``make test`` runs it). Import them as usual
(``from mirage_ros_msgs.msg import PredictedView``, ``from tf2_msgs.msg import TFMessage``).
The ``interfaces`` fixture fails a test with the command to run when they are missing.

Child processes (nodes under test, publishers that must live in another process)::

    def test_node_publishes(ros_process):
        node = ros_process(module="mirage_ros.ros.sim_camera", args=["--ros-args", "-p", "rate:=5.0"])
        node.wait_for_output("publishing", timeout=20)   # a line of its stdout/stderr
        ...                                              # subscribe from the test process
        # the process is stopped (SIGINT, then SIGKILL) when the test ends

    proc = ros_process(code="import rclpy; ...")          # or a snippet of Python
    proc = ros_process(argv=["/path/to/executable"])       # or any executable

``ros_process`` returns a :class:`RosProcess`; it runs with the session's ROS environment
(``ros_env``, plus ``env=`` overrides) and ``sys.executable``. For module- or session-scoped
processes, use ``RosProcess(...)`` directly (``from conftest import RosProcess``) and call
``stop()`` in the fixture's teardown.
"""

from __future__ import annotations

import fcntl
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

DOMAIN_IDS = range(1, 102)  # 0 is everyone's default; above 101 ports overflow on Linux
_domain_lock = None  # open lock file of this session's domain, held until exit


def _claim_domain_id() -> int:
    """A ROS domain id that no other test session on this machine holds, locked for this one."""
    global _domain_lock
    forced = os.environ.get("MIRAGE_TEST_DOMAIN_ID")
    if forced:
        return int(forced)
    folder = Path(tempfile.gettempdir()) / "mirage_ros_test_domains"
    folder.mkdir(exist_ok=True)
    ambient = os.environ.get("ROS_DOMAIN_ID", "0")  # the shell's own graph: never join it
    candidates = [d for d in DOMAIN_IDS if str(d) != ambient]
    random.shuffle(candidates)
    for domain in candidates:
        handle = open(folder / f"{domain}.lock", "w")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        _domain_lock = handle
        return domain
    raise RuntimeError(f"all ROS domain ids {DOMAIN_IDS.start}..{DOMAIN_IDS.stop - 1} are held "
                       f"by other test sessions (locks in {folder})")


_DOMAIN_KEY = pytest.StashKey[int]()


def pytest_configure(config):
    env = os.environ
    env["ROS_DOMAIN_ID"] = str(_claim_domain_id())
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    if env.get("ROS_DISTRO") == "humble":  # Humble predates ROS_AUTOMATIC_DISCOVERY_RANGE
        env["ROS_LOCALHOST_ONLY"] = "1"
    env.setdefault("ROS_LOG_DIR", tempfile.mkdtemp(prefix="mirage_ros_test_log_"))
    prefixes = [p for p in env.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p]
    venv_is_prefix = (Path(sys.prefix) / "share" / "ament_index").is_dir()
    if venv_is_prefix and sys.prefix not in prefixes:
        env["AMENT_PREFIX_PATH"] = os.pathsep.join([sys.prefix] + prefixes)
    config.stash[_DOMAIN_KEY] = int(env["ROS_DOMAIN_ID"])


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    """Test modules that need the training extras (torch, onnx: requirements/train.txt) are skipped
    with that reason where they are missing, as in a colcon workspace that rosdep set up (onnx has
    no rosdep key). ``make test`` sets ``MIRAGE_TRAINING_TESTS=required``: there they fail."""
    outcome = yield
    report = outcome.get_result()
    if report.failed and os.environ.get("MIRAGE_TRAINING_TESTS") != "required":
        missing = re.search(r"No module named '(torch|onnx)'", str(report.longrepr))
        if missing:
            report.outcome = "skipped"
            report.longrepr = (str(collector.path), 0, f"Skipped: needs {missing.group(1)}, a training extra "
                               "(pip install -r requirements/train.txt)")


def pytest_report_header(config):
    return (f"ROS_DOMAIN_ID={config.stash[_DOMAIN_KEY]} "
            f"ROS_AUTOMATIC_DISCOVERY_RANGE={os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE']}")


@pytest.fixture(scope="session")
def ros_env() -> dict[str, str]:
    """The environment child processes get: this session's domain, localhost discovery."""
    return dict(os.environ)


@pytest.fixture(scope="session")
def interfaces():
    """Fail (not skip) with the fix when the interface packages were not built into this env."""
    missing = []
    for package in ("mirage_ros_msgs", "tf2_msgs"):
        try:
            __import__(f"{package}.msg")
        except ImportError as exc:
            missing.append(f"{package} ({exc})")
    if missing:
        pytest.fail(f"not importable: {', '.join(missing)}; build them with `make setup` "
                    f"(docs/install.md)", pytrace=False)


class RosProcess:
    """A child process in the test session's ROS environment, its output captured to a file.

    Exactly one of:
        code: Python source run with ``sys.executable -c``.
        module: module run with ``sys.executable -m`` (e.g. ``"mirage_ros.ros.sim_camera"``).
        argv: a full command line.
    Args:
        args: extra command-line arguments (``code``/``module`` only).
        env: variables added to (or, with value ``None``, removed from) the ROS environment.
        log_path: file receiving stdout and stderr; a temporary file by default.
        cwd: working directory of the child.
    """

    def __init__(self, *, code: str | None = None, module: str | None = None,
                 argv: list[str] | None = None, args: list[str] = (),
                 env: dict[str, str | None] | None = None, log_path: Path | None = None,
                 cwd: Path | None = None):
        if sum(x is not None for x in (code, module, argv)) != 1:
            raise ValueError("RosProcess: give exactly one of code=, module=, argv=")
        if code is not None:
            command = [sys.executable, "-u", "-c", code, *args]
        elif module is not None:
            command = [sys.executable, "-u", "-m", module, *args]
        else:
            command = list(argv)
        child_env = dict(os.environ)
        for key, value in (env or {}).items():
            if value is None:
                child_env.pop(key, None)
            else:
                child_env[key] = value
        if log_path is None:
            fd, name = tempfile.mkstemp(prefix="mirage_ros_proc_", suffix=".log")
            os.close(fd)
            log_path = Path(name)
        self.command = command
        self.log_path = Path(log_path)
        self._log = open(self.log_path, "wb")
        # own session: stop() signals the child and everything it started
        self.popen = subprocess.Popen(command, env=child_env, cwd=cwd, stdin=subprocess.DEVNULL,
                                      stdout=self._log, stderr=subprocess.STDOUT,
                                      start_new_session=True)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def output(self) -> str:
        """Everything the child wrote to stdout and stderr so far."""
        return self.log_path.read_text(errors="replace")

    def running(self) -> bool:
        return self.popen.poll() is None

    def wait_for_output(self, pattern: str, timeout: float = 20.0) -> re.Match:
        """Wait until a line of the child's output matches the regex ``pattern``.

        Raises AssertionError with the output so far if the child exits or ``timeout`` (s) passes.
        """
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            match = regex.search(self.output())
            if match:
                return match
            if not self.running():
                raise AssertionError(f"{self.command[:4]} exited with {self.popen.returncode} "
                                     f"before printing /{pattern}/; output:\n{self.output()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no /{pattern}/ from {self.command[:4]} within {timeout} s; "
                                     f"output:\n{self.output()}")
            time.sleep(0.05)

    def stop(self, timeout: float = 5.0) -> int:
        """SIGINT (what ros2 launch sends), then SIGKILL after ``timeout`` s; returns the exit code."""
        if self.running():
            try:
                os.killpg(self.popen.pid, signal.SIGINT)
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait()
            except ProcessLookupError:
                self.popen.wait()
        self._log.close()
        return self.popen.returncode


@pytest.fixture
def ros_process(tmp_path):
    """Factory: ``ros_process(code=... | module=... | argv=..., args=[], env={})`` starts a
    :class:`RosProcess` (log in the test's tmp_path) and stops it when the test ends."""
    started: list[RosProcess] = []

    def start(**kwargs) -> RosProcess:
        kwargs.setdefault("log_path", tmp_path / f"process_{len(started)}.log")
        process = RosProcess(**kwargs)
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()
