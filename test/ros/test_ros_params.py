"""Node parameter tables: config files, docs and the nodes agree; bad values stop a node, named."""

import re
from pathlib import Path

import pytest
import yaml

from mirage_ros.ros.params import Param, check

ROOT = Path(__file__).resolve().parents[2]


def _tables():
    from mirage_ros.ros import consistency_monitor, world_model

    return {"world_model": world_model.PARAMS, "consistency_monitor": consistency_monitor.PARAMS}


@pytest.mark.usefixtures("interfaces")
def test_config_files_and_docs_tables_are_written_from_the_param_tables():
    from mirage_ros.ros import param_docs

    stale = [str(path.relative_to(ROOT)) for path, text in param_docs.expected_files(ROOT).items()
             if path.read_text() != text]
    assert not stale, f"{stale} out of date: run python -m mirage_ros.ros.param_docs"


@pytest.mark.usefixtures("interfaces")
@pytest.mark.parametrize("node", ["world_model", "consistency_monitor"])
def test_config_file_and_docs_read_back_as_every_default(node):
    params = _tables()[node]
    config = yaml.safe_load((ROOT / "config" / f"{node}.yaml").read_text())
    values = config[f"/**/{node}"]["ros__parameters"]
    defaults = {p.name: p.default for p in params}
    differ = {k: (values.get(k), defaults.get(k)) for k in set(values) | set(defaults) if values.get(k) != defaults.get(k)}
    assert not differ, f"config/{node}.yaml (file, node default) differ: {differ}"
    docs = (ROOT / "docs" / "nodes.md").read_text()
    table = docs[docs.index(f"#### {node} parameters"):]
    rows = {m.group(1): m.group(2) for m in re.finditer(r"^\| `(\w+)` \| `([^`]*)` \|", table, re.M)}
    documented = {name: "" if text == "''" else yaml.safe_load(text) for name, text in rows.items()}
    wrong = {p.name: (rows.get(p.name), p.default) for p in params if documented.get(p.name) != p.default}
    assert not wrong, f"docs/nodes.md (documented, node default) differ: {wrong}"


@pytest.mark.usefixtures("interfaces")
def test_every_string_choice_stays_a_string_through_yaml():
    """ROS parameter files, ``-p name:=value`` and launch arguments are read as YAML, where
    on / off / yes / no are booleans: such a choice could never be set."""
    booleans = {f"{node}.{p.name}": choice for node, params in _tables().items() for p in params
                for choice in p.choices or () if yaml.safe_load(choice) != choice}
    assert not booleans, f"choices YAML does not read as strings: {booleans}"


def test_check_names_the_parameter():
    with pytest.raises(ValueError, match="provider"):
        check(Param("provider", "auto", "", choices=("auto", "cpu")), "tpu")
    with pytest.raises(ValueError, match="horizons: 99"):
        check(Param("horizons", [0.5], "", range=(0.0, 30.0)), [1.0, 99.0])
    assert check(Param("horizons", [0.5], "", range=(0.0, 30.0)), [0.0, 30.0]) == [0.0, 30.0]


@pytest.mark.usefixtures("interfaces")
def test_out_of_range_parameter_stops_the_node_naming_it(ros_process):
    node = ros_process(module="mirage_ros.ros.consistency_monitor", args=["--ros-args", "-p", "score_low:=2.0"])
    node.wait_for_output(r"error: .*score_low", timeout=30)
    assert node.popen.wait(10) == 2
