"""Furniture made of prisms, and the materials a scene dresses itself with.

Every piece is placed through :meth:`Plan.claim` / :meth:`Plan.against_wall`, so nothing
overlaps another piece or blocks a navigation edge. Sizes are real-world metres.
"""

from __future__ import annotations

import math

import numpy as np

from mirage_ros.sim import textures as tx
from mirage_ros.sim.plan import Plan

WALL_COLOURS = [(225, 220, 205), (200, 215, 225), (230, 205, 180), (185, 200, 175), (215, 215, 215), (240, 230, 200)]
WOODS = [(150, 100, 60), (185, 140, 90), (120, 80, 50), (205, 170, 120)]


def materials(plan: Plan, rng: np.random.Generator) -> dict[str, int | list[int]]:
    """The material ids a scene draws from: walls, floors, furniture, posters, clothing."""
    a = plan.atlas
    pick = lambda options: options[int(rng.integers(len(options)))]  # noqa: E731
    m: dict[str, int | list[int]] = {}
    m["walls"] = [
        a.add("plaster", tx.plaster, pick(WALL_COLOURS), (2.0, 2.0)),
        a.add("plaster2", tx.plaster, pick(WALL_COLOURS), (2.0, 2.0)),
        a.add("brick", tx.brick, pick([(150, 70, 50), (170, 95, 65), (120, 60, 45)]), (0.9, 0.6)),
        a.add("wallpaper", tx.stripes, pick(WALL_COLOURS), (0.8, 0.8)),
        a.add("wall_tiles", tx.tiles, (220, 225, 225), (0.6, 0.6)),
    ]
    m["floors"] = [
        a.add("wood_floor", tx.wood, pick(WOODS), (1.2, 1.2)),
        a.add("carpet", tx.carpet, pick([(90, 90, 110), (120, 70, 60), (70, 95, 80)]), (1.0, 1.0)),
        a.add("floor_tiles", tx.tiles, pick([(200, 195, 185), (160, 160, 165)]), (1.2, 1.2)),
        a.add("checker", lambda r, b: tx.tiles(r, b, checker=True), (215, 210, 200), (1.6, 1.6)),
        a.add("concrete", tx.concrete, (150, 150, 145), (3.0, 3.0)),
    ]
    m["ceiling"] = a.add("ceiling_tiles", tx.ceiling_tiles, (235, 235, 230), (1.2, 1.2))
    m["door"] = a.add("door", tx.wood, pick(WOODS), (0.9, 2.1))
    m["frame"] = a.add("frame", tx.metal, pick([(235, 235, 235), (90, 90, 95), (160, 120, 80)]), (1.0, 1.0))
    m["wood"] = a.add("wood", tx.wood, pick(WOODS), (1.0, 1.0))
    m["metal"] = a.add("metal", tx.metal, (120, 122, 128), (1.0, 1.0))
    m["books"] = a.add("books", tx.books, None, (1.0, 1.8))
    m["cabinet"] = a.add("cabinet", tx.cabinet, pick([(200, 200, 195), (150, 110, 70), (90, 110, 140)]), (0.8, 1.0))
    m["fabric"] = a.add("fabric", tx.carpet, pick([(60, 70, 120), (130, 40, 40), (60, 60, 60)]), (0.5, 0.5))
    m["screen"] = a.add("screen", tx.metal, (25, 25, 30), (0.5, 0.5))
    m["plant"] = a.add("plant", tx.carpet, (50, 120, 45), (0.4, 0.4))
    m["cardboard"] = a.add("cardboard", tx.cardboard, None, (2.4, 2.4))
    m["posters"] = [a.add(f"poster{k}", tx.poster, None, (0.6, 0.8)) for k in range(8)]
    m["cloth"] = [a.add(f"cloth{k}", tx.cloth, None, (0.6, 0.6)) for k in range(10)]
    m["skin"] = [
        a.add(f"skin{k}", tx.plaster, c, (0.3, 0.3))
        for k, c in enumerate([(225, 185, 160), (180, 130, 95), (120, 80, 60)])
    ]
    plan.materials = m
    return m


def table(plan: Plan, m, centre, yaw: float, w: float, d: float, h: float = 0.74) -> bool:
    if not plan.claim(centre, (w / 2, d / 2), yaw):
        return False
    plan.box(centre, (w / 2, d / 2), yaw, h - 0.04, h, m["wood"])
    c, s = math.cos(yaw), math.sin(yaw)
    for sx in (-1, 1):
        for sy in (-1, 1):
            lx, ly = sx * (w / 2 - 0.06), sy * (d / 2 - 0.06)
            plan.box(
                (centre[0] + lx * c - ly * s, centre[1] + lx * s + ly * c),
                (0.025, 0.025),
                yaw,
                0.0,
                h - 0.04,
                m["metal"],
            )
    return True


def desk(plan: Plan, m, centre, yaw: float) -> bool:
    """A desk with a monitor (local +y = where the person sits)."""
    if not table(plan, m, centre, yaw, 1.4, 0.7):
        return False
    c, s = math.cos(yaw), math.sin(yaw)
    back = np.asarray(centre) + np.array([s, -c]) * 0.15
    plan.box(back, (0.28, 0.03), yaw, 0.9, 1.2, m["metal"], front=m["screen"])
    plan.box(back, (0.04, 0.03), yaw, 0.74, 0.9, m["metal"])
    return True


