"""Contact gradients against float64 central differences, for every collider type.

Each case lands a two-particle dumbbell on one collider with sliding, on a moving pose
trajectory for the kinematic box, and checks the gradient of a random linear function of
the final state with respect to: the collider's contact parameters (stiffness, damping,
friction), its shape parameters (radius, half length, half extents, heightfield samples,
mesh distance samples), its per-step pose controls (position, velocity, rotation,
angular velocity) and the dumbbell's initial state (in 3D: the paths that differ from 2D). Contact is smoothed (2 mm, 2 cm/s),
so the loss is smooth and central differences are a fair reference.
"""

import numpy as np
import pytest

from diffsim.autodiff.gradcheck import format_table, gradcheck

from ._zoo import GRAD_STEPS, TYPES, Probe, pusher_controls

SHAPE = {"sphere": ["collider_radius"], "capsule": ["collider_radius", "collider_half_length"],
         "cylinder": ["collider_radius", "collider_half_length"], "box": ["collider_half_extents"],
         "heightfield": ["heightfield_height"], "mesh": ["mesh_sdf"], "plane": []}


def _groups(zoo, typ):
    k = zoo.k(typ)
    i, j = zoo.dumbbells[k]
    every_step = (slice(None), 0, k)
    groups = {n: ("param", f"collider_{n}", (slice(None), k)) for n in ("stiffness", "damping", "friction")}
    for n in ("position", "velocity", "rotation", "angular_velocity"):
        groups[n] = ("control", f"collider_{n}", every_step)
    if typ == "sphere":
        del groups["rotation"]  # a sphere is rotation invariant: the gradient is exactly 0
    groups["x0"] = ("initial", "x", (0, [i, j]))
    groups["v0"] = ("initial", "v", (0, [i, j]))
    if zoo.dim == 3:
        # translation and initial velocity take the same code path as in 2D (checked
        # there); 3D keeps the quaternion, angular velocity and 3D shape paths
        for n in ("position", "velocity", "v0"):
            del groups[n]
    for name in SHAPE[typ]:
        groups[name] = ("param", name, (slice(None), k) if name.startswith("collider") else (slice(None),))
    return groups


def _check(zoo, typ):
    probe = Probe(zoo, zoo.dumbbells[zoo.k(typ)], controls=pusher_controls(zoo, GRAD_STEPS))
    probe.check(_groups(zoo, typ), f"{zoo.dim}D {typ}")


@pytest.mark.parametrize("typ", TYPES)
def test_gradients_2d(zoo2, typ):
    _check(zoo2, typ)


@pytest.mark.slow  # compiling the 3D zoo dominates; 3D ground contact is in tests/grad
@pytest.mark.parametrize("typ", TYPES)
def test_gradients_3d(zoo3, typ):
    _check(zoo3, typ)


def test_gradient_reaches_upstream_spring_parameters(zoo2):
    # Everything upstream of contact: the dumbbell's spring and the particle masses.
    k = zoo2.k("sphere")
    i, j = zoo2.dumbbells[k]
    spring = int(np.flatnonzero((zoo2.model.topology["spring_indices"] == [i, j]).all(axis=1))[0])
    probe = Probe(zoo2, (i, j))
    groups = {"spring_stiffness": ("param", "spring_stiffness", (slice(None), spring)),
              "particle_mass": ("param", "particle_mass", (slice(None), [i, j]))}
    try:
        rows = gradcheck(probe.loss_and_grad(groups), probe.value(groups), steps=(1e-5,))
    finally:
        probe.reset()
    assert all(r.passed for r in rows), format_table(rows)
