"""What moves: the robot's camera path and people walking (closed-form in time, so any ``t`` can
be evaluated in any order and the result never depends on what was rendered before).

Robot paths are keyframed like a differential-drive robot: turn in place at a waypoint at
``turn_rate`` rad/s, then drive straight at ``speed`` m/s (linear interpolation in between).
Actors walk nav-graph edges back and forth, pausing now and then; while paused they are not
moving (they keep their instance id but leave the motion mask).
"""

from __future__ import annotations

import math

import numpy as np

from mirage_ros.sim.scene import Prisms, Scene

PATHS = ("loop", "forward", "pan", "static")


def _wrap(a: float) -> float:
    return (a + math.pi) % (2 * math.pi) - math.pi


class RobotPath:
    """Base pose ``(x, y, yaw)`` of the robot over time along one of the scene's routes.

    Args:
        waypoints: ``(P, 2)`` metres in the world (map) frame.
        mode: ``loop`` (closed, revisits its start every period), ``forward`` (drive to the end,
            turn round, drive back), ``pan`` (a closed route that stops at each waypoint to look
            60 degrees left and right), ``static`` (stand at waypoint 0 facing waypoint 1).
    """

    def __init__(self, waypoints: np.ndarray, mode: str, speed: float, turn_rate: float = 0.6):
        pts = np.asarray(waypoints, np.float64)
        heading = math.atan2(*(pts[1] - pts[0])[::-1])
        self.keys: list[tuple[float, float, float, float]] = [(0.0, pts[0, 0], pts[0, 1], heading)]
        if mode == "static":
            self.period = math.inf
            self._freeze()
            return
        if mode == "forward":
            pts = np.concatenate([pts, pts[-2::-1]])
        self.speed, self.turn_rate = speed, turn_rate
        for i in range(1, len(pts)):
            step = pts[i] - pts[i - 1]
            length = float(np.hypot(*step))
            if length < 1e-6:
                continue
            self._turn_to(math.atan2(step[1], step[0]))
            self._drive(pts[i], length)
            if mode == "pan":
                for delta in (1.05, -2.1, 1.05):
                    self._turn_to(self.keys[-1][3] + delta, exact=True)
        self._turn_to(heading)
        self.period = self.keys[-1][0]
        self._freeze()

    def _turn_to(self, yaw: float, exact: bool = False) -> None:
        t, x, y, a = self.keys[-1]
        delta = (yaw - a) if exact else _wrap(yaw - a)
        if abs(delta) > 1e-9:
            self.keys.append((t + abs(delta) / self.turn_rate, x, y, a + delta))

    def _drive(self, to: np.ndarray, length: float) -> None:
        t, _, _, a = self.keys[-1]
        self.keys.append((t + length / self.speed, float(to[0]), float(to[1]), a))

    def _freeze(self) -> None:
        k = np.asarray(self.keys, np.float64)
        self._t, self._xy, self._yaw = k[:, 0], k[:, 1:3], k[:, 3]

    def base_pose(self, t: float) -> tuple[float, float, float]:
        """``(x, y, yaw)`` of base_link in the map frame at time ``t`` seconds (t >= 0)."""
        if len(self._t) == 1:
            return float(self._xy[0, 0]), float(self._xy[0, 1]), float(self._yaw[0])
        tm = t % self.period
        i = int(np.clip(np.searchsorted(self._t, tm, side="right") - 1, 0, len(self._t) - 2))
        f = (tm - self._t[i]) / (self._t[i + 1] - self._t[i])
        xy = self._xy[i] + f * (self._xy[i + 1] - self._xy[i])
        yaw = self._yaw[i] + f * (self._yaw[i + 1] - self._yaw[i])
        return float(xy[0]), float(xy[1]), _wrap(float(yaw))


