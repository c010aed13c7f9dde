"""Scene families: ``corridor`` (a ring corridor with side rooms), ``office`` (an open-plan floor
with meeting rooms) and ``warehouse`` (a tall hall with racks and aisles).

``make_scene(family, seed)`` is deterministic: the same (family, seed) gives the same scene on
every machine; any non-negative integer seed gives a new layout, palette and furniture.
"""

from __future__ import annotations

import numpy as np

from mirage_ros.errors import InvalidInput
from mirage_ros.sim import furniture as fu
from mirage_ros.sim.plan import Plan
from mirage_ros.sim.scene import Scene


def _pick(rng, options):
    return options[int(rng.integers(len(options)))]


def _split(rng, start: float, end: float, lo: float = 3.0, hi: float = 6.0) -> list[tuple[float, float]]:
    """Cut ``[start, end]`` into pieces of ``lo..hi`` metres on the 0.5 m grid."""
    cuts, x = [], start
    while end - x > hi:
        step = 0.5 * int(rng.integers(int(lo * 2), int(hi * 2) + 1))
        step = min(step, end - x - lo) if end - x - step < lo else step
        cuts.append((x, x + step))
        x += step
    cuts.append((x, end))
    return cuts


def _room(plan: Plan, m, rng, rect, light_range=(0.25, 0.8)) -> int:
    rid = plan.region(rect, _pick(rng, m["walls"]), _pick(rng, m["floors"][:3]), m["ceiling"], 0.04)
    x0, y0, x1, y1 = rect
    plan.light((x0 + x1) / 2, (y0 + y1) / 2, float(rng.uniform(*light_range)))
    return rid


def _door_into(
    plan: Plan, m, rng, rid: int, x: float, y: float, axis: str, inward: tuple[float, float], closed: bool
) -> list[int] | None:
    """A door at ``(x, y)`` into room ``rid``; returns nav nodes [outside, inside, centre] if open."""
    plan.door(x, y, axis, 1.0, rid, closed, m["door"], m["frame"])
    if closed:
        return None
    x0, y0, x1, y1 = plan.regions[rid].rect
    outside = plan.node(x - inward[0] * 1.0, y - inward[1] * 1.0)
    inside = plan.node(x + inward[0] * 1.0, y + inward[1] * 1.0)
    centre = plan.node((x0 + x1) / 2, (y0 + y1) / 2)
    plan.edge(outside, inside)
    plan.edge(inside, centre)
    return [outside, inside, centre]


def _chain(plan: Plan, nodes: list[int], clearance: float = 0.45) -> None:
    for a, b in zip(nodes, nodes[1:]):
        plan.edge(a, b, clearance)


def _route(plan: Plan, ids: list[int]) -> np.ndarray:
    return np.asarray([plan.nodes[i] for i in ids], np.float64)


