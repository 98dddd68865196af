"""Pose trajectories to controls (and the adjoint back), and colliders as drawable dicts."""

import numpy as np
import pytest

from diffsim.contact import render_colliders, trajectory_controls, trajectory_controls_grad
from diffsim.io import render_frame_2d, render_frame_3d


def _trajectory(dim, T=6, B=2, K=3, seed=0):
    rng = np.random.default_rng(seed)
    pos = rng.normal(size=(T + 1, B, K, dim))
    if dim == 2:
        rot = rng.normal(size=(T + 1, B, K))
    else:
        rot = np.cumsum(0.1 * rng.normal(size=(T + 1, B, K, 4)), axis=0) + [1.0, 0, 0, 0]
        rot /= np.linalg.norm(rot, axis=-1, keepdims=True)
    return pos, rot


@pytest.mark.parametrize("dim", [2, 3])
def test_controls_follow_the_trajectory(dim):
    dt = 0.01
    pos, rot = _trajectory(dim)
    c = trajectory_controls(pos, rot, dt)
    np.testing.assert_allclose(c["collider_position"] + dt * c["collider_velocity"], pos[1:])
    if dim == 2:
        np.testing.assert_allclose(c["collider_rotation"] + dt * c["collider_angular_velocity"], rot[1:])
    else:
        # first order: q + dt/2 (0, omega) q points along the next quaternion for small turns
        w = c["collider_angular_velocity"]
        q = c["collider_rotation"]
        wq = np.concatenate([-np.sum(w * q[..., 1:], -1, keepdims=True),
                             q[..., :1] * w + np.cross(w, q[..., 1:])], -1)
        step = q + 0.5 * dt * wq
        step /= np.linalg.norm(step, axis=-1, keepdims=True)
        assert np.min(np.sum(step * rot[1:], -1)) > 0.999


@pytest.mark.parametrize("dim", [2, 3])
def test_controls_grad_is_the_adjoint(dim):
    dt = 0.01
    pos, rot = _trajectory(dim, seed=1)
    rng = np.random.default_rng(2)
    base = trajectory_controls(pos, rot, dt)
    cot = {n: rng.normal(size=v.shape) for n, v in base.items()}
    g = trajectory_controls_grad(cot, pos, rot, dt)

    def loss(p, r):
        return sum(np.sum(cot[n] * v) for n, v in trajectory_controls(p, r, dt).items())

    h = 1e-6
    for name, arr in (("position", pos), ("rotation", rot)):
        for flat in rng.choice(arr.size, 8, replace=False):
            d = np.zeros(arr.size)
            d[flat] = h
            d = d.reshape(arr.shape)
            args_p = (pos + d, rot) if name == "position" else (pos, rot + d)
            args_m = (pos - d, rot) if name == "position" else (pos, rot - d)
            fd = (loss(*args_p) - loss(*args_m)) / (2 * h)
            assert g[name].reshape(-1)[flat] == pytest.approx(fd, rel=1e-6, abs=1e-6)


def test_render_dicts_draw(zoo2, zoo3):
    for zoo, render, kwargs in ((zoo2, render_frame_2d, {}), (zoo3, render_frame_3d, {"up": "z"})):
        dicts = render_colliders(zoo.model)
        kinds = {d["type"] for d in dicts}
        assert {"plane", "box", "sphere", "capsule", "heightfield"} <= kinds
        img = render(zoo.model.initial_state()["x"][0], colliders=dicts, size=(96, 96), **kwargs)
        assert img.shape == (96, 96, 3) and img.std() > 0
