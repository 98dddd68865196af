"""Scene files: one TOML file describes a simulation for running, training and identification.

Public API::

    from diffsim.scene import load_scene, read_scene, dump_scene, SceneError
    scene = load_scene("scenes/mass_spring_walker.toml", num_envs=4)
    traj = scene.rollout(progress=True)            # {"x": [T+1, B, N, dim], "v": ...}
    rollout = scene.make_rollout(record=("x",))    # checkpointed, for gradients

The format is documented in ``docs/scene_format.md`` (generated from the schema by
:mod:`diffsim.scene.docs`); solver families plug in through
:mod:`diffsim.scene.solvers`.
"""

from .errors import Issue, SceneError, SceneFileNotFoundError
from .free import FreeParam
from .loader import dump_scene, dumps_scene, load_scene, plan_scene, read_scene
from .scene import Scene
from .solvers import (
    ColliderType,
    SolverKind,
    collider_types,
    register_collider,
    register_solver,
    solver_kinds,
)

__all__ = [
    "ColliderType",
    "FreeParam",
    "Issue",
    "Scene",
    "SceneError",
    "SceneFileNotFoundError",
    "SolverKind",
    "collider_types",
    "dump_scene",
    "dumps_scene",
    "load_scene",
    "plan_scene",
    "read_scene",
    "register_collider",
    "register_solver",
    "solver_kinds",
]