class Walkers:
    """People walking the scene's navigation graph; ``prisms(t)`` gives their bodies at ``t``.

    Each person is six cylinders (legs, arms swinging with the stride, torso, head) sharing an
    instance id ``k = 1..count``. ``robot(t) -> (2,)`` is where the robot is: people start away
    from it and step aside (up to ``DODGE`` m, sideways) when it comes close, as people do.
    """

    DODGE = 0.65  # metres: how far a person steps aside for the robot

    def __init__(self, scene: Scene, count: int, seed: int, materials: dict, robot=None):
        self.robot = robot
        rng = np.random.default_rng(np.random.SeedSequence([seed, 7]))
        self.count = count
        nodes, edges = scene.nav_nodes, scene.nav_edges
        nbrs: dict[int, list[int]] = {}
        for a, b in edges:
            nbrs.setdefault(int(a), []).append(int(b))
            nbrs.setdefault(int(b), []).append(int(a))
        starts = sorted(nbrs)
        self.tracks, self.looks = [], []
        for _ in range(count):
            walk = [starts[int(rng.integers(len(starts)))]]
            for _ in range(int(rng.integers(3, 8))):
                options = [n for n in nbrs[walk[-1]] if len(walk) < 2 or n != walk[-2]] or nbrs[walk[-1]]
                walk.append(options[int(rng.integers(len(options)))])
            walk += walk[-2::-1]
            track = self._timeline(nodes[walk], rng)
            for _ in range(20):  # do not start right in front of the robot
                if robot is None or np.hypot(*(self._at(track, 0.0)[0] - robot(0.0))) > 2.0:
                    break
                track = track[:3] + (float(rng.uniform(0, track[0][-1])),)
            self.tracks.append(track)
            self.looks.append(
                (
                    materials["cloth"][int(rng.integers(len(materials["cloth"])))],
                    materials["cloth"][int(rng.integers(len(materials["cloth"])))],
                    materials["skin"][int(rng.integers(len(materials["skin"])))],
                    float(rng.uniform(0.92, 1.08)),
                    float(rng.uniform(0.18, 0.23)),
                )
            )

    @staticmethod
    def _timeline(pts: np.ndarray, rng) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
        """Times, positions, cumulative distance of a walk with pauses; plus a start offset."""
        speed = float(rng.uniform(0.9, 1.4))
        times, xy, dist = [0.0], [pts[0]], [0.0]
        for p in pts[1:]:
            step = float(np.hypot(*(p - xy[-1])))
            times.append(times[-1] + step / speed)
            xy.append(p)
            dist.append(dist[-1] + step)
            if rng.random() < 0.25:  # stop for a moment (chatting, looking at a poster)
                times.append(times[-1] + float(rng.uniform(1.0, 4.0)))
                xy.append(p)
                dist.append(dist[-1])
        return np.asarray(times), np.asarray(xy), np.asarray(dist), float(rng.uniform(0, times[-1]))

    def state(self, t: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Positions ``(n, 2)``, headings ``(n, 2)``, walked distance ``(n,)``, moving ``(n,) bool``."""
        now = [self._at(track, t) for track in self.tracks]
        pos = np.asarray([p for p, _, _, _ in now]).reshape(-1, 2)
        head = np.asarray([h for _, h, _, _ in now]).reshape(-1, 2)
        dist = np.asarray([w for _, _, w, _ in now])
        moving = np.asarray([m for _, _, _, m in now], bool)
        if self.robot is not None and self.count:
            pos = self._dodge(pos, head, t)
            before = self._dodge(np.asarray([self._at(track, t - 0.05)[0] for track in self.tracks]), head, t - 0.05)
            moving |= np.hypot(*(pos - before).T) > 0.005  # stepping aside is moving too
        return pos, head, dist, moving

    def _dodge(self, pos: np.ndarray, head: np.ndarray, t: float) -> np.ndarray:
        """Push people within ``DODGE`` m of the robot sideways (to the side they are on)."""
        away = pos - np.asarray(self.robot(max(t, 0.0)))
        side = np.stack([-head[:, 1], head[:, 0]], axis=1)
        sign = np.where(np.sum(away * side, axis=1) < 0, -1.0, 1.0)
        push = np.maximum(self.DODGE - np.hypot(*away.T), 0.0)
        return pos + (sign * push)[:, None] * side

    @staticmethod
    def _at(track, t: float):
        """Position, heading, walked distance and moving flag of one track at ``t``."""
        times, xy, walked, offset = track
        tm = (t + offset) % times[-1]
        i = int(np.clip(np.searchsorted(times, tm, side="right") - 1, 0, len(times) - 2))
        f = (tm - times[i]) / max(times[i + 1] - times[i], 1e-9)
        step = xy[i + 1] - xy[i]
        length = float(np.hypot(*step))
        if length > 1e-9:
            head = step / length
        else:  # paused: keep facing along the previous leg
            prev = xy[i] - xy[max(i - 1, 0)]
            head = prev / max(float(np.hypot(*prev)), 1e-9)
        return xy[i] + f * step, head, walked[i] + f * (walked[i + 1] - walked[i]), length > 1e-9

    def prisms(self, t: float) -> tuple[Prisms, np.ndarray]:
        """Body cylinders at time ``t`` and ``moving (count + 1,) bool`` indexed by instance id."""
        moving_by_id = np.zeros(self.count + 1, bool)
        if self.count == 0:
            return Prisms.from_rows([]), moving_by_id
        pos, head, dist, moving = self.state(t)
        moving_by_id[1:] = moving
        rows = []
        for k in range(self.count):
            shirt, trousers, skin, s, r = self.looks[k]
            fwd, side = head[k], np.array([-head[k][1], head[k][0]])
            swing = math.sin(2 * math.pi * dist[k] / 1.4)
            parts = [  # (forward offset, lateral offset, radius, z0, z1, material)
                (0.18 * swing, 0.1, 0.08, 0.0, 0.85 * s, trousers),
                (-0.18 * swing, -0.1, 0.08, 0.0, 0.85 * s, trousers),
                (-0.12 * swing, r + 0.06, 0.05, 0.85 * s, 1.42 * s, shirt),
                (0.12 * swing, -r - 0.06, 0.05, 0.85 * s, 1.42 * s, shirt),
                (0.0, 0.0, r, 0.85 * s, 1.47 * s, shirt),
                (0.0, 0.0, 0.1, 1.47 * s, 1.72 * s, skin),
            ]
            for ahead, lateral, rad, z0, z1, mat in parts:
                c = pos[k] + ahead * fwd + lateral * side
                rows.append((c[0], c[1], rad, rad, 0.0, z0, z1, mat, mat, k + 1, True))
        return Prisms.from_rows(rows), moving_by_id
