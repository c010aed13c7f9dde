"""Column renderer for level cameras in 2.5D scenes (vertical prisms, flat floor and ceiling).

Why columns: a level camera (no roll, no pitch) sees every image column through a vertical plane.
Every object of a scene is a vertical prism (oriented box or cylinder footprint, ``z0 <= z <= z1``),
so a column meets it in one depth interval ``[t_in, t_out]`` found with 2D ray casts (``W x N``
small ops). Full-height walls fill a column between the floor and the ceiling; the other prisms
cover one contiguous run of rows each, painted back to front (``H x W`` per hit kept). Colour comes
from a procedural texture atlas indexed by the hit's surface coordinates.

Depth is the optical z (REP-118 depth image semantics), not the ray length: a column ray is
parametrised as ``p(t) = c + t * (f + a_u r) - t * b_v * up`` with ``a_u = (u - cx) / fx`` and
``b_v = (v - cy) / fy``, so ``t`` *is* the optical z.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter

from mirage_ros.errors import InvalidInput
from mirage_ros.geometry import Intrinsics
from mirage_ros.sim.scene import Prisms, Scene

MAX_HITS = 12  # nearest non-wall hits kept per column
MAX_ANISOTROPY = 4.0  # texture filtering: the mip level follows the footprint's long axis / this
MAX_SLANT = 16.0  # a floor / ceiling pixel's footprint is at most this many times longer than wide


@dataclass
class RenderOutput:
    """One rendered view (all arrays ``(H, W)`` unless noted).

    rgb ``(H, W, 3) uint8``; depth ``float32`` optical z in metres, 0 = no return; instance_ids
    ``int32`` (0 = static background, k = actor k); albedo_luma ``float32`` in [0, 1] (for the
    sensor model's dark-surface dropouts).
    """

    rgb: np.ndarray
    depth: np.ndarray
    instance_ids: np.ndarray
    albedo_luma: np.ndarray


def level_pose(T_world_cam: np.ndarray, atol: float = 1e-3) -> tuple[np.ndarray, np.ndarray]:
    """Camera position ``(3,)`` and the unit 2D forward direction ``(2,)`` of a level optical frame.

    Raises InvalidInput when the pose rolls or pitches (the renderer's column model needs
    optical y = world -z).
    """
    T = np.asarray(T_world_cam, dtype=np.float64)
    if T.shape != (4, 4) or not np.all(np.isfinite(T)):
        raise InvalidInput("T_world_cam", f"must be a finite (4, 4) matrix, got shape {T.shape}")
    down = T[:3, 1]
    if abs(down[2] + 1.0) > atol:
        raise InvalidInput(
            "T_world_cam",
            "the simulator renders level cameras only (optical y must point down, world -z); "
            f"got optical y = {np.round(down, 4).tolist()}",
        )
    forward = T[:2, 2] / np.linalg.norm(T[:2, 2])
    return T[:3, 3].copy(), forward


class ColumnRenderer:
    """Renders a :class:`Scene` at a fixed resolution; reuse one instance per camera model.

    Args:
        scene: the static scene (walls, furniture, textures, light map).
        K: pinhole intrinsics; image size ``(K.height, K.width)``.
        max_range: depths beyond this (metres) are reported as 0 (no return).
        vignette: strength of the radial darkening (0 = off).
        psf_sigma_640: lens blur, Gaussian sigma in pixels at 640 px wide (scaled with the
            width; 0 = off). Textures are filtered to the pixel footprint in any case.
    """

    # pixel kinds: 0 wall, 1 floor, 2 ceiling, 3 top/bottom face of a prism, 4 side of a prism

    def __init__(self, scene: Scene, K: Intrinsics, max_range: float = 10.0, vignette: float = 0.25,
                 psf_sigma_640: float = 1.0):
        if not psf_sigma_640 >= 0:
            raise InvalidInput("psf_sigma_640", f"must be >= 0, got {psf_sigma_640}")
        self.scene, self.K, self.max_range = scene, K, float(max_range)
        self.psf_sigma = float(psf_sigma_640) * K.width / 640.0
        H, W = K.height, K.width
        self.a = ((np.arange(W) - K.cx) / K.fx).astype(np.float64)  # (W,)
        b = ((np.arange(H) - K.cy) / K.fy).astype(np.float32)
        b[b == 0] = 1e-9  # the horizon row: no floor or ceiling hit, avoid 0-division
        self.b = b  # (H,)
        self.rows = np.arange(H, dtype=np.int32)[:, None]  # (H, 1)
        self.cols = np.arange(W, dtype=np.int64)[None, :]  # (1, W)
        u = (np.arange(W) - K.cx) / K.width
        v = (np.arange(H) - K.cy) / K.height
        radius2 = v[:, None] ** 2 + u[None, :] ** 2
        self.vignette = (1.0 - vignette * radius2 / 0.5).astype(np.float32)
        self.col_norm = np.hypot(1.0, self.a).astype(np.float32)  # |column direction| (metres per unit z)
        self.half_fov = float(np.arctan(max(K.cx, W - 1 - K.cx) / K.fx)) + 0.02
        self.row_kind = np.where(b > 0, 1, 2).astype(np.int8)  # floor below the horizon
        self.row_facing = np.where(b > 0, 0.9, 0.65).astype(np.float32)  # floor, ceiling shading
        grid, atlas = scene.grid, scene.atlas
        self.fc_mat = np.concatenate([grid.floor_mat.ravel(), grid.ceiling_mat.ravel()]).astype(np.int32)
        self.light = grid.light.ravel()
        self.row_layer = np.where(b > 0, 0, grid.floor_mat.size).astype(np.int32)
        self.inv_su = (atlas.size / atlas.scale[:, 0]).astype(np.float32)
        self.inv_sv = (atlas.size / atlas.scale[:, 1]).astype(np.float32)
        self.packed, self.mip_offset = _mip_chain(atlas.texels, atlas.size)
        # texels per metre (geometric mean of the tile's two axes); per row, how much longer a
        # floor / ceiling pixel's footprint is along the rows than across (1 / |b_v|)
        self.texel_density = np.sqrt(self.inv_su * self.inv_sv).astype(np.float32)
        self.inv_b = np.minimum(1.0 / np.abs(b), MAX_SLANT).astype(np.float32)

    # ------------------------------------------------------------------ column casts
    def _columns(self, T_world_cam: np.ndarray):
        cam, fwd = level_pose(T_world_cam)
        right = np.array([fwd[1], -fwd[0]])  # optical x: forward turned -90 deg about world z
        d = fwd[None, :] + self.a[:, None] * right[None, :]  # (W, 2) column directions
        return cam, fwd, d

    def render(self, T_world_cam: np.ndarray, dynamic: Prisms | None = None, albedo: bool = False) -> RenderOutput:
        """Render the scene plus ``dynamic`` prisms (actors) seen from ``T_world_cam (4, 4)``.

        ``albedo``: also return the albedo luminance (the sensor model needs it).
        """
        scene = self.scene
        cam, fwd, d = self._columns(T_world_cam)
        reach = max(3.0 * self.max_range, 30.0)  # colour shows what depth cannot reach
        cone = (fwd, self.half_fov)
        col_wall, wall_mat, wall_tu, wall_facing = self._walls(scene.walls.near(cam[:2], reach, *cone), cam, d)

        # background: the column's wall between floor and ceiling
        H, W = self.K.height, self.K.width
        fc = self._floor_ceiling(float(cam[2]))
        is_wall = col_wall[None, :] < fc[:, None]
        px = {
            "depth": np.minimum(col_wall[None, :], fc[:, None]),
            "kind": ~is_wall * self.row_kind[:, None],
            "inst": np.zeros((H, W), np.int32),
            "tu": np.broadcast_to(wall_tu[None, :], (H, W)),
            "mat": np.broadcast_to(wall_mat[None, :], (H, W)),
            "facing": np.broadcast_to(wall_facing[None, :], (H, W)),
            "zoff": None,
        }
        objs = scene.objects.near(cam[:2], reach, *cone)
        if dynamic is not None and len(dynamic):
            objs = objs.concat(dynamic.near(cam[:2], reach, *cone))
        self._paint_objects(objs, cam, d, col_wall, px)
        return self._shade(cam, d, px, col_wall, albedo)

    def _walls(self, walls: Prisms, cam: np.ndarray, d: np.ndarray):
        """Per column ``(W,)``: nearest full-height wall's depth, material, texture u, shading."""
        W = len(d)
        if not len(walls):
            return (
                np.full(W, np.inf, np.float32),
                np.zeros(W, np.int32),
                np.zeros(W, np.float32),
                np.ones(W, np.float32),
            )
        w_in, _, _, w_tu, w_n = walls.cast(cam[:2], d)
        wsel = np.argmin(w_in, axis=1)
        cols = np.arange(W)
        return w_in[cols, wsel], walls.mat[wsel], w_tu[cols, wsel], _facing(w_n[cols, wsel], d)

    def _paint_objects(self, objs: Prisms, cam: np.ndarray, d: np.ndarray, col_wall: np.ndarray, px: dict) -> None:
        """Overwrite ``px`` where prisms in front of the walls show: nearest ``MAX_HITS`` per
        column, each painted over its run of rows, back to front."""
        K, H, W, h = self.K, self.K.height, self.K.width, float(cam[2])
        o_in, o_out, o_face, o_tu, o_n = objs.cast(cam[:2], d)
        o_in[o_in >= col_wall[:, None]] = np.inf
        n_hits = min(int(np.max(np.sum(np.isfinite(o_in), axis=1))) if o_in.shape[1] else 0, MAX_HITS)
        if not n_hits:
            return
        order = np.argsort(o_in, axis=1)[:, :n_hits]  # (W, k) nearest first
        t_in = np.take_along_axis(o_in, order, 1)
        t_out = np.take_along_axis(o_out, order, 1)
        valid = np.isfinite(t_in)
        z0, z1 = objs.z0[order], objs.z1[order]
        with np.errstate(divide="ignore", invalid="ignore"):
            # rows whose ray crosses the prism's rectangle [t_in, t_out] x [z0, z1] of this column
            t_near = np.where(valid, t_in, 1.0)
            t_far = np.where(valid, t_out, 1.0)
            b_lo = np.minimum((h - z1) / t_near, (h - z1) / t_far)
            b_hi = np.maximum((h - z0) / t_near, (h - z0) / t_far)
        r0 = np.where(valid, np.ceil(K.cy + K.fy * b_lo), 0).clip(0, H).astype(np.int32)
        r1 = np.where(valid, np.floor(K.cy + K.fy * b_hi) + 1, 0).clip(0, H).astype(np.int32)
        pick = np.full((H, W), -1, np.int8)
        for k in range(n_hits - 1, -1, -1):  # back to front; each pass only over its bounding box
            cols = np.flatnonzero(r1[:, k] > r0[:, k])
            if cols.size:
                c0, c1 = cols[0], cols[-1] + 1
                a, b = r0[c0:c1, k], r1[c0:c1, k]
                lo, hi = int(a[b > a].min()), int(b.max())
                rows = self.rows[lo:hi]
                np.putmask(pick[lo:hi, c0:c1], (rows >= a) & (rows < b), k)
        pix = np.flatnonzero(pick >= 0)
        if not pix.size:
            return
        # per (column, hit) attributes, gathered once for the pixels that show them
        side_mat = np.where(np.take_along_axis(o_face, order, 1) == 0, objs.mat[order], objs.mat_front[order])
        side_n = np.take_along_axis(o_n, order[:, :, None], 1)
        fields = [
            t_in,
            z0,
            z1,
            side_mat,
            objs.mat[order],
            objs.inst[order],
            np.take_along_axis(o_tu, order, 1),
            _facing(side_n, d[:, None, :]),
        ]
        got = np.stack(fields, axis=-1).reshape(-1, len(fields))[(pix % W) * n_hits + pick.ravel()[pix]]
        got = got.astype(np.float32)
        tin, gz0, gz1 = got[:, 0], got[:, 1], got[:, 2]
        bsel = self.b[pix // W]
        tz = (h - np.where(bsel > 0, gz1, gz0)) / bsel
        cap = tz > tin  # the ray enters through the top (or bottom) face
        for key in ("tu", "mat", "facing"):
            px[key] = px[key].copy()
        px["zoff"] = np.zeros((H, W), np.float32)
        px["depth"].ravel()[pix] = np.where(cap, tz, tin)
        px["kind"].ravel()[pix] = np.where(cap, 3, 4)
        px["inst"].ravel()[pix] = got[:, 5]
        px["mat"].ravel()[pix] = np.where(cap, got[:, 4], got[:, 3])
        px["tu"].ravel()[pix] = got[:, 6]
        px["zoff"].ravel()[pix] = gz0
        px["facing"].ravel()[pix] = np.where(cap, np.float32(0.95), got[:, 7])

    def _floor_ceiling(self, h: float) -> np.ndarray:
        """Per row ``(H,)`` depth of the floor (below the horizon) or ceiling (above)."""
        return np.where(self.b > 0, h / self.b, (h - self.scene.ceiling) / self.b).astype(np.float32)

    # ------------------------------------------------------------------ shading
    def _shade(self, cam, d, px: dict, col_wall: np.ndarray, albedo: bool) -> RenderOutput:
        """Texture, light and quantise the resolved pixels ``px`` (see :meth:`render`)."""
        scene, atlas = self.scene, self.scene.atlas
        depth, kind, mat, tu, zoff, facing = (px[k] for k in ("depth", "kind", "mat", "tu", "zoff", "facing"))
        h = np.float32(cam[2])
        dx, dy = d[:, 0].astype(np.float32), d[:, 1].astype(np.float32)
        x = depth * dx + np.float32(cam[0])
        y = depth * dy + np.float32(cam[1])
        z = h - self.b[:, None] * depth
        cell = scene.grid.index(x, y)
        cell += self.row_layer[:, None]  # rows above the horizon read the ceiling layer
        shifted = kind.view(np.uint8) - np.uint8(1)  # kind 0 wraps to 255
        flat = shifted <= 2  # floor, ceiling, caps: textured by world (x, y)
        mat = np.where(shifted <= 1, self.fc_mat[cell], mat)  # floor, ceiling: material from the map
        s = np.where(flat, x, tu)
        t = np.where(flat, y, z if zoff is None else z - zoff)
        T = atlas.size
        iu = (s * self.inv_su[mat]).astype(np.int32)
        iu &= T - 1
        iv = (t * self.inv_sv[mat]).astype(np.int32)
        iv &= T - 1
        idx = mat * (T * T)
        idx += iv * T
        idx += iu
        level = self._mip_level(depth, flat, mat)
        size = T >> level
        mip = self.mip_offset[level] + mat * size * size + (iv >> level) * size + (iu >> level)
        texel = self.packed[mip].view(np.uint8).reshape(depth.shape + (4,))
        gain = self.light[cell]
        gain += scene.ambient
        gain *= np.where(flat, self.row_facing[:, None], facing * (0.8 + (0.25 / scene.ceiling) * z))
        # contact darkening (cheap ambient occlusion): vertical faces near the floor, floor and
        # ceiling near the walls (horizontal distance to the column's wall)
        gap = (col_wall.astype(np.float32) - depth) * self.col_norm
        near = np.where(flat, gap, z)
        near *= np.float32(5.5)
        near *= near
        near += np.float32(1.0)
        gain *= np.float32(1.0) - np.float32(0.35) / near
        gain *= self.vignette
        g = np.minimum(gain * 128.0, 256.0).astype(np.uint16)  # fixed point: 255 * 256 fits uint16
        rgb = texel * g[:, :, None]  # all four bytes: contiguous is faster than a strided 3
        rgb >>= 7
        np.minimum(rgb, 255, out=rgb)
        rgb = rgb[:, :, :3]
        if self.psf_sigma > 0:
            rgb = gaussian_filter(rgb.astype(np.float32), (self.psf_sigma, self.psf_sigma, 0), truncate=3.0)
            rgb += np.float32(0.5)
        rgb = rgb.astype(np.uint8)
        luma = atlas.luma.ravel()[idx] if albedo else None
        depth = np.where((depth > self.max_range) | ~np.isfinite(depth), np.float32(0), depth)
        return RenderOutput(rgb, depth, px["inst"], luma)

    def _mip_level(self, depth: np.ndarray, flat: np.ndarray, mat: np.ndarray) -> np.ndarray:
        """Per pixel ``(H, W) int32`` mip level whose texels are about one pixel's footprint.

        The footprint is ``z / f`` metres across and, on floors, ceilings and caps (seen at a
        slant), ``z / (f |b_v|)`` along the image rows; as a GPU's anisotropic filtering does, the
        level follows the long axis divided by up to ``MAX_ANISOTROPY``.
        """
        across = depth * np.float32(1.0 / self.K.fx)
        along = np.where(flat, across * self.inv_b[:, None], across)
        texels = np.maximum(across, along / np.float32(MAX_ANISOTROPY)) * self.texel_density[mat]
        with np.errstate(divide="ignore", invalid="ignore"):
            level = np.rint(np.log2(np.maximum(texels, np.float32(1.0))))
        return np.nan_to_num(level, nan=0.0, posinf=0.0).clip(0, len(self.mip_offset) - 1).astype(np.int32)


def _mip_chain(texels: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Box-filtered mip levels of square tiles, packed as ``0x00BBGGRR`` ``uint32`` one after another.

    Args:
        texels: ``(M * size * size, 3) uint8`` tiles, row-major ``[mat, v, u]``.
        size: texels per tile side (a power of two).

    Returns:
        packed ``(N,) uint32`` all levels; offsets ``(L,) int64`` where level ``l`` (tiles of
        ``size >> l`` texels) starts.
    """
    tiles = texels.reshape(-1, size, size, 3).astype(np.float32)
    packed, offsets, start = [], [], 0
    while True:
        t = np.rint(tiles).astype(np.uint32)
        packed.append((t[..., 0] | (t[..., 1] << 8) | (t[..., 2] << 16)).ravel())
        offsets.append(start)
        start += packed[-1].size
        if tiles.shape[1] == 1:
            return np.concatenate(packed), np.asarray(offsets, np.int64)
        tiles = 0.25 * (tiles[:, 0::2, 0::2] + tiles[:, 1::2, 0::2] + tiles[:, 0::2, 1::2] + tiles[:, 1::2, 1::2])


def _facing(normal: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Lambert-like factor ``(...)`` from side normals ``(..., 2)`` and column directions ``(..., 2)``."""
    with np.errstate(invalid="ignore"):  # missed hits carry NaN normals; they are never shown
        dn = np.abs(normal[..., 0] * d[..., 0] + normal[..., 1] * d[..., 1]) / np.hypot(d[..., 0], d[..., 1])
        # a fixed "sky" direction brightens faces turned one way: walls at corners differ in tone
        tone = 0.93 + 0.07 * (0.6 * normal[..., 0] + 0.8 * normal[..., 1])
    return ((0.5 + 0.5 * dn) * tone).astype(np.float32)
