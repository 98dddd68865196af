"""Explicit FEM against SDF colliders: gradients and a resting block (float64).

One small model per dimension (a module fixture: compiling the solver dominates): a soft
block over a box collider (tilted; collider 0) and another over a sphere (collider 1),
each block 2 cells long, landing with some sliding. The gradient checks follow
test_gradients.py (its :class:`~tests.contact._zoo.Probe`): a random linear function of
one block's final positions and velocities, against central differences, with respect to
its collider's contact parameters (stiffness, damping, friction), shape parameter
(half extents, radius), per-step pose controls (position, velocity, rotation, angular
velocity), and upstream inputs (the block's initial state, shear modulus and density),
with the collider static and moving. Contact is smoothed (2 mm, 2 cm/s) so the loss is
smooth and central differences are a fair reference.
"""

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from diffsim.autodiff import Rollout
from diffsim.contact import static_trajectory, trajectory_controls
from diffsim.scene import load_scene
from diffsim.solvers.fem import FEMBuilder, FEMConfig, SolverFEM, mesh

from ._zoo import CONTACT, DT, GRAD_STEPS, Probe

ROOT = Path(__file__).resolve().parents[2]
DENSITY = 20.0      # kg/m^3, 2D (per metre of thickness): 0.1 kg blocks, vertices of ~17 g
YOUNG = 5e3         # Pa: waves cross a 5 cm cell in ~3 ms, above the 0.5 ms substep
SIZE = 0.1          # m, block length (2 cells); height (and 3D width) SIZE / 2 (1 cell)
SHAPE = {"box": "collider_half_extents", "sphere": "collider_radius"}


def _point(dim, x, up):
    p = np.zeros(dim)
    p[0], p[-1] = x, up
    return p


def build_fem_lab(dim: int, gap: float = 0.012):
    """Two soft blocks, each ``gap`` [m] above its collider and moving at (0.3, -0.4) m/s.

    Returns a namespace with ``dim, model, solver, blocks`` (collider index ->
    ``(vertex ids, element ids)``), the shape :class:`Probe` reads.
    """
    b = FEMBuilder(dim)
    tilt = 0.15 if dim == 2 else [np.cos(0.075), 0.0, np.sin(0.075), 0.0]  # about y in 3D
    box = b.add_collider_box(np.full(dim, 0.1) + 0.2 * np.eye(dim)[0], position=_point(dim, 0.0, 0.0),
                             rotation=tilt, kinematic=True, name="pusher", **CONTACT)
    sphere = b.add_collider_sphere(0.25, position=_point(dim, 1.0, 0.0), kinematic=True, **CONTACT)
    blocks = {}
    for k, x in ((box, 0.0), (sphere, 1.0)):
        if dim == 2:
            m = mesh.rectangle((2, 1), (SIZE, SIZE / 2), (x - SIZE / 2, 0.3))
        else:
            m = mesh.box((2, 1, 1), (SIZE, SIZE / 2, SIZE / 2), (x - SIZE / 2, -SIZE / 4, 0.3))
        # 3D: the 2D block's mass (0.1 kg) in a 5 cm thick block, which keeps contact
        # damping stable (c h / m_i < 2, docs/contact.md)
        density = DENSITY if dim == 2 else DENSITY / (SIZE / 2)
        blocks[k] = b.add_mesh(m, density=density, youngs_modulus=YOUNG, poisson_ratio=0.3,
                               velocity=_point(dim, 0.3, -0.4))
    b.set_damping(0.0, 2e-3)  # Rayleigh beta: damps the blocks' ringing
    model = b.finalize()
    solver = SolverFEM(model, FEMConfig(substeps=2), window=GRAD_STEPS)
    x = model.meta["initial_state"]["x"]
    for _ in range(3):  # lower each block until it hangs `gap` above its collider
        d = solver.colliders.query(x)[0]
        for k, (vids, _) in blocks.items():
            x[:, vids, -1] -= d[0, vids, k].min() - gap
    return SimpleNamespace(dim=dim, model=model, solver=solver, blocks=blocks)


@pytest.fixture(scope="module")
def lab2():
    return build_fem_lab(2)


def moving_controls(lab, steps: int) -> dict:
    """The box rises at 0.2 m/s and turns at 0.5 rad/s (3D: about y); the sphere drifts
    at (0.1, 0.05) m/s (sideways and up, into its block)."""
    traj = static_trajectory(lab.model, steps)
    t = DT * np.arange(steps + 1)
    traj["position"][:, 0, 0, -1] += 0.2 * t
    traj["position"][:, 0, 1, 0] += 0.1 * t
    traj["position"][:, 0, 1, -1] += 0.05 * t
    if lab.dim == 2:
        traj["rotation"][:, 0, 0] += 0.5 * t
    else:
        half = 0.5 * (0.15 + 0.5 * t)
        traj["rotation"][:, 0, 0] = np.stack([np.cos(half), 0 * t, np.sin(half), 0 * t], axis=1)
    return trajectory_controls(traj["position"], traj["rotation"], DT)


