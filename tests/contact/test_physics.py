"""Contact physics against closed-form answers.

* A particle on a plane inclined by ``alpha`` (a rotated half-space collider) with Coulomb
  friction ``mu`` sticks when ``tan(alpha) < mu`` and otherwise slides with
  ``a = g (sin(alpha) - mu cos(alpha))``.
* A particle at rest on a penalty contact of stiffness ``k`` sinks by ``m g / k``; with a
  depth smoothing length ``eps`` the softplus force ``k eps log(1 + exp(d / eps))`` balances
  ``m g`` at ``d = eps log(exp(m g / (k eps)) - 1)``.
* A particle sliding at ``v0`` on a level plane stops after ``v0^2 / (2 mu g)``.
* Particles dropped onto every collider type, static, never end inside one.
"""

import numpy as np
import pytest

from diffsim.autodiff import Rollout

from ._zoo import DT, MASS, TYPES

G = 9.81


def _lab_reset(model, B):
    model.set("collider_stiffness", 1e3)
    model.set("collider_damping", 2.0)
    model.set("collider_friction", 0.5)
    model.set("collider_smoothing", 0.0)
    model.set("collider_friction_smoothing", 1e-3)


def test_incline_rest_and_sliding(plane_lab):
    model, solver = plane_lab
    B, T, mu = model.num_envs, 600, 0.5
    env = np.arange(B)
    _lab_reset(model, B)
    # envs 0-3: inclines (tan = 0.20, 0.42 stick; 0.68, 1.03 slide); 4-6: resting on level
    # ground with k = 1e3, 4e3 and (6) smoothing 2e-4; 7: sliding to a stop. Others idle.
    alpha = np.zeros(B)
    alpha[:4] = [0.2, 0.4, 0.6, 0.8]
    k = np.full(B, 1e3)
    k[5] = 4e3
    eps = np.zeros(B)
    eps[6] = 2e-4
    damping = np.where((env >= 4) & (env <= 6), 10.0, 2.0)  # settle bounces quickly
    model.set("collider_stiffness", k[:, None])
    model.set("collider_smoothing", eps[:, None])
    model.set("collider_damping", damping[:, None])
    normal = np.stack([-np.sin(alpha), np.cos(alpha)], 1)
    along = np.stack([np.cos(alpha), np.sin(alpha)], 1)  # up the slope
    x0 = -(MASS * G * np.cos(alpha) / k)[:, None] * normal  # at the contact's equilibrium depth
    x0[4:7] = [0.0, 0.01]
    v0 = np.zeros((B, 2))
    v0[2:4] = -0.05 * along[2:4]  # a nudge downhill, so friction acts from the first step
    v0[7] = [1.0, 0.0]
    rot = np.repeat(solver.default_controls("collider_rotation")[None], T, 0)  # [T, B, K]
    rot[:, :, 0] = alpha  # tilt the ground
    try:
        out = Rollout(solver, T, DT, record=("x", "v")).forward(
            {"x": x0[:, None], "v": v0[:, None]}, controls={"collider_rotation": rot})
    finally:
        _lab_reset(model, B)
    x, v = out["x"][:, :, 0], out["v"][:, :, 0]
    s = -np.einsum("tbi,bi->tb", x - x0[None], along)  # distance travelled downhill

    # sticking (tan alpha < mu): friction smoothing lets it creep at ~eps_v tan/mu, and
    # explicit friction chatters within ~mu g dt of zero velocity: bounded, not sliding
    for b in (0, 1):
        assert np.tan(alpha[b]) < mu
        assert abs(s[-1, b]) < 5e-3 and np.abs(v[-100:, b]).max() < 1e-2
    # sliding: symplectic Euler gives s_n = v0 n dt + a dt^2 n (n + 1) / 2 exactly
    for b in (2, 3):
        assert np.tan(alpha[b]) > mu
        a_ref = G * (np.sin(alpha[b]) - mu * np.cos(alpha[b]))
        a = (s[-1, b] - 0.05 * T * DT) / (DT ** 2 * T * (T + 1) / 2)
        assert a == pytest.approx(a_ref, rel=1e-3)
    # rest penetration m g / k, and its softplus counterpart
    depth = -x[-1, 4:7, 1]
    assert depth[0] == pytest.approx(MASS * G / 1e3, rel=1e-3)
    assert depth[1] == pytest.approx(MASS * G / 4e3, rel=1e-3)
    e = 2e-4
    assert depth[2] == pytest.approx(e * np.log(np.exp(MASS * G / (1e3 * e)) - 1.0), rel=1e-3)
    # sliding to a stop: v0^2 / (2 mu g), up to one step of travel
    assert x[-1, 7, 0] == pytest.approx(1.0 / (2 * mu * G), abs=2 * DT * 1.0)
    assert abs(v[-1, 7, 0]) < 1e-2


@pytest.mark.parametrize("dim", [2, 3])
def test_drops_never_end_inside_a_collider(dim, zoo2, zoo3):
    # Free particles dropped (and, at the wall, thrown) onto every static collider settle
    # on the surface. With smoothing 2 mm and m g / k = 0.25 mm they float slightly above
    # it (the softplus balance, see test above), so any penetration at rest is a failure of
    # the collider, not of the contact law: tolerance 0.5 mm at the end. During an impact
    # at v = sqrt(2 g 0.3 m) = 2.4 m/s a penalty contact sinks up to v / omega = 1.2 cm
    # (omega = sqrt(k / m) = 200 1/s): tolerance 2 cm.
    zoo = zoo2 if dim == 2 else zoo3
    s = zoo.solver
    s.write_controls({}, 0, s.window)  # static poses (the gradient tests move the box)
    out = Rollout(s, 600, DT, record=("x",)).forward(zoo.model.initial_state())
    drops = sorted(i for ids in zoo.drops.values() for i in ids)
    d_end = s.colliders.query(out["x"][-1][:, drops])[0][0]
    assert d_end.min() > -5e-4, {TYPES[k]: float(d_end[:, k].min()) for k in range(len(TYPES))}
    closest = np.full(len(drops), np.inf)
    for f in range(0, 601, 5):
        d = s.colliders.query(out["x"][f][:, drops])[0][0]
        assert d.min() > -2e-2
        closest = np.minimum(closest, d.min(axis=1))
    assert np.all(closest < 5e-3), closest  # not vacuous: every particle made contact
