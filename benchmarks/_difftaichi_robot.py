"""Run DiffTaichi's mass_spring.py on one of our robot sizes, unchanged.

Usage: python _difftaichi_robot.py SIZE PEER/examples/mass_spring.py
It puts a ``mass_spring_robot_config`` module whose robot 2 is the requested topology
(built with the same add_mesh_square rules as DiffTaichi's robot C) into ``sys.modules``,
then hands over to shared/peers/run_difftaichi.py, which times the Tape blocks.
"""

import os
import runpy
import sys
import types

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _robots import cells  # noqa: E402

size, script = sys.argv[1], sys.argv[2]
objects, springs, points, point_ids, mesh_springs = [], [], [], [], set()


def add_object(x):
    objects.append(list(x))
    return len(objects) - 1


def point(i, j):
    if (i, j) not in points:
        point_ids.append(add_object((i * 0.05 + 0.1, j * 0.05 + 0.1)))
        points.append((i, j))
    return point_ids[points.index((i, j))]


def spring(a, b, act):
    if (a, b) in mesh_springs or (b, a) in mesh_springs:
        return
    mesh_springs.add((a, b))
    length = ((objects[a][0] - objects[b][0]) ** 2 + (objects[a][1] - objects[b][1]) ** 2) ** 0.5
    springs.append([a, b, length, 3e4, act])


def square(i, j, act):
    a, b, c, d = point(i, j), point(i, j + 1), point(i + 1, j), point(i + 1, j + 1)
    spring(a, b, act)
    spring(c, d, act)
    for p in (a, b, c, d):
        for q in (a, b, c, d):
            if p != q:
                spring(p, q, 0.0)


def robot():
    for i, j, act in cells(size):
        square(i, j, 0.15 if act else 0.0)
    return objects, springs


config = types.ModuleType("mass_spring_robot_config")
config.robots = [robot, robot, robot]
sys.modules["mass_spring_robot_config"] = config
runner = os.environ.get("DIFFSIM_PEER_RUNNER", "/work/shared/peers/run_difftaichi.py")
sys.argv = [runner, script, "2", "train", "--iters", os.environ.get("BENCH_ITERS", "10")]
runpy.run_path(runner, run_name="__main__")