def corridor(seed: int) -> Scene:
    """A rectangular ring corridor; rooms with doors outside and inside the ring."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 1]))
    cw = _pick(rng, [2.0, 2.5])
    ix, iy = 0.5 * int(rng.integers(24, 37)), 0.5 * int(rng.integers(10, 15))
    ds, dn = 0.5 * int(rng.integers(7, 10)), 0.5 * int(rng.integers(7, 10))
    ys, yn = 0.5 + ds, 0.5 + ds + cw + iy  # south edges of the south / north corridors
    xe = 0.5 + cw + ix  # west edge of the east corridor
    plan = Plan("corridor", seed, (1.0 + 2 * cw + ix, 1.0 + ds + 2 * cw + iy + dn), float(rng.uniform(2.6, 3.0)), rng)
    m = fu.materials(plan, rng)
    hall = plan.region(
        [
            (0.5, ys, xe + cw, ys + cw),
            (0.5, yn, xe + cw, yn + cw),
            (0.5, ys, 0.5 + cw, yn + cw),
            (xe, ys, xe + cw, yn + cw),
        ],
        _pick(rng, m["walls"]),
        _pick(rng, m["floors"][2:]),
        m["ceiling"],
        0.05,
    )
    ysc, ync, xwc, xec = ys + cw / 2, yn + cw / 2, 0.5 + cw / 2, xe + cw / 2
    south, north = [], []  # (corridor x, node in front of a door), per corridor side
    rooms = []
    for a, b in _split(rng, 0.5, xe + cw):
        rooms.append((_room(plan, m, rng, (a, 0.5, b, ys)), (a + b) / 2, ys, (0.0, -1.0), south))
        rooms.append((_room(plan, m, rng, (a, yn + cw, b, yn + cw + dn)), (a + b) / 2, yn + cw, (0.0, 1.0), north))
    for a, b in _split(rng, 0.5 + cw, xe):
        side = int(rng.integers(2))
        rid = _room(plan, m, rng, (a, ys + cw, b, yn))
        rooms.append((rid, (a + b) / 2, (ys + cw, yn)[side], ((0.0, 1.0), (0.0, -1.0))[side], (south, north)[side]))
    open_rooms = []
    for rid, xm, y, inward, side in rooms:
        x0, _, x1, _ = plan.regions[rid].rect
        if x1 - x0 < 2.5:
            continue
        x = 0.5 * round(2 * float(np.clip(xm + rng.uniform(-1.0, 1.0), x0 + 1.0, x1 - 1.0)))
        closed = bool(rng.random() < 0.3) or not xwc + 0.6 < x < xec - 0.6
        nodes = _door_into(plan, m, rng, rid, x, y, "x", inward, closed)
        if nodes:
            plan.nodes[nodes[0]] = (x, ysc if side is south else ync)
            side.append((x, nodes[0]))
            open_rooms.append(nodes)
    sw, se, ne, nw = plan.node(xwc, ysc), plan.node(xec, ysc), plan.node(xec, ync), plan.node(xwc, ync)
    start = plan.node(xwc + (xec - xwc) / 3, ysc)
    south.append((plan.nodes[start][0], start))
    s_ids = [n for _, n in sorted(south)]
    n_ids = [n for _, n in sorted(north, reverse=True)]
    ring = [sw, *s_ids, se, ne, *n_ids, nw, sw]
    _chain(plan, ring)
    for x in np.arange(xwc + 1.5, xec, 3.0):
        plan.light(float(x), ysc, float(rng.uniform(0.5, 0.8)))
        plan.light(float(x), ync, float(rng.uniform(0.5, 0.8)))
    for y in np.arange(ysc + 3.0, ync - 1.0, 3.0):
        plan.light(xwc, float(y), 0.6)
        plan.light(xec, float(y), 0.6)
    fu.along_walls(plan, m, hall, rng, ["poster", "poster", "bench", "plant", "cabinet"], tries=30)
    for rid, *_ in rooms:
        fu.furnish_room(plan, m, rid, rng)
    # loop: from `start` round the ring, with a detour into one open room
    k = ring.index(start)
    cycle = ring[k:-1] + ring[:k]
    detour = next((n for n in open_rooms if n[0] in cycle), None)
    if detour:
        at = cycle.index(detour[0]) + 1
        cycle[at:at] = [detour[1], detour[2], detour[1], detour[0]]
    plan.routes["loop"] = _route(plan, cycle + [start])
    plan.routes["forward"] = _route(plan, [sw, se])
    plan.routes["static"] = np.array([[xwc + 1.0, ysc], [xec, ysc]])
    return plan.build()


def office(seed: int) -> Scene:
    """An open-plan office: desk islands, pillars, meeting rooms along the north wall."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 2]))
    w, d = 0.5 * int(rng.integers(28, 41)), 0.5 * int(rng.integers(20, 27))
    md = 0.5 * int(rng.integers(7, 9))
    plan = Plan("office", seed, (w + 1.0, d + md + 1.0), float(rng.uniform(2.8, 3.2)), rng)
    m = fu.materials(plan, rng)
    hall = plan.region(
        (0.5, 0.5, 0.5 + w, 0.5 + d), _pick(rng, m["walls"][:2]), _pick(rng, m["floors"][:3]), m["ceiling"], 0.06
    )
    x0, y0, x1, y1 = 2.0, 2.0, w - 1.0, d - 1.0  # the loop aisle
    c = [plan.node(x0, y0), plan.node(x1, y0), plan.node(x1, y1), plan.node(x0, y1)]
    mid_s, mid_n = plan.node((x0 + x1) / 2, y0), plan.node((x0 + x1) / 2, y1)
    top = []
    for a, b in _split(rng, 0.5, 0.5 + w, 3.5, 6.0):
        rid = _room(plan, m, rng, (a, 0.5 + d, b, 0.5 + d + md))
        x = 0.5 * round(a + b)
        closed = bool(rng.random() < 0.25) or not x0 + 0.5 < x < x1 - 0.5  # open doors face the aisle
        nodes = _door_into(plan, m, rng, rid, x, 0.5 + d, "x", (0.0, 1.0), closed)
        if nodes:
            plan.nodes[nodes[0]] = (x, y1)
            top.append(nodes)
    top.sort(key=lambda n: -plan.nodes[n[0]][0])
    ring = [c[0], mid_s, c[1], c[2], *[n[0] for n in top], mid_n, c[3], c[0]]
    ring = list(dict.fromkeys(ring[:-1])) + [c[0]]
    _chain(plan, ring, 0.6)
    _chain(plan, [mid_s, mid_n], 0.6)
    for x in np.arange(2.0, w, 3.0):
        for y in np.arange(2.0, d, 3.0):
            plan.light(float(x), float(y), float(rng.uniform(0.35, 0.6)))
    for px in np.arange(x0 + 4.0, x1 - 1.0, 6.0):
        for py in (y0 + (y1 - y0) / 3, y0 + 2 * (y1 - y0) / 3):
            if plan.claim((px, py), (0.2, 0.2), 0.0):
                fu.pillar(plan, m, (px, py))
    for y in np.arange(y0 + 1.6, y1 - 1.0, 2.6):
        for x in np.arange(x0 + 1.4, x1 - 1.0, 1.5):
            if rng.random() < 0.85 and fu.desk(plan, m, (x, y), 0.0):
                fu.chair(plan, m, (x, y - 0.65), 0.0)
    fu.along_walls(plan, m, hall, rng, ["shelf", "cabinet", "plant", "poster", "poster"], tries=40)
    for n in top:
        fu.furnish_room(plan, m, int(plan.cells[int(plan.nodes[n[2]][0] / 0.5), int(plan.nodes[n[2]][1] / 0.5)]), rng)
    cycle = ring[:-1]
    if top:
        at = cycle.index(top[0][0]) + 1
        cycle[at:at] = [top[0][1], top[0][2], top[0][1], top[0][0]]
    plan.routes["loop"] = _route(plan, cycle + [c[0]])
    plan.routes["forward"] = _route(plan, [c[0], c[1]])
    plan.routes["static"] = np.array([[x0, y0], [x1, y0]])
    return plan.build()


