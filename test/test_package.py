"""The package as ROS tools see it: manifests, the installed layout, the ament index, test isolation."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MANIFESTS = [REPO / "package.xml", REPO / "msg" / "package.xml",
             REPO / "scripts" / "interfaces" / "tf2_msgs" / "package.xml"]
CONSOLE_SCRIPTS = {"mirage-ros", "sim_camera", "world_model", "consistency_monitor"}


def _parse(manifest: Path):
    from catkin_pkg.package import parse_package
    warnings: list[str] = []
    package = parse_package(str(manifest), warnings=warnings)
    return package, warnings


@pytest.mark.parametrize("manifest", MANIFESTS, ids=lambda p: str(p.relative_to(REPO)))
def test_manifest_parses_without_warnings(manifest):
    package, warnings = _parse(manifest)
    assert warnings == []
    assert package.package_format == 3
    package.validate()  # raises InvalidPackage on anything rosdep/bloom would reject


#: import name -> rosdep key of the Python libraries the code imports (rosdistro's rosdep/python.yaml)
PYTHON_KEYS = {"numpy": "python3-numpy", "scipy": "python3-scipy", "transforms3d": "python3-transforms3d",
               "yaml": "python3-yaml", "tqdm": "python3-tqdm", "matplotlib": "python3-matplotlib",
               "PIL": "python3-pil", "onnxruntime": "python3-onnxruntime-pip", "rosbags": "python3-rosbags-pip",
               "pytest": "python3-pytest", "hypothesis": "python3-hypothesis", "catkin_pkg": "python3-catkin-pkg",
               "torch": "python3-torch", "skimage": "python3-skimage"}
#: training and export only (requirements/train.txt), never imported by the nodes; onnx has no rosdep key
TRAINING_ONLY = {"torch", "onnx", "skimage"}


def _imported(*folders: str) -> set[str]:
    """Top-level names the Python files under ``folders`` import (not the standard library, not
    this package, not the test suite's own modules)."""
    import ast

    names = set()
    for folder in folders:
        for path in (REPO / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    names |= {alias.name.split(".")[0] for alias in node.names}
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names.add(node.module.split(".")[0])
    local = {"mirage_ros", "conftest", "helpers"} | {p.stem for p in (REPO / "test").glob("*.py")}
    return {n for n in names if n not in sys.stdlib_module_names and n not in local}


def test_manifest_declares_what_the_code_imports_and_nothing_else():
    """The dependency lists come from the imports: the package and its launch files need
    ``exec_depend``, what only the tests import needs ``test_depend`` (where rosdep knows it)."""
    package, _ = _parse(REPO / "package.xml")
    exec_depends = {d.name for d in package.exec_depends}
    test_depends = {d.name for d in package.test_depends}
    runtime = {PYTHON_KEYS.get(n, n) for n in _imported("mirage_ros", "launch") - TRAINING_ONLY}
    tests = {PYTHON_KEYS.get(n, n) for n in _imported("test") if n in PYTHON_KEYS or n not in TRAINING_ONLY}
    assert not runtime - exec_depends, f"package.xml lacks <exec_depend> {sorted(runtime - exec_depends)}"
    assert not tests - runtime - test_depends, f"package.xml lacks <test_depend> {sorted(tests - runtime - test_depends)}"
    ros_declared = {n for n in exec_depends if not n.startswith("python3-")}
    assert not ros_declared - runtime, f"<exec_depend> nothing imports: {sorted(ros_declared - runtime)}"
    assert package.name == "mirage_ros" and package.get_build_type() == "ament_python"


def test_versions_agree():
    import mirage_ros
    setup_version = re.search(r'version="([^"]+)"', (REPO / "setup.py").read_text()).group(1)
    manifest_version = _parse(REPO / "package.xml")[0].version
    assert setup_version == manifest_version == mirage_ros.__version__


def test_every_message_file_is_generated():
    """A .msg added to msg/msg/ but not to CMakeLists.txt would silently not exist."""
    listed = set(re.findall(r'"msg/(\w+\.msg)"', (REPO / "msg" / "CMakeLists.txt").read_text()))
    assert listed == {p.name for p in (REPO / "msg" / "msg").glob("*.msg")}


def _install_copy(tmp_path: Path) -> Path:
    """pip-install (not editable) a copy of the repo's sources into a fresh prefix; return it."""
    source, prefix = tmp_path / "src", tmp_path / "prefix"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build")
    source.mkdir()
    for name in ["setup.py", "setup.cfg", "package.xml"]:
        shutil.copy2(REPO / name, source / name)
    for name in ["resource", "requirements", "mirage_ros", "launch", "config"]:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, source / name, ignore=ignore)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--use-pep517", "--no-warn-script-location", "--ignore-installed", "--prefix", str(prefix), str(source)],
                   check=True, capture_output=True, cwd=tmp_path)
    return prefix


