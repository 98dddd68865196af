"""Robot topologies shared by our benchmark worker and the DiffTaichi peer wrapper.

``cells(size)`` lists ``(i, j, actuated)`` grid cells: ``"robot2"`` is DiffTaichi's
mass-spring robot C (its ``mass_spring_robot_config.py``, robot index 2); ``"x10"`` and
``"x100"`` are rectangular blocks with an actuated bottom row and about 10x and 100x its
springs.
"""

ROBOT2 = [(2, 0, 1), (0, 0, 1), (0, 1, 1), (0, 2, 0), (1, 2, 0), (2, 1, 1), (2, 2, 0), (2, 3, 0), (2, 4, 0)]
BLOCKS = {"x10": (11, 10), "x100": (76, 15)}


def cells(size: str):
    if size == "robot2":
        return list(ROBOT2)
    w, h = BLOCKS[size]
    return [(i, j, 1 if j == 0 else 0) for i in range(w) for j in range(h)]
