"""Start the package's nodes as separate processes without ``ros2 launch`` (demo, benchmark).

``ros2 launch`` needs launch/launch_ros installed; the demo must run on a fresh machine with only
rclpy. :class:`NodeProcess` runs ``python -m mirage_ros.ros.<node> --ros-args ...`` with a
parameter file, overrides and remappings, logs to a file, and stops with SIGINT (as ``ros2
launch`` does) then SIGKILL.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from mirage_ros.errors import InvalidInput
from mirage_ros.ros.dds import large_message_env


def config_file(name: str) -> Path:
    """``config/<name>`` of the installed package (ament share), else of the source tree."""
    try:
        from ament_index_python.packages import PackageNotFoundError, get_package_share_directory

        path = Path(get_package_share_directory("mirage_ros")) / "config" / name
        if path.is_file():
            return path
    except (ImportError, LookupError, OSError, PackageNotFoundError):
        pass
    path = Path(__file__).resolve().parents[2] / "config" / name
    if not path.is_file():
        raise InvalidInput("config", f"{name} not found in the installed package nor at {path}")
    return path


def ros_environment(domain_id: int | None = None) -> dict[str, str]:
    """Environment for an isolated run: a ROS domain (given, ``$ROS_DOMAIN_ID``, or random in
    1..101), discovery on this host only unless set otherwise, the large-message DDS profile."""
    env = dict(os.environ)
    if domain_id is None:
        domain_id = int(env["ROS_DOMAIN_ID"]) if env.get("ROS_DOMAIN_ID") else random.randint(1, 101)
    if not 0 <= domain_id <= 232:
        raise InvalidInput("--domain-id", f"must be in 0..232, got {domain_id}")
    env["ROS_DOMAIN_ID"] = str(domain_id)
    env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    env.update(large_message_env(env))
    return env


def _value(value) -> str:
    """A ``-p name:=value`` value: YAML, so strings go as they are except the empty one."""
    if isinstance(value, str):
        return value or '""'
    return json.dumps(value)


class NodeProcess:
    """One node of the package in its own process.

    Args:
        node: module name under ``mirage_ros.ros`` (``"world_model"``).
        env: process environment (see :func:`ros_environment`).
        log_path: file receiving stdout and stderr.
        namespace: node namespace.
        params_file: a ``--params-file``, or ``None``.
        params: parameter overrides.
        remap: ``{from: to}`` topic remappings.
    """

    def __init__(self, node: str, env: dict[str, str], log_path: Path, namespace: str = "/",
                 params_file: Path | None = None, params: dict | None = None, remap: dict | None = None):
        args = [sys.executable, "-u", "-m", f"mirage_ros.ros.{node}", "--ros-args", "-r", f"__ns:={namespace}"]
        if params_file is not None:
            args += ["--params-file", str(params_file)]
        for name, value in (params or {}).items():
            args += ["-p", f"{name}:={_value(value)}"]
        for source, target in (remap or {}).items():
            args += ["-r", f"{source}:={target}"]
        self.name = node
        self.log_path = Path(log_path)
        self._log = open(self.log_path, "wb")
        self.popen = subprocess.Popen(args, env=env, stdin=subprocess.DEVNULL, stdout=self._log,
                                      stderr=subprocess.STDOUT, start_new_session=True)

    def output(self) -> str:
        """What the node printed so far."""
        return self.log_path.read_text(errors="replace")

    def running(self) -> bool:
        return self.popen.poll() is None

    def wait_for(self, text: str, timeout: float) -> bool:
        """True once ``text`` appears in the output; False if the process exits or time runs out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.output():
                return True
            if not self.running():
                return False
            time.sleep(0.05)
        return False

    def stop(self, timeout: float = 5.0) -> int:
        """SIGINT, then SIGKILL after ``timeout`` s; returns the exit code."""
        if self.running():
            os.killpg(self.popen.pid, signal.SIGINT)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait()
        self._log.close()
        return self.popen.returncode
