"""Penalty contact with smoothed Coulomb friction, as Taichi functions.

The normal force is a spring-damper on the penetration depth ``d``:
``f_n = max(k_e * p(d) - k_d * w(d) * v_n, 0)`` with ``p`` a softplus of width ``eps_d``
(``p(d) -> max(d, 0)`` as ``eps_d -> 0``) and ``w`` the matching sigmoid. Friction is
Coulomb's law smoothed in velocity: ``f_t = -mu f_n v_t / sqrt(|v_t|^2 + eps_v^2)``, which
is exact for ``|v_t| >> eps_v`` and viscous below it.

Why smoothing: with ``eps_d = 0`` the force switches on at first impact, and the gradient of
anything downstream with respect to the drop height jumps there. A positive ``eps_d`` makes
the force (and so the rollout) a smooth function of every parameter at the price of a
contact that starts ``~eps_d`` early and a rest penetration offset of order ``eps_d``.
"""

import taichi as ti


@ti.func
def _signed_abs(z):
    """``|z|`` whose derivative at ``z = 0`` is +1, the side the ``z >= 0`` selects take.

    ``ti.abs`` has derivative 0 at 0, which made the adjoint of :func:`softplus` at a depth
    of exactly zero (a particle resting on the ground it was placed on) 1 instead of 1/2.
    """
    return ti.select(z >= 0, z, -z)


@ti.func
def softplus(z, eps):
    """``eps * log(1 + exp(z / eps))``, stable; ``max(z, 0)`` when ``eps == 0``."""
    # Both pieces stay finite for every z (exp of a non-positive number), so the adjoint of
    # the piece a select discards is 0, never 0 * inf. With eps = 0 the correction is
    # 0 * log(1 + exp(-|z| / 1e-30)) = 0, and so is its derivative.
    e = ti.exp(-_signed_abs(z) / ti.max(eps, 1e-30))
    return ti.select(z >= 0, z, 0.0) + eps * ti.log(1.0 + e)


@ti.func
def sigmoid(z, eps):
    """Derivative of :func:`softplus` in ``z``; the step ``z > 0`` when ``eps == 0``."""
    e = ti.exp(-_signed_abs(z) / ti.max(eps, 1e-30))
    smooth = ti.select(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
    return ti.select(eps > 0, smooth, ti.select(z > 0, 1.0, 0.0))


@ti.func
def penalty_force(depth, normal, v, ke, kd, mu, eps_d, eps_v):
    """Contact force on a point [N].

    Args:
        depth: penetration depth [m] (positive inside the collider).
        normal: unit outward normal of the collider at the contact point.
        v: velocity of the point relative to the collider [m/s].
        ke: normal stiffness [N/m]; kd: normal damping [N s/m]; mu: friction coefficient.
        eps_d: depth smoothing length [m]; eps_v: friction smoothing velocity [m/s].
    """
    pen = softplus(depth, eps_d)
    active = sigmoid(depth, eps_d)
    vn = v.dot(normal)
    fn = ti.max(ke * pen - kd * active * vn, 0.0)
    vt = v - vn * normal
    # The tiny floor keeps 0/0 (no slip, eps_v = 0) finite in the forward and the adjoint.
    ft = -mu * fn * vt / ti.sqrt(vt.dot(vt) + eps_v * eps_v + 1e-20)
    return fn * normal + ft