def test_install_layout_is_found_through_the_ament_index(tmp_path):
    """A plain pip install + scripts/link_dev_install.sh gives the layout of a colcon install."""
    prefix = _install_copy(tmp_path)
    subprocess.run([str(REPO / "scripts" / "link_dev_install.sh"), str(prefix)], check=True,
                   capture_output=True, env={**os.environ, "PATH": f"{prefix}/bin:{os.environ['PATH']}"})
    script = ("from ament_index_python.packages import get_package_share_directory, get_package_prefix\n"
              "print(get_package_share_directory('mirage_ros')); print(get_package_prefix('mirage_ros'))")
    found = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True,
                           env={**os.environ, "AMENT_PREFIX_PATH": str(prefix)}).stdout.split()
    share = prefix / "share" / "mirage_ros"
    assert found == [str(share), str(prefix)]
    assert (share / "package.xml").read_text() == (REPO / "package.xml").read_text()
    for pattern in ["launch/*.launch.py", "config/*.yaml", "config/*.rviz"]:
        for source in REPO.glob(pattern):
            installed = share / source.relative_to(REPO)
            assert installed.read_bytes() == source.read_bytes(), f"{installed} not installed"
    for name in CONSOLE_SCRIPTS:  # where ros2 run / ros2 launch look for executables
        executable = prefix / "lib" / "mirage_ros" / name
        assert executable.resolve() == (prefix / "bin" / name).resolve() and os.access(executable, os.X_OK)
    weights = [p for p in (REPO / "mirage_ros" / "weights").rglob("*") if p.suffix in (".onnx", ".json")]
    site = next(prefix.glob("lib/python3*/site-packages"))
    assert any(p.parent.name == "light" for p in weights)
    for path in weights:  # the networks (both variants) travel as package data
        assert (site / path.relative_to(REPO)).is_file(), path


def test_dev_install_is_in_the_ament_index():
    """``make setup`` made this venv an ament prefix whose share/mirage_ros is the working tree."""
    from ament_index_python.packages import get_package_share_directory
    share = Path(get_package_share_directory("mirage_ros"))
    if not share.is_relative_to(sys.prefix):
        pytest.skip(f"mirage_ros is installed in {share.parents[1]} (a colcon workspace), not by make setup")
    assert (share / "package.xml").resolve() == (REPO / "package.xml").resolve()
    for pattern in ["launch/*.launch.py", "config/*.yaml", "config/*.rviz"]:
        for source in REPO.glob(pattern):
            installed = share / source.relative_to(REPO)
            assert installed.resolve() == source.resolve(), f"{installed} missing: re-run make setup"
    for folder in ["launch", "config"]:  # ros2 launch searches share/ with os.walk: no linked folders
        assert not (share / folder).is_symlink()
    lib = Path(sys.prefix) / "lib" / "mirage_ros"
    assert {p.name for p in lib.iterdir() if os.access(p, os.X_OK)} >= CONSOLE_SCRIPTS


def test_session_is_isolated_from_other_ros_graphs():
    domain = int(os.environ["ROS_DOMAIN_ID"])
    assert 1 <= domain <= 101
    assert os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "LOCALHOST"


def test_child_processes_join_the_session_graph(ros_process):
    child = ros_process(code="import os; print('DOMAIN', os.environ['ROS_DOMAIN_ID'], "
                             "os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'])")
    match = child.wait_for_output(r"DOMAIN (\d+) (\w+)", timeout=30)
    assert match.groups() == (os.environ["ROS_DOMAIN_ID"], "LOCALHOST")


def test_runtime_imports_neither_torch_nor_onnx():
    """Nodes and the CLI's run-time paths need ONNX Runtime only: requirements/runtime.txt and
    package.xml name neither torch nor the onnx package (those are for training and graph builds)."""
    modules = ["mirage_ros.pipeline", "mirage_ros.memory", "mirage_ros.dynamics", "mirage_ros.ros.world_model",
               "mirage_ros.ros.consistency_monitor", "mirage_ros.evaluation.methods"]
    code = (f"import importlib, sys\nfor m in {modules!r}: importlib.import_module(m)\n"
            "print(sorted(m for m in ('torch', 'onnx') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == "[]"
