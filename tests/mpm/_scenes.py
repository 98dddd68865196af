"""Tiny MPM scenes shared by the tests of this directory.

Compilation dominates the cost of these tests (one set of kernels per solver), so the
scenes are built once per session (see conftest.py) and reused: the mixed scene holds one
body of every material, a muscle, the ground, friction walls and a box collider on a 16^2
grid, so a single compiled solver covers every gradient path in 2D.
"""

import numpy as np

from diffsim.solvers.mpm import MPMBuilder

DT = 4e-3
STEPS = 12


def build_mixed(num_envs: int = 2):
    """2D, 16^2 grid on [0, 1]^2 (walls below x = 0.1875 and above 0.8125): five small
    bodies (corotated muscle, von Mises, snow, sand, fluid) landing on the ground (y = 0.2)
    and on a box collider, the fluid running into the right wall."""
    b = MPMBuilder(dim=2, particle_spacing=1 / 32, seed=1)
    b.add_ground(height=0.2, friction=0.4)
    b.set_walls(friction=0.3)
    b.add_collider_box([0.1, 0.05], position=[0.5, 0.22], friction=0.6)  # top face at y = 0.27
    act = b.add_actuator_group(direction=[0.3, 1.0], strength=3e3)
    down = [0.0, -1.5]
    b.add_box([0.20, 0.22], [0.09, 0.09], material="corotated", youngs_modulus=2e4, density=1000,
              velocity=[0.4, -0.8], actuator=act, jitter=0.3, name="muscle")
    b.add_box([0.32, 0.22], [0.08, 0.08], material="snow", youngs_modulus=2e4, density=400,
              velocity=down, critical_compression=0.01, critical_stretch=0.005, hardening=8.0,
              jitter=0.3, name="snow")
    b.add_box([0.45, 0.31], [0.1, 0.06], material="von_mises", youngs_modulus=2e4, yield_stress=150.0,
              density=1000, velocity=[0.6, -1.5], jitter=0.3, name="metal")
    b.add_box([0.59, 0.22], [0.08, 0.08], material="drucker_prager", youngs_modulus=2e4,
              density=1500, velocity=down, friction_angle=0.5, cohesion=1e-3, jitter=0.3, name="sand")
    b.add_box([0.70, 0.22], [0.08, 0.08], material="fluid", bulk_modulus=1e4, density=1000,
              velocity=[0.8, -0.5], jitter=0.3, name="water")
    return b.finalize(num_envs)


def mixed_initial_state(model) -> dict:
    """The builder's state, with the sand pre-compressed and converging.

    Sand at rest sits on the apex of the Drucker-Prager cone (``F = I``, no volume
    change), where the return mapping has a kink: central differences average the two
    one-sided slopes and the adjoint takes one. Compressed, it stays on smooth branches.
    """
    state = model.initial_state()
    body = next(b for b in model.meta["bodies"] if b["name"] == "sand")
    sl = slice(body["start"], body["start"] + body["count"])
    x = state["x"][:, sl]
    state["F"][:, sl] = 0.97 * np.eye(2)
    state["v"][:, sl] += -2.0 * (x - x.mean(axis=1, keepdims=True))
    return state
