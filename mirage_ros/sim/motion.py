"""What moves: the robot's camera path and people walking (functions of time alone, so any ``t``
can be evaluated in any order and the result never depends on what was rendered before).

Robot paths are keyframed like a differential-drive robot: turn in place at a waypoint at
``turn_rate`` rad/s, then drive straight at ``speed`` m/s (linear interpolation in between).
Actors walk nav-graph edges back and forth, pausing now and then, and give way to the robot
(wait, step aside); while standing they are not moving (they keep their instance id but leave the
motion mask).
"""

from __future__ import annotations

import math

import numpy as np

from mirage_ros.errors import InvalidInput
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
    instance id ``k = 1..count``. ``robot(t) -> (2,)`` is where the camera is (map frame, metres).
    People give way to the robot, as people do around a mobile robot (the robot itself does not
    avoid anyone):

    - **wait**: a person within ``YIELD_RADIUS`` of the camera does not take a step that brings
      them closer while the robot is driving; they stand (and leave the motion mask) until the
      step no longer closes in;
    - **step aside**: when the camera is, or within ``LOOKAHEAD_S`` will be, nearer than
      ``CLEAR_RADIUS``, the person steps away from it, sideways to the robot's heading, at up to
      ``SIDESTEP_SPEED`` (against a wall: on ahead of the robot, or back); clear again, they
      drift back onto their path.

    This needs each person's past, so it is integrated from ``t = 0`` in fixed ``STEP_S`` steps
    (cached, extended on demand) and interpolated in between: any ``t`` can still be asked in any
    order and the answer depends only on ``(scene, seed, t)``.
    """

    YIELD_RADIUS = 1.3  # metres (person centre to camera): do not walk closer than this
    CLEAR_RADIUS = 0.8  # metres: step aside to keep at least this far from the camera
    LOOKAHEAD_S = (0.5, 1.0)  # seconds: also keep clear of where the camera will be this soon
    SIDESTEP_SPEED = 1.5  # m/s: a brisk step aside
    RETURN_SPEED = 0.4  # m/s: drifting back onto the path once clear
    STEP_S = 0.05  # seconds: integration step
    BODY_RADIUS = 0.35  # metres: shoulders and arms; people do not step into walls

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
        self._obstacles = scene.walls.concat(scene.objects)
        # integrated yielding state per step, from step _base on: own walking clock (s) and
        # offset from the path (m)
        self._base = 0
        self._clock = [np.zeros(count)]
        self._offset = [np.zeros((count, 2))]

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
        if self.robot is None or not self.count:
            now = [self._at(track, t) for track in self.tracks]
            return self._stack(now)
        step = max(t, 0.0) / self.STEP_S
        i = int(math.floor(step + 1e-9))
        if i < self._base:
            raise InvalidInput("t", f"{t:.3f} s is before the people's kept history (forget_before)")
        self._integrate(i + 1)
        f = min(max(step - i, 0.0), 1.0)
        k = i - self._base
        clock = (1 - f) * self._clock[k] + f * self._clock[k + 1]
        offset = (1 - f) * self._offset[k] + f * self._offset[k + 1]
        pos, head, dist, _ = self._stack([self._at(track, c) for track, c in zip(self.tracks, clock)])
        ends = [self._position(j) for j in (i, i + 1)]
        moving = np.hypot(*(ends[1] - ends[0]).T) > 0.05 * self.STEP_S  # faster than 5 cm/s
        return pos + offset, head, dist, moving

    def forget_before(self, t: float) -> None:
        """Drop the integrated state before ``t`` seconds: a camera that only moves on (the
        ``sim_camera`` node) keeps memory flat instead of growing with every step since 0. Asking
        :meth:`state` for an earlier time then raises ``InvalidInput``."""
        drop = min(int(math.floor(max(t, 0.0) / self.STEP_S)) - self._base, len(self._clock) - 1)
        if drop > 0:
            del self._clock[:drop], self._offset[:drop]
            self._base += drop

    def _position(self, i: int) -> np.ndarray:
        """``(n, 2)`` positions at integration step ``i``."""
        k = i - self._base
        path = np.asarray([self._at(track, c)[0] for track, c in zip(self.tracks, self._clock[k])])
        return path.reshape(-1, 2) + self._offset[k]

    def _integrate(self, last: int) -> None:
        """Extend the yielding state up to step ``last`` (see the class docstring)."""
        dt = self.STEP_S
        while self._base + len(self._clock) <= last:
            i = self._base + len(self._clock) - 1
            t = i * dt
            camera = np.asarray(self.robot(t))
            ahead = [np.asarray(self.robot(t + s)) for s in self.LOOKAHEAD_S]
            velocity = (np.asarray(self.robot(t + dt)) - camera) / dt
            speed = float(np.hypot(*velocity))
            clock, offset = self._clock[-1].copy(), self._offset[-1].copy()
            for k, track in enumerate(self.tracks):
                here = self._at(track, clock[k])[0] + offset[k]
                step = self._at(track, clock[k] + dt)[0] + offset[k]
                gap, next_gap = float(np.hypot(*(here - camera))), float(np.hypot(*(step - camera)))
                if not (speed > 0.05 and next_gap < self.YIELD_RADIUS and next_gap < gap):
                    clock[k] += dt
                    here = step
                offset[k] += self._sidestep(here, camera, ahead, velocity, speed, offset[k])
            self._clock.append(clock)
            self._offset.append(offset)

    def _sidestep(self, here, camera, ahead, velocity, speed, offset) -> np.ndarray:
        """``(2,)`` move of one person's path offset over one step."""
        dt = self.STEP_S
        # the nearest of now and soon decides: a person ahead makes room before the robot arrives
        near = min([camera, *ahead], key=lambda c: float(np.hypot(*(here - c))))
        away = here - near
        gap = float(np.hypot(*away))
        if gap < self.CLEAR_RADIUS:
            away = away / max(gap, 1e-6)
            options = [away]
            if speed > 0.05:  # prefer sideways to the robot's heading, to the side already taken;
                heading = velocity / speed  # pinned against a wall, walk on ahead of it or back
                side = away - np.dot(away, heading) * heading
                norm = float(np.hypot(*side))
                side = side / norm if norm > 1e-3 else np.array([-heading[1], heading[0]])
                options = [side + 0.5 * away, away, heading, -heading]
            size = min(self.SIDESTEP_SPEED * dt, self.CLEAR_RADIUS - gap + 0.01)
            for direction in options:  # the first way that opens the gap, not into a wall
                direction = direction / float(np.hypot(*direction))
                if np.dot(direction, away) > 0.1 and self._room(here, direction) > self.BODY_RADIUS + size:
                    return direction * size
            return np.zeros(2)
        norm = float(np.hypot(*offset))
        if norm < 1e-9 or gap < self.CLEAR_RADIUS + 0.2:  # stay aside while the robot is close
            return np.zeros(2)
        return -offset / norm * min(self.RETURN_SPEED * dt, norm)

    def _room(self, xy: np.ndarray, direction: np.ndarray) -> float:
        """Free distance (m) from ``xy (2,)`` along the unit ``direction (2,)`` to a wall/object."""
        t_in = self._obstacles.cast(np.asarray(xy, np.float64), direction[None, :])[0]
        return float(t_in.min()) if t_in.size else float("inf")

    @staticmethod
    def _stack(now) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        pos = np.asarray([p for p, _, _, _ in now]).reshape(-1, 2)
        head = np.asarray([h for _, h, _, _ in now]).reshape(-1, 2)
        dist = np.asarray([w for _, _, w, _ in now])
        moving = np.asarray([m for _, _, _, m in now], bool)
        return pos, head, dist, moving

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
