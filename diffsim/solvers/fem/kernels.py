"""Unrolled Taichi matrix helpers and stresses for the explicit FEM kernel.

Why not ``A @ B`` and :mod:`diffsim.materials`' ``stress`` directly: Taichi 1.7's matrix
product builds its result by mutating a local vector entry by entry, and so do functions that
fill a matrix with ``C[i, j] = ...``; the reverse-mode pass turns every such mutation into
stack traffic, and the adjoint of an FEM substep then took minutes to compile (measured on
this project's machines: 60 s with ``@`` against 6 s unrolled for linear elasticity;
123 s for the registry's stable neo-Hookean). ``ti.polar_decompose`` in 3D is not
differentiable at all (``auto_diff.cpp: Not supported``). Here every matrix is built whole
from scalar expressions, which the adjoint pass handles quickly.

The stresses are the formulas of :mod:`diffsim.materials` (tests check them against each
material's ``stress_np``); :func:`stress_function` returns the fast version when there is
one and the registry's ``stress`` otherwise, so a new material still works unchanged.
The 3D corotated rotation uses scaled Newton iterations for the polar factor
(Higham 1986): ``R <- (g R + R^-T / g) / 2``, ``g = |det R|^(-1/3)``, exact for ``det F > 0``
to round-off after :data:`POLAR_ITERATIONS` steps for principal stretch ratios up to about 10
(more extreme deformations leave a small error in R; the 2D rotation is closed-form).
"""

import taichi as ti

POLAR_ITERATIONS = 6


# Each helper spells its sums out per dimension (static branches) instead of calling smaller
# funcs: a func call copies its arguments into locals, which the adjoint pass also pays for.

@ti.func
def matmul(A, B):
    """``A B`` for 2x2 or 3x3 inner dimension, unrolled."""
    if ti.static(A.m == 2):
        return ti.Matrix([[A[i, 0] * B[0, j] + A[i, 1] * B[1, j]
                           for j in ti.static(range(B.m))] for i in ti.static(range(A.n))])
    else:
        return ti.Matrix([[A[i, 0] * B[0, j] + A[i, 1] * B[1, j] + A[i, 2] * B[2, j]
                           for j in ti.static(range(B.m))] for i in ti.static(range(A.n))])


@ti.func
def matmul_t(A, B):
    """``A B^T``, unrolled."""
    if ti.static(A.m == 2):
        return ti.Matrix([[A[i, 0] * B[j, 0] + A[i, 1] * B[j, 1]
                           for j in ti.static(range(B.n))] for i in ti.static(range(A.n))])
    else:
        return ti.Matrix([[A[i, 0] * B[j, 0] + A[i, 1] * B[j, 1] + A[i, 2] * B[j, 2]
                           for j in ti.static(range(B.n))] for i in ti.static(range(A.n))])


@ti.func
def matvec(A, x):
    """``A x``, unrolled."""
    if ti.static(A.m == 2):
        return ti.Vector([A[i, 0] * x[0] + A[i, 1] * x[1] for i in ti.static(range(A.n))])
    else:
        return ti.Vector([A[i, 0] * x[0] + A[i, 1] * x[1] + A[i, 2] * x[2] for i in ti.static(range(A.n))])


@ti.func
def column(A, j: ti.template()):
    """Column ``j`` (static) of ``A`` as a vector."""
    return ti.Vector([A[i, j] for i in ti.static(range(A.n))])


@ti.func
def column_sum(A):
    """Sum of the columns of ``A`` as a vector."""
    if ti.static(A.m == 2):
        return ti.Vector([A[i, 0] + A[i, 1] for i in ti.static(range(A.n))])
    else:
        return ti.Vector([A[i, 0] + A[i, 1] + A[i, 2] for i in ti.static(range(A.n))])


@ti.func
def squared_norm(F):
    """Frobenius ``sum_ij F_ij^2`` of a square 2x2 or 3x3 matrix."""
    if ti.static(F.n == 2):
        return F[0, 0] * F[0, 0] + F[0, 1] * F[0, 1] + F[1, 0] * F[1, 0] + F[1, 1] * F[1, 1]
    else:
        return (F[0, 0] * F[0, 0] + F[0, 1] * F[0, 1] + F[0, 2] * F[0, 2]
                + F[1, 0] * F[1, 0] + F[1, 1] * F[1, 1] + F[1, 2] * F[1, 2]
                + F[2, 0] * F[2, 0] + F[2, 1] * F[2, 1] + F[2, 2] * F[2, 2])


