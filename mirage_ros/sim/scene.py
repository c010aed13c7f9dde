"""Scene data: vertical prisms (boxes and cylinders), a floor map grid, textures, navigation.

Everything in a scene is a vertical prism standing in the world frame (REP-103, z up, metres):
an oriented box ``(centre, half extents, yaw)`` or a cylinder ``(centre, radius)`` spanning
``z0 <= z <= z1``. Floors (z = 0) and the ceiling (z = ``ceiling``) are analytic planes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

NEAR = 0.05  # metres: a prism entered closer than this (camera inside it) is not drawn


@dataclass
class Prisms:
    """``N`` vertical prisms as a struct of arrays (all ``(N,)``).

    Boxes: centre ``(cx, cy)``, half extents ``(hx, hy)`` along the local axes, ``yaw`` (rad).
    Cylinders (``cyl`` True): radius ``hx`` (= ``hy``). ``mat`` textures the sides on local +-x,
    the top and bottom, and cylinders; ``mat_front`` the faces on local +-y (a shelf's front, a
    poster, a wall's long faces). ``inst`` is the instance id (0 = static background).
    """

    cx: np.ndarray
    cy: np.ndarray
    hx: np.ndarray
    hy: np.ndarray
    yaw: np.ndarray
    z0: np.ndarray
    z1: np.ndarray
    mat: np.ndarray
    mat_front: np.ndarray
    inst: np.ndarray
    cyl: np.ndarray

    FIELDS = ("cx", "cy", "hx", "hy", "yaw", "z0", "z1", "mat", "mat_front", "inst", "cyl")
    DTYPES = (np.float64,) * 7 + (np.int32, np.int32, np.int32, bool)

    @classmethod
    def from_rows(cls, rows: list[tuple]) -> Prisms:
        """Build from tuples ordered as :attr:`FIELDS`."""
        cols = list(zip(*rows)) if rows else [[] for _ in cls.FIELDS]
        return cls(*(np.asarray(c, dtype=t) for c, t in zip(cols, cls.DTYPES)))

    def __len__(self) -> int:
        return len(self.cx)

    def subset(self, keep: np.ndarray) -> Prisms:
        return Prisms(*(getattr(self, f)[keep] for f in self.FIELDS))

    def concat(self, other: Prisms) -> Prisms:
        return Prisms(*(np.concatenate([getattr(self, f), getattr(other, f)]) for f in self.FIELDS))

    def near(self, xy: np.ndarray, reach: float, forward: np.ndarray | None = None, half_fov: float = 0.0) -> Prisms:
        """Prisms whose bounding circle comes within ``reach`` metres of ``xy (2,)``.

        With ``forward (2,)`` (unit) and ``half_fov`` (rad), also only those that can be inside
        the horizontal view cone.
        """
        px, py = self.cx - xy[0], self.cy - xy[1]
        radius = np.hypot(self.hx, self.hy)
        keep = np.hypot(px, py) - radius < reach
        if forward is not None:
            ahead = px * forward[0] + py * forward[1]
            side = np.abs(-px * forward[1] + py * forward[0])
            keep &= (ahead > -radius) & (side <= ahead * np.tan(half_fov) + radius / np.cos(half_fov))
        return self.subset(keep)

    def cast(self, xy: np.ndarray, d: np.ndarray):
        """Intersect ``W`` horizontal rays ``xy + t d`` (``d (W, 2)``, not unit) with every prism.

        Returns ``(t_in, t_out, face, tu, normal)``: ``(W, N)`` entry/exit parameters (``inf``
        where missed or entered behind ``NEAR``), entry face (0 = local x side or cylinder,
        1 = local y side), horizontal texture coordinate along the face (metres) and the outward
        2D normal ``(W, N, 2)`` of the entry face.
        """
        W, N = len(d), len(self)
        t_in = np.full((W, N), np.inf, np.float32)
        t_out = np.full((W, N), np.inf, np.float32)
        face = np.zeros((W, N), np.int8)
        tu = np.zeros((W, N), np.float32)
        normal = np.zeros((W, N, 2), np.float32)
        d = d.astype(np.float32)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            for ids, fn in (
                (np.flatnonzero(~self.cyl), self._cast_boxes),
                (np.flatnonzero(self.cyl), self._cast_cylinders),
            ):
                if len(ids):
                    a, b, f, u, n = fn(self.subset(ids), xy, d)
                    ok = (a <= b) & (a > NEAR)
                    t_in[:, ids] = np.where(ok, a, np.inf)
                    t_out[:, ids], face[:, ids], tu[:, ids], normal[:, ids] = b, f, u, n
        return t_in, t_out, face, tu, normal

    @staticmethod
    def _cast_boxes(p: Prisms, xy, d):
        c, s = np.cos(p.yaw).astype(np.float32), np.sin(p.yaw).astype(np.float32)
        ox, oy = xy[0] - p.cx, xy[1] - p.cy
        lx, ly = (ox * c + oy * s).astype(np.float32), (-ox * s + oy * c).astype(np.float32)
        hx, hy = p.hx.astype(np.float32), p.hy.astype(np.float32)
        dx = d[:, :1] * c + d[:, 1:] * s  # (W, N) ray direction, box frame
        dy = d[:, 1:] * c - d[:, :1] * s
        dx[dx == 0] = 1e-12
        dy[dy == 0] = 1e-12
        ix, iy = 1.0 / dx, 1.0 / dy
        ax, bx = (-hx - lx) * ix, (hx - lx) * ix
        ay, by = (-hy - ly) * iy, (hy - ly) * iy
        txn, tyn = np.minimum(ax, bx), np.minimum(ay, by)
        t_in = np.maximum(txn, tyn)
        t_out = np.minimum(np.maximum(ax, bx), np.maximum(ay, by))
        yface = tyn > txn
        ex, ey = lx + t_in * dx, ly + t_in * dy  # entry point, box frame
        tu = np.where(yface, ex + hx, ey + hy)
        nlx = np.where(yface, 0.0, np.sign(ex))
        nly = np.where(yface, np.sign(ey), 0.0)
        normal = np.stack([nlx * c - nly * s, nlx * s + nly * c], axis=-1)
        return t_in, t_out, yface.astype(np.int8), tu, normal

    @staticmethod
    def _cast_cylinders(p: Prisms, xy, d):
        ox, oy = (xy[0] - p.cx).astype(np.float32), (xy[1] - p.cy).astype(np.float32)
        r = p.hx.astype(np.float32)
        dd = np.sum(d * d, axis=1)[:, None]
        bb = d[:, :1] * ox + d[:, 1:] * oy
        disc = bb * bb - dd * (ox * ox + oy * oy - r * r)
        root = np.sqrt(np.maximum(disc, 0.0))
        t_in = np.where(disc > 0, (-bb - root) / dd, np.inf)
        t_out = (-bb + root) / dd
        px, py = (ox + t_in * d[:, :1]) / r, (oy + t_in * d[:, 1:]) / r
        tu = (np.arctan2(py, px) + np.pi) * r
        return t_in, t_out, np.zeros(t_in.shape, np.int8), tu, np.stack([px, py], axis=-1)


@dataclass
class MapGrid:
    """Top-down grid from the world origin: per cell floor/ceiling material ids and light level.

    ``light`` is ``(2, nx, ny)``: layer 0 lights floors and walls, layer 1 the ceiling (where the
    light panels glow). ``index(x, y)`` maps world coordinates to flat ``(nx, ny)`` cell indices,
    clipped to the grid.
    """

    res: float  # metres per cell
    floor_mat: np.ndarray  # (nx, ny) int32
    ceiling_mat: np.ndarray  # (nx, ny) int32
    light: np.ndarray  # (2, nx, ny) float32 irradiance (unitless, ~0..2)

    def index(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        nx, ny = self.floor_mat.shape
        i = np.multiply(x, np.float32(1.0 / self.res), dtype=np.float32)
        np.clip(i, 0, nx - 1, out=i)
        j = np.multiply(y, np.float32(1.0 / self.res), dtype=np.float32)
        np.clip(j, 0, ny - 1, out=j)
        cell = i.astype(np.int32)
        cell *= ny
        cell += j.astype(np.int32)
        return cell


@dataclass
class Atlas:
    """Texture atlas: ``M`` square tiles of ``size`` texels.

    texels ``(M * size * size, 3) uint8`` (row-major ``[mat, v, u]``, v = 0 at the bottom);
    scale ``(M, 2) float32`` metres covered by one tile along (u, v);
    luma ``(M, size, size) float32`` albedo luminance in [0, 1]; names ``(M,)``.
    """

    texels: np.ndarray
    scale: np.ndarray
    luma: np.ndarray
    size: int
    names: list[str]


@dataclass
class Scene:
    """A static procedural scene plus what moves in it.

    walls: full-height prisms (floor to ceiling); objects: everything else (furniture, lintels,
    doors, posters, pillars). nav_nodes ``(P, 2)`` and nav_edges ``(E, 2)`` form a walkable graph;
    routes name camera waypoint lists along its edges (``"loop"`` is closed and revisits its
    start, ``"forward"`` a straight run, ``"static"`` a position and a point to look at).
    """

    family: str
    seed: int
    walls: Prisms
    objects: Prisms
    ceiling: float
    ambient: float
    grid: MapGrid
    atlas: Atlas
    nav_nodes: np.ndarray
    nav_edges: np.ndarray
    routes: dict[str, np.ndarray] = field(default_factory=dict)
    bounds: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    materials: dict = field(default_factory=dict)  # name -> atlas id(s), e.g. "cloth", "skin"

    def surface_distance(self, points: np.ndarray, extra: Prisms | None = None) -> np.ndarray:
        """Distance ``(N,)`` from world points ``(N, 3)`` to the nearest scene surface.

        Used to check ground truth: a back-projected depth pixel must lie on a surface.
        """
        p = np.asarray(points, dtype=np.float64)
        best = np.minimum(np.abs(p[:, 2]), np.abs(p[:, 2] - self.ceiling))
        prisms = self.walls.concat(self.objects)
        if extra is not None:
            prisms = prisms.concat(extra)
        for k in range(len(prisms)):
            ox, oy = p[:, 0] - prisms.cx[k], p[:, 1] - prisms.cy[k]
            zc = (prisms.z0[k] + prisms.z1[k]) / 2
            hz = (prisms.z1[k] - prisms.z0[k]) / 2
            qz = np.abs(p[:, 2] - zc) - hz
            if prisms.cyl[k]:
                q = [np.hypot(ox, oy) - prisms.hx[k], qz]
            else:
                c, s = np.cos(prisms.yaw[k]), np.sin(prisms.yaw[k])
                q = [np.abs(ox * c + oy * s) - prisms.hx[k], np.abs(-ox * s + oy * c) - prisms.hy[k], qz]
            q = np.stack(q, axis=1)
            outside = np.linalg.norm(np.maximum(q, 0.0), axis=1)
            inside = np.minimum(np.max(q, axis=1), 0.0)
            best = np.minimum(best, np.abs(outside + inside))
        return best
