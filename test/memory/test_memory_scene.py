"""The memory tests' box room (helpers/scene.py) is what it claims: exact depth of its walls."""

import numpy as np
from helpers.scene import ROOM, box_room_depth, look_at

from mirage_ros import geometry as g


def test_box_room_depth_hits_the_wall_ahead():
    K = g.Intrinsics(40.0, 40.0, 15.5, 11.5, 32, 24)
    T = look_at([0, 0, 0], [1, 0, 0])
    depth = box_room_depth(K, T)
    assert depth[11:13, 15:17] == __import__("pytest").approx(3.0, abs=0.2)
    points = g.transform_points(T, g.backproject(depth, K).reshape(-1, 3))
    assert np.all(np.isclose(np.abs(points), ROOM, atol=1e-4).any(axis=1))
