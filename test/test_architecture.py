"""The package's import graph, read from the source (every import, lazy ones included): no loops,
no import of a higher layer, nodes never reach build-time code; and no test module imports another (what they share is in
``test/helpers/``)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "mirage_ros"

# docs/architecture.md's layers, lowest first: a package imports only its own modules and those of
# lower layers
LAYERS = (
    ("errors", "graphs"),
    ("geometry",),
    ("transforms",),
    ("runtime", "messages", "sim", "dynamics"),
    ("memory",),
    ("pipeline",),
    ("evaluation", "memory_maths"),
    ("ros", "model"),
    ("demo",),
    ("bench", "cli"),
)


def import_graph() -> dict[str, set[str]]:
    """``{module: modules of this package it imports}``; a module importing its own package's
    ``__init__`` is not an edge (Python runs the package first anyway)."""
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1]
                                    + ([node.module] if node.module else []))
                targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
            else:
                continue
            for target in targets:
                while target and target not in modules:
                    target = target.rsplit(".", 1)[0] if "." in target else ""
                if target and target != name and not name.startswith(target + "."):
                    graph[name].add(target)
    return graph


def reachable(graph: dict[str, set[str]], roots) -> set[str]:
    """Every module that ``roots`` import, directly or through others."""
    reached, todo = set(), list(roots)
    while todo:
        for target in graph[todo.pop()] - reached:
            reached.add(target)
            todo.append(target)
    return reached


def loops(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index, low, on_stack, stack, found, counter = {}, {}, set(), [], [], 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_import_graph_has_no_loops():
    graph = import_graph()
    assert len(graph) > 50 and "mirage_ros.pipeline" in graph["mirage_ros.ros.world_model"]  # lazy imports count
    assert loops(graph) == []


def test_no_package_imports_a_higher_layer():
    level = {name: depth for depth, names in enumerate(LAYERS) for name in names}
    graph = import_graph()
    top = {m.split(".")[1] for m in graph if m.count(".") >= 1}
    assert top <= set(level), f"packages without a layer: {sorted(top - set(level))}"
    upward = sorted(f"{a} -> {b}" for a, targets in graph.items() for b in targets
                    if a != "mirage_ros" and b != "mirage_ros" and a.split(".")[1] != b.split(".")[1]
                    and level[a.split(".")[1]] <= level[b.split(".")[1]])
    assert upward == []


def test_loops_are_found():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert loops(graph) == [["a", "b", "c"]]


def test_no_test_module_imports_another():
    tests = PACKAGE.parent / "test"
    found = []
    for path in tests.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
            found += [f"{path.relative_to(tests)} imports {n}" for n in names if n.split(".")[0].startswith("test_")]
    assert found == []


def test_nodes_never_reach_build_time_code():
    """What the nodes import, lazily too, never reaches training (``model``) or the maths the graphs
    are recorded from (``memory_maths``): nodes need only onnxruntime and the shipped files."""
    graph = import_graph()
    nodes = [m for m in graph if m.startswith("mirage_ros.ros.") and m.rsplit(".", 1)[1] in
             ("world_model", "consistency_monitor", "sim_camera")]
    assert len(nodes) == 3
    reached = reachable(graph, nodes)
    assert "mirage_ros.memory.latent_memory" in reached
    assert sorted(m for m in reached if m.startswith(("mirage_ros.model", "mirage_ros.memory_maths"))) == []


def test_evaluation_and_message_adapters_reach_no_node_code():
    """Evaluation (bag / TUM replay) and the message adapters import nothing of ``mirage_ros.ros``
    (the nodes and rclpy-bound helpers): replaying a bag needs no ROS install."""
    graph = import_graph()
    for root in [m for m in graph if m.startswith(("mirage_ros.evaluation", "mirage_ros.messages"))]:
        assert not [m for m in reachable(graph, [root]) if m.startswith("mirage_ros.ros")], root
