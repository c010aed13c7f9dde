"""Build script of the ``mirage_ros`` ament_python package (colcon, pip and ``pip install -e``).

Dependencies: ``install_requires`` stays ROS-style (setuptools only), because colcon-generated
launchers on older setuptools refuse to start when any listed distribution is missing or was
replaced (onnxruntime by onnxruntime-gpu). On a ROS machine rosdep installs the dependencies
(package.xml); elsewhere pip does, from ``requirements/*.txt``, which are also offered as extras:
``pip install -e .[cpu,test]`` (CPU), ``.[gpu]`` (CUDA), ``.[train]`` (torch, training/export).
"""

from glob import glob
from pathlib import Path

from setuptools import find_packages, setup

PACKAGE = "mirage_ros"
HERE = Path(__file__).resolve().parent


def requirements(name: str) -> list[str]:
    """Requirement lines of ``requirements/<name>.txt``, following ``-r`` includes."""
    lines = []
    for raw in (HERE / "requirements" / f"{name}.txt").read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line.startswith("-r "):
            lines += requirements(Path(line[3:].strip()).stem)
        elif line:
            lines.append(line)
    return lines


def share(pattern: str) -> list[str]:
    """Files matching ``pattern`` (relative to the repo root), sorted; globbed at build time so
    launch and config files added later are installed without editing this file."""
    return sorted(str(Path(p).relative_to(HERE)) for p in glob(str(HERE / pattern)))


data_files = [
    ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
    (f"share/{PACKAGE}", ["package.xml"]),
]
for folder, pattern in [("launch", "launch/*.launch.py"),
                        ("config", "config/*.yaml"),
                        ("config", "config/*.rviz")]:
    files = share(pattern)
    if files:
        data_files.append((f"share/{PACKAGE}/{folder}", files))

setup(
    name=PACKAGE,
    version="0.1.0",
    description="Latent spatial memory world model for ROS 2: predicted views and moving-object flags",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=[PACKAGE, f"{PACKAGE}.*"]),
    package_data={PACKAGE: ["weights/*.onnx", "weights/*.json", "weights/light/*.onnx", "weights/light/*.json",
                            "graphs/*.onnx"]},
    data_files=data_files,
    zip_safe=False,
    install_requires=["setuptools"],
    extras_require={
        "cpu": requirements("cpu"),
        "gpu": requirements("gpu"),
        "train": requirements("train"),
        "test": requirements("test"),
    },
    entry_points={
        "console_scripts": [
            "mirage-ros = mirage_ros.cli:main",
            "sim_camera = mirage_ros.ros.sim_camera:main",
            "world_model = mirage_ros.ros.world_model:main",
            "consistency_monitor = mirage_ros.ros.consistency_monitor:main",
        ],
    },
)