def warehouse(seed: int) -> Scene:
    """A tall hall with parallel racks, cross aisles, pallets and a small office."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 3]))
    w, d = 0.5 * int(rng.integers(48, 61)), 0.5 * int(rng.integers(42, 53))
    plan = Plan("warehouse", seed, (w + 1.0, d + 1.0), float(rng.uniform(5.5, 7.0)), rng)
    plan.ambient = 0.3
    m = fu.materials(plan, rng)
    hall = plan.region(
        (0.5, 0.5, 0.5 + w, 0.5 + d), _pick(rng, [m["walls"][2], m["walls"][0]]), m["floors"][4], m["ceiling"], 0.05
    )
    office_rect = (0.5 + w - 5.0, 0.5 + d - 4.0, 0.5 + w, 0.5 + d)
    aisle = float(rng.uniform(2.6, 3.0))
    pitch = aisle + 1.0
    xa, xb = 4.0, w - 6.0  # rack rows run between the west and east cross aisles
    ys = np.arange(2.0 + pitch, d - 5.0, pitch)  # aisle centre lines, racks on both sides
    gap = (xa + xb) / 2 + float(rng.uniform(-2, 2))  # a middle cross aisle
    nodes_w = [plan.node(xa - 1.5, y) for y in ys]
    nodes_e = [plan.node(xb + 1.5, y) for y in ys]
    for k in range(len(ys)):
        _chain(plan, [nodes_w[k], nodes_e[k]], 0.6)
    _chain(plan, nodes_w, 0.6)
    _chain(plan, nodes_e, 0.6)
    for y in np.append(ys - pitch / 2, ys[-1] + pitch / 2):
        rack_h = float(rng.uniform(2.4, 4.0))
        for a, b in ((xa, gap - 1.5), (gap + 1.5, xb)):
            if b - a > 1.0 and plan.claim(((a + b) / 2, y), ((b - a) / 2, 0.5), 0.0, margin=0.0):
                plan.box(((a + b) / 2, y), ((b - a) / 2, 0.5), 0.0, 0.0, rack_h, m["metal"], front=m["cardboard"])
    for x in np.arange(3.0, w, 4.0):
        for y in np.arange(3.0, d, 4.0):
            plan.light(float(x), float(y), float(rng.uniform(0.6, 0.9)))
    rid = _room(plan, m, rng, office_rect)
    door = _door_into(plan, m, rng, rid, office_rect[0], office_rect[1] + 2.0, "y", (1.0, 0.0), False)
    plan.edge(nodes_e[-1], door[0])  # people walk between the aisles and the office
    fu.furnish_room(plan, m, rid, rng)
    for x in np.arange(6.0, w - 8.0, 7.0):  # dock doors on the south wall, closed
        plan.door(float(x), 0.5, "x", 3.0, hall, True, m["metal"], m["frame"])
    for _ in range(25):  # pallets with boxes in free floor space
        px, py = rng.uniform(1.5, w - 1.0), rng.uniform(1.5, d - 1.0)
        if plan.claim((px, py), (0.6, 0.5), 0.0):
            plan.box((px, py), (0.6, 0.5), 0.0, 0.0, float(rng.uniform(0.15, 1.4)), m["wood"], front=m["cardboard"])
    fu.along_walls(plan, m, hall, rng, ["shelf", "cabinet", "poster"], tries=20)
    n = len(ys) - 1
    plan.routes["loop"] = _route(plan, [nodes_w[0], nodes_e[0], nodes_e[n], nodes_w[n], nodes_w[0]])
    plan.routes["forward"] = _route(plan, [nodes_w[0], nodes_e[0]])
    plan.routes["static"] = np.array([plan.nodes[nodes_w[n // 2]], plan.nodes[nodes_e[n // 2]]])
    return plan.build()


FAMILIES = {"corridor": corridor, "office": office, "warehouse": warehouse}


def make_scene(family: str, seed: int) -> Scene:
    """Build scene ``family`` (one of :data:`FAMILIES`) for ``seed`` (int >= 0)."""
    if family not in FAMILIES:
        raise InvalidInput("scene", f"unknown scene {family!r}; choose one of {sorted(FAMILIES)}")
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise InvalidInput("seed", f"must be an integer >= 0, got {seed!r}")
    return FAMILIES[family](int(seed))


__all__ = ["FAMILIES", "make_scene"]
