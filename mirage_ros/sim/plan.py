"""Floor plans: rooms on a cell grid become walls, door openings, lights and a navigation graph.

A :class:`Plan` is what scene families draw on: rectangular regions (rooms, corridors, halls) on a
``res``-metre grid, doors between them, furniture prisms, ceiling lights and waypoints. ``build()``
turns it into a :class:`~mirage_ros.sim.scene.Scene`: one thin wall box per room side of every
boundary between different regions (door cells get a lintel instead), a light map, material maps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter

from mirage_ros.sim import textures as tx
from mirage_ros.sim.scene import MapGrid, Prisms, Scene

WALL = 0.06  # metres: half a wall's thickness (each room side gets one box this thick)
DOOR_HEIGHT = 2.1
MAP_RES = 0.25  # light / material map resolution (metres)
SIDES = {"S": (0.0, 1.0), "N": (0.0, -1.0), "W": (1.0, 0.0), "E": (-1.0, 0.0)}  # inward normals


@dataclass
class Region:
    rect: tuple[float, float, float, float]  # x0, y0, x1, y1 in metres
    wall_mat: int
    floor_mat: int
    ceiling_mat: int
    light: float


class Plan:
    """A floor plan under construction (world origin at the grid's corner, cells ``res`` metres).

    Args:
        size: (x, y) extent in metres; the outermost cells stay solid.
        ceiling: ceiling height (metres).
        rng: the scene's random generator (all choices draw from it, in a fixed order).
    """

    def __init__(self, family: str, seed: int, size: tuple[float, float], ceiling: float, rng, res: float = 0.5):
        self.family, self.seed, self.res, self.ceiling, self.rng = family, seed, res, ceiling, rng
        self.atlas = tx.AtlasBuilder(rng)
        self.cells = np.zeros((int(round(size[0] / res)), int(round(size[1] / res))), np.int32)
        self.regions: dict[int, Region] = {}
        self.doors: set[tuple[str, int, int]] = set()  # (axis, i, j) boundary cells with a door
        self.rows: list[tuple] = []  # object prisms (Prisms.FIELDS order)
        self.lights: list[tuple[float, float, float, int]] = []  # x, y, intensity, region id
        self.nodes: list[tuple[float, float]] = []
        self.edges: list[tuple[int, int]] = []
        self.routes: dict[str, np.ndarray] = {}
        self.materials: dict = {}
        self.free = np.zeros((int(size[0] / 0.1), int(size[1] / 0.1)), bool)  # placement grid
        self.light_mat = self.atlas.add("light_panel", tx.light_panel, scale=(0.6, 1.2))
        self.ambient = 0.35

    # ------------------------------------------------------------------ regions and doors
    def region(self, rects, wall_mat: int, floor_mat: int, ceiling_mat: int, light: float = 0.0) -> int:
        """Carve rectangles ``(x0, y0, x1, y1)`` (metres, on the grid) as one new region.

        Returns its id; the region's ``rect`` is the bounding box of ``rects``.
        """
        rid = len(self.regions) + 1
        rects = [rects] if np.ndim(rects) == 1 else rects
        for rect in rects:
            i0, j0, i1, j1 = (int(round(v / self.res)) for v in rect)
            self.cells[i0:i1, j0:j1] = rid
            f0, g0, f1, g1 = (int(round(v / 0.1)) for v in rect)
            self.free[f0:f1, g0:g1] = True
        r = np.asarray(rects, float)
        bbox = (r[:, 0].min(), r[:, 1].min(), r[:, 2].max(), r[:, 3].max())
        self.regions[rid] = Region(tuple(float(v) for v in bbox), wall_mat, floor_mat, ceiling_mat, light)
        return rid

    def door(
        self, x: float, y: float, axis: str, width: float, into: int, closed: bool, door_mat: int, frame_mat: int
    ) -> None:
        """A door centred at ``(x, y)`` on a wall along ``axis`` ("x": wall runs along x).

        ``into`` is the region the leaf swings into (an open leaf stands inside it, against the
        wall); a closed leaf fills the opening.
        """
        n = int(round(width / self.res))
        if axis == "x":
            j = int(round(y / self.res))
            i0 = int(round(x / self.res - n / 2))
            self.doors.update(("y", j, i) for i in range(i0, i0 + n))
            a, b = (i0 * self.res, y), ((i0 + n) * self.res, y)
        else:
            i = int(round(x / self.res))
            j0 = int(round(y / self.res - n / 2))
            self.doors.update(("x", i, j) for j in range(j0, j0 + n))
            a, b = (x, j0 * self.res), (x, (j0 + n) * self.res)
        along = np.subtract(b, a) / np.hypot(*np.subtract(b, a))
        yaw = math.atan2(along[1], along[0])
        for end in (a, b):  # frame jambs, a bit thicker than the wall
            self.box(end, (0.05, WALL + 0.03), yaw, 0.0, DOOR_HEIGHT + 0.05, frame_mat)
        mid = (np.add(a, b) / 2).tolist()
        self.box(mid, (width / 2, WALL + 0.03), yaw, DOOR_HEIGHT, DOOR_HEIGHT + 0.08, frame_mat)
        leaf = width / 2 - 0.06
        if closed:
            self.box(mid, (leaf, 0.025), yaw, 0.0, DOOR_HEIGHT, frame_mat, front=door_mat)
            return
        rc = self.regions[into].rect
        normal = np.array([-along[1], along[0]])
        centre = np.array([(rc[0] + rc[2]) / 2, (rc[1] + rc[3]) / 2])
        if np.dot(centre - np.asarray(mid), normal) < 0:
            normal = -normal
        hinge = np.asarray(a) + along * 0.06 + normal * WALL
        angle = math.radians(self.rng.uniform(100, 160))  # swung open, clear of the doorway
        leaf_dir = along * math.cos(angle) + normal * math.sin(angle)
        self.box(
            hinge + leaf_dir * leaf + 0.02 * normal,
            (leaf, 0.025),
            math.atan2(leaf_dir[1], leaf_dir[0]),
            0.0,
            DOOR_HEIGHT - 0.02,
            frame_mat,
            front=door_mat,
        )

    # ------------------------------------------------------------------ prisms
    def box(
        self, centre, half, yaw: float, z0: float, z1: float, mat: int, front: int | None = None, inst: int = 0
    ) -> None:
        """Add an oriented box prism (``half`` = (along local x, along local y))."""
        self.rows.append(
            (centre[0], centre[1], half[0], half[1], yaw, z0, z1, mat, mat if front is None else front, inst, False)
        )

    def cylinder(self, centre, radius: float, z0: float, z1: float, mat: int) -> None:
        self.rows.append((centre[0], centre[1], radius, radius, 0.0, z0, z1, mat, mat, 0, True))

    def against_wall(self, rid: int, side: str, along: float, half) -> tuple[np.ndarray, float] | None:
        """Centre and yaw for a box backed onto wall ``side`` of region ``rid``.

        ``along`` is the position along the wall (metres from its start); the box's local +y
        (its ``front``) faces into the room. None if the spot is taken or blocks a route.
        """
        x0, y0, x1, y1 = self.regions[rid].rect
        n = np.array(SIDES[side])
        start = {"S": (x0, y0), "N": (x0, y1), "W": (x0, y0), "E": (x1, y0)}[side]
        tangent = np.array([1.0, 0.0]) if side in "SN" else np.array([0.0, 1.0])
        centre = np.asarray(start) + tangent * along + n * (WALL + half[1] + 0.01)
        yaw = math.atan2(-n[0], n[1])
        return (centre, yaw) if self.claim(centre, half, yaw) else None

    def claim(self, centre, half, yaw: float, margin: float = 0.05) -> bool:
        """Mark a footprint as taken if it is entirely free; returns whether it was."""
        c, s = abs(math.cos(yaw)), abs(math.sin(yaw))
        ex, ey = half[0] * c + half[1] * s + margin, half[0] * s + half[1] * c + margin
        f0, f1 = int((centre[0] - ex) / 0.1), int(math.ceil((centre[0] + ex) / 0.1))
        g0, g1 = int((centre[1] - ey) / 0.1), int(math.ceil((centre[1] + ey) / 0.1))
        if f0 < 0 or g0 < 0 or f1 > self.free.shape[0] or g1 > self.free.shape[1]:
            return False
        if not self.free[f0:f1, g0:g1].all():
            return False
        self.free[f0:f1, g0:g1] = False
        return True

    # ------------------------------------------------------------------ navigation and lights
    def node(self, x: float, y: float) -> int:
        self.nodes.append((float(x), float(y)))
        return len(self.nodes) - 1

    def edge(self, a: int, b: int, clearance: float = 0.6) -> None:
        """Walkable link between nodes; keeps ``clearance`` metres around it free of furniture."""
        self.edges.append((a, b))
        p, q = np.asarray(self.nodes[a]), np.asarray(self.nodes[b])
        gx, gy = np.meshgrid(
            np.arange(self.free.shape[0]) * 0.1 + 0.05, np.arange(self.free.shape[1]) * 0.1 + 0.05, indexing="ij"
        )
        pq = q - p
        t = np.clip(((gx - p[0]) * pq[0] + (gy - p[1]) * pq[1]) / max(pq @ pq, 1e-9), 0, 1)
        near = np.hypot(gx - p[0] - t * pq[0], gy - p[1] - t * pq[1]) < clearance
        self.free[near] = False

    def light(self, x: float, y: float, intensity: float) -> None:
        rid = int(self.cells[int(x / self.res), int(y / self.res)])
        self.lights.append((x, y, intensity, rid))

    # ------------------------------------------------------------------ build
    def _wall_rows(self) -> list[tuple]:
        rows = []
        c = self.cells
        for axis, grid in (("x", c), ("y", c.T)):
            for i in range(1, grid.shape[0]):
                a_col, b_col = grid[i - 1], grid[i]
                keys = [
                    (int(a), int(b), (axis, i, j) in self.doors) if a != b else None
                    for j, (a, b) in enumerate(zip(a_col, b_col))
                ]
                j = 0
                while j < len(keys):
                    if keys[j] is None:
                        j += 1
                        continue
                    j1 = j
                    while j1 < len(keys) and keys[j1] == keys[j]:
                        j1 += 1
                    rows += self._wall_run(axis, i, j, j1, keys)
                    j = j1
        return rows

    def _wall_run(self, axis: str, i: int, j0: int, j1: int, keys) -> list[tuple]:
        a, b, is_door = keys[j0]
        ext0 = 0.0 if j0 > 0 and keys[j0 - 1] and keys[j0 - 1][2] else WALL * 2
        ext1 = 0.0 if j1 < len(keys) and keys[j1] and keys[j1][2] else WALL * 2
        s0, s1 = j0 * self.res - ext0, j1 * self.res + ext1
        pos, mid, half_len = i * self.res, (s0 + s1) / 2, (s1 - s0) / 2
        z0 = DOOR_HEIGHT if is_door else 0.0
        rows = []
        for rid, sign in ((a, -1.0), (b, 1.0)):
            if rid == 0:
                continue
            mat = self.regions[rid].wall_mat
            off = pos + sign * WALL / 2
            if axis == "x":  # boundary at x = pos, wall runs along y
                rows.append((off, mid, half_len, WALL / 2, math.pi / 2, z0, self.ceiling, mat, mat, 0, False))
            else:
                rows.append((mid, off, half_len, WALL / 2, 0.0, z0, self.ceiling, mat, mat, 0, False))
        return rows

    def _map(self) -> MapGrid:
        up = int(round(self.res / MAP_RES))
        rid = np.kron(self.cells, np.ones((up, up), np.int32))
        floor = np.zeros_like(rid)
        ceiling = np.zeros_like(rid)
        base = np.zeros(rid.shape, np.float32)
        for k, reg in self.regions.items():
            floor[rid == k], ceiling[rid == k], base[rid == k] = reg.floor_mat, reg.ceiling_mat, reg.light
        gx, gy = np.meshgrid(
            (np.arange(rid.shape[0]) + 0.5) * MAP_RES, (np.arange(rid.shape[1]) + 0.5) * MAP_RES, indexing="ij"
        )
        light = base.copy()
        drop = max(self.ceiling - 0.8, 0.5)
        panels = np.zeros(rid.shape, bool)
        for x, y, power, region in self.lights:
            d2 = (gx - x) ** 2 + (gy - y) ** 2 + drop**2
            light += np.where(rid == region, power * drop**2 / d2, 0.0).astype(np.float32)
            panel = (np.abs(gx - x) < 0.3) & (np.abs(gy - y) < 0.6) & (rid == region)
            ceiling[panel] = self.light_mat
            panels |= panel
        light = gaussian_filter(light, 1.0)
        # expose every scene alike on average; rooms still differ from one another
        light *= float(self.rng.uniform(0.45, 0.65)) / max(float(light[rid > 0].mean()), 1e-6)
        # the ceiling layer: panels glow (the renderer's ceiling shading factor is 0.65)
        glow = np.where(panels, np.float32(1.25 / 0.65 - self.ambient), light)
        return MapGrid(
            MAP_RES, floor.astype(np.int32), ceiling.astype(np.int32), np.stack([light, glow]).astype(np.float32)
        )

    def build(self) -> Scene:
        rows = self._wall_rows()
        # the renderer treats walls as floor-to-ceiling; lintels over doors are ordinary objects
        walls = Prisms.from_rows([r for r in rows if r[5] == 0.0])
        objects = Prisms.from_rows(self.rows + [r for r in rows if r[5] > 0.0])
        size = self.cells.shape
        return Scene(
            family=self.family,
            seed=self.seed,
            walls=walls,
            objects=objects,
            ceiling=self.ceiling,
            ambient=self.ambient,
            grid=self._map(),
            atlas=self.atlas.build(),
            nav_nodes=np.asarray(self.nodes, np.float64).reshape(-1, 2),
            nav_edges=np.asarray(self.edges, np.int64).reshape(-1, 2),
            routes=dict(self.routes),
            bounds=(0.0, 0.0, size[0] * self.res, size[1] * self.res),
            materials=self.materials,
        )