def chair(plan: Plan, m, centre, yaw: float) -> bool:
    if not plan.claim(centre, (0.24, 0.24), yaw, margin=0.0):
        return False
    plan.box(centre, (0.23, 0.23), yaw, 0.42, 0.48, m["fabric"])
    c, s = math.cos(yaw), math.sin(yaw)
    back = np.asarray(centre) + np.array([s, -c]) * 0.21
    plan.box(back, (0.23, 0.03), yaw, 0.48, 0.95, m["fabric"])
    plan.cylinder(centre, 0.04, 0.0, 0.42, m["metal"])
    return True


def along_walls(plan: Plan, m, rid: int, rng, kinds: list[str], tries: int = 12) -> None:
    """Back shelves / cabinets / posters / benches onto the walls of room ``rid``."""
    x0, y0, x1, y1 = plan.regions[rid].rect
    for _ in range(tries):
        kind = kinds[int(rng.integers(len(kinds)))]
        side = "SNWE"[int(rng.integers(4))]
        length = (x1 - x0) if side in "SN" else (y1 - y0)
        if kind == "poster":
            w, hgt = rng.uniform(0.5, 0.9), rng.uniform(0.6, 1.0)
            spot = plan.against_wall(rid, side, rng.uniform(w, length - w), (w / 2, 0.01))
            if spot is None:
                continue
            # posters hang above furniture: release the floor space they claimed
            centre, yaw = spot
            plan.free[
                int((centre[0] - w / 2) / 0.1) : int((centre[0] + w / 2) / 0.1) + 1,
                int((centre[1] - w / 2) / 0.1) : int((centre[1] + w / 2) / 0.1) + 1,
            ] = True
            z0 = rng.uniform(1.2, 1.5)
            poster = m["posters"][int(rng.integers(len(m["posters"])))]
            plan.atlas.scales[poster] = (w, hgt)
            plan.box(centre, (w / 2, 0.01), yaw, z0, z0 + hgt, m["frame"], front=poster)
            continue
        half, z1, front, mat = {
            "shelf": ((0.45, 0.18), rng.uniform(1.6, 2.0), m["books"], m["wood"]),
            "cabinet": ((0.4, 0.25), rng.uniform(0.8, 1.3), m["cabinet"], m["cabinet"]),
            "bench": ((0.7, 0.22), 0.45, m["wood"], m["metal"]),
            "plant": ((0.2, 0.2), 1.1, m["plant"], m["plant"]),
        }[kind]
        spot = plan.against_wall(
            rid, side, rng.uniform(half[0] + 0.2, max(length - half[0] - 0.2, half[0] + 0.21)), half
        )
        if spot is None:
            continue
        centre, yaw = spot
        if kind == "plant":
            plan.cylinder(centre, 0.15, 0.0, 0.4, m["cabinet"])
            plan.cylinder(centre, 0.28, 0.4, z1, m["plant"])
        else:
            plan.box(centre, half, yaw, 0.0, z1, mat, front=front)


def furnish_room(plan: Plan, m, rid: int, rng) -> None:
    """Dress a room as an office, meeting room, storage room or lounge."""
    x0, y0, x1, y1 = plan.regions[rid].rect
    centre = np.array([(x0 + x1) / 2, (y0 + y1) / 2])
    kind = ["office", "meeting", "storage", "lounge"][int(rng.integers(4))]
    if kind == "office":
        for _ in range(4):
            side = "SNWE"[int(rng.integers(4))]
            length = (x1 - x0) if side in "SN" else (y1 - y0)
            spot = plan.against_wall(rid, side, rng.uniform(0.9, max(length - 0.9, 0.91)), (0.7, 0.35))
            if spot is not None:
                c, yaw = spot
                plan.free[
                    int((c[0] - 0.8) / 0.1) : int((c[0] + 0.8) / 0.1), int((c[1] - 0.8) / 0.1) : int((c[1] + 0.8) / 0.1)
                ] = True
                if desk(plan, m, c, yaw):
                    n = np.array([-math.sin(yaw), math.cos(yaw)])
                    chair(plan, m, c + n * 0.65, yaw + math.pi)
        along_walls(plan, m, rid, rng, ["shelf", "cabinet", "poster", "plant"])
    elif kind == "meeting":
        w, d = min(x1 - x0 - 2.0, 2.4), min(y1 - y0 - 2.0, 1.1)
        if w > 0.8 and d > 0.6 and table(plan, m, centre, 0.0, w, d):
            for k in range(int(w / 0.7)):
                for sy in (-1, 1):
                    chair(
                        plan,
                        m,
                        centre + np.array([-w / 2 + 0.35 + 0.7 * k, sy * (d / 2 + 0.3)]),
                        0.0 if sy < 0 else math.pi,
                    )
        along_walls(plan, m, rid, rng, ["poster", "cabinet", "plant"])
    elif kind == "storage":
        along_walls(plan, m, rid, rng, ["shelf", "shelf", "cabinet"], tries=16)
    else:
        along_walls(plan, m, rid, rng, ["bench", "plant", "poster", "shelf"])
        table(plan, m, centre, float(rng.uniform(0, math.pi)), 0.8, 0.8, h=0.5)


def pillar(plan: Plan, m, centre, size: float = 0.4) -> None:
    plan.box(centre, (size / 2, size / 2), 0.0, 0.0, plan.ceiling - 0.001, m["walls"][0], front=m["walls"][0])


__all__ = ["materials", "table", "desk", "chair", "along_walls", "furnish_room", "pillar"]