def _groups(lab, typ: str) -> dict:
    k = 0 if typ == "box" else 1
    vids, eids = lab.blocks[k]
    groups = {n: ("param", f"collider_{n}", (slice(None), k)) for n in ("stiffness", "damping", "friction")}
    groups["shape"] = ("param", SHAPE[typ], (slice(None), k))
    for n in ("position", "velocity", "rotation", "angular_velocity"):
        groups[n] = ("control", f"collider_{n}", (slice(None), 0, k))
    if typ == "sphere":
        del groups["rotation"]  # a sphere is rotation invariant: the gradient is exactly 0
    groups["x0"] = ("initial", "x", (0, vids))
    groups["v0"] = ("initial", "v", (0, vids))
    groups["element_mu"] = ("param", "element_mu", (slice(None), eids))
    groups["element_density"] = ("param", "element_density", (slice(None), eids))
    return groups


def _check(lab, typ: str, moving: bool):
    k = 0 if typ == "box" else 1
    controls = moving_controls(lab, GRAD_STEPS) if moving else None
    probe = Probe(lab, lab.blocks[k][0], controls=controls)
    probe.check(_groups(lab, typ), f"{lab.dim}D {typ} moving={moving}", required=("stiffness", "friction"))


@pytest.mark.parametrize("moving", [False, True], ids=["static", "moving"])
@pytest.mark.parametrize("typ", ["box", "sphere"])
def test_fem_collider_gradients_2d(lab2, typ, moving):
    _check(lab2, typ, moving)


@pytest.mark.slow  # compiling the 3D FEM kernels; the quaternion pose path
@pytest.mark.parametrize("typ", ["box", "sphere"])
def test_fem_collider_gradients_3d(typ):
    _check(_lab3(), typ, moving=True)


_LAB3 = []


def _lab3():
    if not _LAB3:
        _LAB3.append(build_fem_lab(3))
    return _LAB3[0]


def test_block_rests_on_box_at_predicted_depth(lab2):
    """A block at rest on a flat box sinks by the mean depth ``M g / (n_b k)``.

    Reference: at rest (``v = 0``, so no damping or friction force) with sharp contact
    (``eps_d = 0``), force balance on the whole block gives ``sum_i k d_i = M g`` over the
    ``n_b`` bottom vertices, whatever the block's elastic deformation: their mean
    penetration is ``M g / (n_b k)`` (0.16 mm here). The box is turned flat through its
    rotation control and the block starts at rest, 5 mm above it.
    """
    model, solver = lab2.model, lab2.solver
    vids, eids = lab2.blocks[0]
    steps = 600  # 0.6 s: the contact (damping ratio 0.4) and the block (Rayleigh) settle
    saved = {n: model.get(n) for n in ("collider_smoothing",)}
    model.set("collider_smoothing", np.zeros_like(saved["collider_smoothing"]))
    try:
        traj = static_trajectory(model, steps)
        traj["rotation"][:] = 0.0
        controls = trajectory_controls(traj["position"], traj["rotation"], DT)
        init = model.initial_state()
        top = model.get("collider_half_extents")[0, 0, 1]
        X = init["x"][0, vids]
        init["x"][0, vids, 1] += top + 5e-3 - X[:, 1].min()
        init["v"][:] = 0.0
        out = Rollout(solver, steps, DT, record=("x", "v")).forward(init, controls=controls)
    finally:
        for n, v in saved.items():
            model.set(n, v)
    x, v = out["x"][-1, 0, vids], out["v"][-1, 0, vids]
    assert np.abs(v).max() < 1e-4, np.abs(v).max()
    depth = top - x[:, 1]
    bottom = depth > 0
    n_b = int(bottom.sum())
    mass = DENSITY * SIZE * SIZE / 2
    k = model.get("collider_stiffness")[0, 0]
    expected = mass * 9.81 / (n_b * k)
    assert n_b == 3  # the 3 bottom vertices, and no other
    assert depth[bottom].mean() == pytest.approx(expected, rel=1e-3)
    assert depth.max() < 2 * expected  # nothing sinks through


def test_implicit_integrators_refuse_sdf_colliders(lab2):
    with pytest.raises(ValueError, match="ground contact only.*'box', 'sphere'.*integrator='explicit'"):
        SolverFEM(lab2.model, FEMConfig(integrator="implicit"))


def test_scene_plank_lands_on_box_and_sphere():
    """scenes/fem_colliders.toml: a 3.6 kg plank (21 vertices) lands across a box and a
    sphere at 0.3 m/s and comes to rest on both. The impact depth stays within a few
    ``v / omega`` (omega = sqrt(k / m_i) ~ 420 rad/s for a 0.17 kg vertex: 0.7 mm), and at
    rest each support vertex carries about half the weight: ``M g / (2 k)`` = 0.6 mm."""
    scene = load_scene(ROOT / "scenes" / "fem_colliders.toml", window=1)
    x = scene.rollout(steps=250, record=("x",))["x"]
    assert np.all(np.isfinite(x))
    dist = np.stack([scene.solver.colliders.query(x[f])[0] for f in range(0, 251, 5)])  # [F, B, N, K]
    assert dist.min() > -6e-3, float(dist.min())            # nothing goes through
    rest = dist[-1, 0].min(axis=0)                          # per collider, at 0.5 s
    assert np.all(rest < 0) and np.all(rest > -1e-3), rest  # resting on both, within 1 mm
