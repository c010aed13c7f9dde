"""Node parameters declared from one table: descriptor text, ranges, choices and defaults.

Each node lists its :class:`Param` entries once; :func:`declare` declares them with
``ParameterDescriptor`` (description, numeric range, read-only), reads the values (from
``--params-file config/<node>.yaml`` or launch overrides), validates choices and element ranges of
arrays, and returns them as attributes. Out-of-range values stop the node at start with an error
naming the parameter. ``docs/nodes.md`` and ``config/*.yaml`` are written from the tables
(:mod:`mirage_ros.ros.param_docs`; a test checks they are current).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from mirage_ros.errors import InvalidInput


@dataclass(frozen=True)
class Param:
    """One node parameter.

    Attributes:
        name: parameter name.
        default: default value; its type is the parameter's type (``float``, ``int``, ``bool``,
            ``str``, ``list[float]``, ``list[str]``).
        description: one line for ``ros2 param describe`` and the docs.
        range: inclusive ``(low, high)`` for numbers and for every element of a number list.
        choices: allowed values of a string.
    """

    name: str
    default: Any
    description: str
    range: tuple[float, float] | None = None
    choices: tuple[str, ...] | None = None


def _descriptor(param: Param):
    from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor

    text = param.description
    if param.choices:
        text += f" (one of: {', '.join(param.choices)})"
    descriptor = ParameterDescriptor(description=text, read_only=True)
    if param.range is not None and not isinstance(param.default, list):
        low, high = param.range
        if isinstance(param.default, int) and not isinstance(param.default, bool):
            descriptor.integer_range = [IntegerRange(from_value=int(low), to_value=int(high), step=1)]
        else:
            descriptor.floating_point_range = [FloatingPointRange(from_value=float(low), to_value=float(high))]
    return descriptor


def check(param: Param, value: Any) -> Any:
    """``value`` if it satisfies ``param``'s choices and ranges, else :class:`InvalidInput`."""
    if param.choices and value not in param.choices:
        raise InvalidInput(param.name, f"must be one of {', '.join(param.choices)}, got {value!r}")
    if param.range is not None:
        low, high = param.range
        for v in value if isinstance(value, (list, tuple)) else [value]:
            if not low <= v <= high:
                raise InvalidInput(param.name, f"{v} is outside [{low}, {high}]")
    return value


def declare(node, params: list[Param]) -> SimpleNamespace:
    """Declare ``params`` on ``node``; returns their validated values as attributes."""
    values = {}
    for param in params:
        default = param.default
        if isinstance(default, list) and not default:
            raise InvalidInput(param.name, "list defaults must be non-empty (ROS needs the type)")
        value = node.declare_parameter(param.name, default, _descriptor(param)).value
        if isinstance(default, list):
            value = list(value)
        values[param.name] = check(param, value)
    return SimpleNamespace(**values)


def defaults(params: list[Param]) -> dict[str, Any]:
    """``{name: default}`` of a parameter table (the content of ``config/<node>.yaml``)."""
    return {p.name: p.default for p in params}
