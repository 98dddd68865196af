"""The MPM grid boundary condition ``ColliderSet.grid_collide``, on its own.

Three discs of radius 0.3, one per boundary kind (sticky, slip, separate; friction 0.4),
the "separate" one moving at (1, 0) m/s. Grid velocities at nodes inside each disc must
follow the reference (Stomakhin et al. 2013, as in taichi_elements), relative to the
collider's velocity ``vc``, with ``v_n`` the normal part of ``v - vc``::

    sticky:   v' = vc
    slip:     v' = vc + max(0, 1 - mu max(-v_n, 0) / |v_t|) v_t
    separate: like slip when v_n < 0, v' = v otherwise

and nodes outside keep their velocity. With a smoothing length the result blends in with
``sigmoid(-d / eps)``, and its gradient (through the Taichi adjoint) matches central
differences.
"""

import numpy as np
import pytest
import taichi as ti

from diffsim.contact import ColliderSet, control_layout, default_controls
from diffsim.core import backend
from diffsim.core.builder import MassSpringBuilder
from diffsim.solvers.base import SolverBase

CENTERS = np.array([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0]])
KINDS = ("sticky", "slip", "separate")
R, MU = 0.3, 0.4


@ti.data_oriented
class Harness:
    """Nodes ``x`` with velocities ``v_in``; ``run`` applies every collider's condition."""

    def __init__(self, n: int):
        b = MassSpringBuilder(dim=2)
        for c, kind in zip(CENTERS, KINDS):
            b.add_collider_sphere(R, position=c, friction=MU, boundary=kind)
        b.add_particle([0.0, 5.0])
        self.model = b.finalize()
        real = backend.real()
        self.controls = {name: SolverBase._make_field((1, 1, count), elem)
                         for name, (count, elem) in control_layout(self.model).items()}
        for name, f in self.controls.items():
            f.from_numpy(default_controls(self.model, name)[None])
        vel = self.controls["collider_velocity"].to_numpy()
        vel[0, 0, 2] = [1.0, 0.0]
        self.controls["collider_velocity"].from_numpy(vel)
        self.colliders = ColliderSet(self.model, self.controls, slots=1)
        self.x = ti.Vector.field(2, real, shape=(1, n), needs_grad=True)
        self.v_in = ti.Vector.field(2, real, shape=(1, n), needs_grad=True)
        self.v_out = ti.Vector.field(2, real, shape=(1, n), needs_grad=True)
        self.v_slot = ti.Vector.field(2, real, shape=(1, n))

    @ti.kernel
    def run(self):
        for b, i in self.v_in:
            self.v_out[b, i] = self.colliders.grid_collide(self.v_in[b, i], self.x[b, i], b, 0, 0.0)

    @ti.kernel
    def run_slot(self):
        # the cached-pose variant (forward only here): must give the same velocities
        for b, k in ti.ndrange(1, 3):
            self.colliders.update_frame(0, b, k, 0, 0.0)
        for b, i in self.v_in:
            self.v_slot[b, i] = self.colliders.grid_collide_slot(self.v_in[b, i], self.x[b, i], b, 0, 0)

    def apply(self, x, v, check_slot=False):
        self.x.from_numpy(x[None])
        self.v_in.from_numpy(v[None])
        self.run()
        out = self.v_out.to_numpy()[0]
        if check_slot:
            self.run_slot()
            np.testing.assert_allclose(self.v_slot.to_numpy()[0], out, atol=1e-12)
        return out


def reference(x, v):
    out = v.copy()
    for c, kind, vc in zip(CENTERS, KINDS, ([0, 0], [0, 0], [1.0, 0.0])):
        r = x - c
        dist = np.linalg.norm(r, axis=1)
        for i in np.flatnonzero(dist < R):
            n = r[i] / dist[i]
            vr = v[i] - vc
            vn = vr @ n
            vt = vr - vn * n
            scale = max(0.0, 1.0 - MU * max(-vn, 0.0) / np.linalg.norm(vt))
            if kind == "sticky" or (kind == "separate" and vn > 0):
                out[i] = vc if kind == "sticky" else v[i]
            else:
                out[i] = vc + scale * vt
    return out


N = 300


@pytest.fixture(scope="module")
def harness():
    return Harness(N)


def test_grid_conditions_match_reference(harness):
    rng = np.random.default_rng(0)
    x = rng.uniform([-0.4, -0.4], [2.4, 0.4], (N, 2))
    v = rng.normal(size=(N, 2))
    out = harness.apply(x, v, check_slot=True)
    np.testing.assert_allclose(out, reference(x, v), atol=1e-12)
    inside = np.min(np.linalg.norm(x[:, None] - CENTERS[None], axis=2), axis=1) < R
    assert 50 < inside.sum() < N - 50  # both kinds of node were exercised


def test_smoothed_grid_condition_blends_and_differentiates(harness):
    eps, n, h = 0.02, N, harness
    h.model.set("collider_smoothing", eps)
    try:
        _check_smoothed(h, eps, n)
    finally:
        h.model.set("collider_smoothing", 0.0)


def _check_smoothed(h, eps, n):
    rng = np.random.default_rng(1)
    # nodes in a band around the slip disc's surface
    ang = rng.uniform(0, 2 * np.pi, n)
    rad = R + rng.uniform(-2 * eps, 2 * eps, n)
    x = CENTERS[1] + rad[:, None] * np.stack([np.cos(ang), np.sin(ang)], 1)
    v = rng.normal(size=(n, 2))
    out = h.apply(x, v)
    d = rad - R
    w = np.where(d < 0, 1 / (1 + np.exp(d / eps)), np.exp(-d / eps) / (1 + np.exp(-d / eps)))
    vb = reference(CENTERS[1] + 0.999 * R * (x - CENTERS[1]) / rad[:, None], v)  # condition inside
    np.testing.assert_allclose(out, v + w[:, None] * (vb - v), atol=1e-10)
    # adjoint vs central differences, for the node velocities and the disc's position
    wout = rng.normal(size=(n, 2))
    h.v_in.grad.fill(0)
    h.controls["collider_position"].grad.fill(0)
    h.v_out.grad.from_numpy(wout[None])
    h.run.grad()
    g_v = h.v_in.grad.to_numpy()[0]
    g_p = h.controls["collider_position"].grad.to_numpy()[0, 0, 1]
    step = 1e-6
    for i, j in [(0, 0), (3, 1), (7, 0)]:
        dv = np.zeros_like(v)
        dv[i, j] = step
        fd = (np.sum(wout * h.apply(x, v + dv)) - np.sum(wout * h.apply(x, v - dv))) / (2 * step)
        assert g_v[i, j] == pytest.approx(fd, rel=1e-5, abs=1e-9)
    for j in range(2):
        # moving the disc by +s equals moving every node by -s
        dx = np.zeros_like(x)
        dx[:, j] = step
        fd = (np.sum(wout * h.apply(x - dx, v)) - np.sum(wout * h.apply(x + dx, v))) / (2 * step)
        assert g_p[j] == pytest.approx(fd, rel=1e-5)