@ti.func
def vec_dot(a, b):
    """``a . b`` for 2- or 3-vectors."""
    if ti.static(a.n == 2):
        return a[0] * b[0] + a[1] * b[1]
    else:
        return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


@ti.func
def trace(A):
    if ti.static(A.n == 2):
        return A[0, 0] + A[1, 1]
    else:
        return A[0, 0] + A[1, 1] + A[2, 2]


@ti.func
def cofactor(F):
    """``cof(F) = det(F) F^-T``, polynomial in F (finite for singular F)."""
    if ti.static(F.n == 2):
        return ti.Matrix([[F[1, 1], -F[1, 0]], [-F[0, 1], F[0, 0]]])
    else:
        return ti.Matrix([[F[(i + 1) % 3, (j + 1) % 3] * F[(i + 2) % 3, (j + 2) % 3]
                           - F[(i + 1) % 3, (j + 2) % 3] * F[(i + 2) % 3, (j + 1) % 3]
                           for j in ti.static(range(3))] for i in ti.static(range(3))])


@ti.func
def determinant(F, C):
    """``det F`` from its cofactor matrix ``C`` (expansion along the first row)."""
    if ti.static(F.n == 2):
        return F[0, 0] * C[0, 0] + F[0, 1] * C[0, 1]
    else:
        return F[0, 0] * C[0, 0] + F[0, 1] * C[0, 1] + F[0, 2] * C[0, 2]


@ti.func
def identity_like(F):
    """The identity of ``F``'s size."""
    return ti.Matrix([[ti.static(1.0 if i == j else 0.0) for j in ti.static(range(F.n))]
                      for i in ti.static(range(F.n))])


@ti.func
def rotation(F):
    """Polar rotation ``R`` of ``F`` (``det F > 0``)."""
    if ti.static(F.n == 2):
        c, s = F[0, 0] + F[1, 1], F[1, 0] - F[0, 1]
        r = ti.sqrt(c * c + s * s + 1e-30)
        return ti.Matrix([[c / r, -s / r], [s / r, c / r]])
    else:
        return _polar_newton(F, POLAR_ITERATIONS)


@ti.func
def _polar_newton(R, k: ti.template()):
    """``k`` scaled Newton steps ``R <- (g R + R^-T / g) / 2`` (static recursion, no mutation)."""
    if ti.static(k == 0):
        return R
    else:
        C = cofactor(R)
        J = determinant(R, C)
        g = ti.pow(ti.abs(J), -1.0 / 3.0)
        return _polar_newton(0.5 * (g * R + C / (g * J)), k - 1)


@ti.func
def stress_linear(F, mu, lam):
    eye = identity_like(F)
    eps = 0.5 * (F + F.transpose()) - eye
    return 2.0 * mu * eps + lam * trace(eps) * eye


@ti.func
def stress_neo_hookean(F, mu, lam):
    C = cofactor(F)
    J = determinant(F, C)
    FinvT = C / J
    return mu * (F - FinvT) + lam * ti.log(J) * FinvT


@ti.func
def stress_stable_neo_hookean(F, mu, lam):
    d = ti.static(F.n)
    alpha = 1.0 + mu * d / ((d + 1.0) * lam)
    Ic = squared_norm(F)
    C = cofactor(F)
    return mu * (1.0 - 1.0 / (Ic + 1.0)) * F + lam * (determinant(F, C) - alpha) * C


@ti.func
def stress_corotated(F, mu, lam):
    C = cofactor(F)
    return 2.0 * mu * (F - rotation(F)) + lam * (determinant(F, C) - 1.0) * C


FAST_STRESS = {"linear": stress_linear, "neo_hookean": stress_neo_hookean,
               "stable_neo_hookean": stress_stable_neo_hookean, "corotated": stress_corotated}


def stress_function(material):
    """The unrolled stress for a registered material class, else its own ``stress``."""
    return FAST_STRESS.get(material.name, material.stress)
