"""Elastoplastic materials for MPM: von Mises, snow, Drucker-Prager sand.

An elastoplastic material splits ``F = F_E F_P`` and keeps only the elastic part: after each
elastic predictor ``F_trial = (I + dt C) F`` a **return mapping** ``project`` pulls
``F_trial`` back onto the yield surface, and the stress is the elastic response of the
projected ``F_E``. Every model here works on the principal stretches ``sigma_i`` of
``F_trial = U diag(sigma) V^T``:

* :class:`MaterialVonMises`: radial return of the deviatoric Hencky strain
  ``eps = log(sigma)`` to ``|dev eps| <= tau_Y / (2 mu)`` (metal / plasticine; the
  PlasticineLab model, Huang et al. 2021);
* :class:`MaterialSnow`: Stomakhin et al. 2013: stretches clamped to
  ``[1 - theta_c, 1 + theta_s]``, the plastic volume ``J_P`` hardens the Lame parameters by
  ``exp(xi (1 - J_P))``;
* :class:`MaterialDruckerPrager`: Klar et al. 2016: the Hencky strain is projected on the
  Drucker-Prager cone of friction angle ``phi`` (tension: to the tip, i.e. ``F_E = R``).

The elastic response of all three is fixed corotated, ``tau = 2 mu (F - R) F^T +
lam (J - 1) J I`` (Kirchhoff stress ``tau = P F^T``), as in Stomakhin et al. 2013 and
PlasticineLab. Corotated rather than Klar's Hencky StVK keeps the elastic branch free of
eigenvector derivatives, whose gradients blow up at repeated stretches (``F = I`` at rest).

Taichi 1.7.4 cannot reverse-differentiate ``ti.svd`` or ``ti.sym_eig`` in 3D (its
autodiff reports "Not supported"), so this module carries its own differentiable helpers:
:func:`svd_stretches` (cyclic Jacobi on ``F^T F``, straight-line code) and
:func:`polar_rotation` (scaled Newton iteration in 3D, closed form in 2D). Their gradients
are exact where the stretches are distinct; at (near-)repeated stretches the eigenvectors
are ill-defined and the plastic branch's gradient degrades (see docs/solvers_mpm.md).

Every material gives a Taichi ``update(F, Jp, mu, lam, q) -> (F_E, Jp', tau)``: the return
mapping of the trial ``F`` and the Kirchhoff stress of the result (``q``: vector of the
extra parameters named in ``extra_params``, in order), and NumPy references
(``project_np``, ``kirchhoff_np``, ``stress_np``, ``energy_np``) for the tests.
"""

import numpy as np
import taichi as ti

from .base import Material, register

_JACOBI_SWEEPS = 4  # cyclic sweeps of 3 rotations; 3x3 reaches float64 round-off in 4
_NEWTON_ITERS = 5   # scaled Newton polar: round-off for stretches within ~[0.2, 5]
_MIN_STRETCH = 1e-4  # principal stretches are clamped here before log (inverted particles)


# --------------------------------------------------------------------------- linear algebra
# Products are written as expression trees of scalars. Taichi's own ``A @ B`` accumulates
# into a local matrix element by element, and its reverse mode of that took 30 s to compile
# for one 3x3 product (0.6 s this way).

@ti.func
def _row_col(A, B, i: ti.template(), j: ti.template()):
    s = A[i, 0] * B[0, j]
    for k in ti.static(range(1, A.m)):
        s = s + A[i, k] * B[k, j]
    return s


@ti.func
def matmul(A, B):
    """``A B`` for small matrices (differentiation-friendly ``A @ B``)."""
    return ti.Matrix([[_row_col(A, B, i, j) for j in ti.static(range(B.m))] for i in ti.static(range(A.n))])


@ti.func
def matmul_t(A, B):
    """``A B^T``."""
    return matmul(A, B.transpose())


@ti.func
def matvec(A, v):
    """``A v``."""
    return ti.Vector([sum_terms(A, v, i) for i in ti.static(range(A.n))])


@ti.func
def sum_terms(A, v, i: ti.template()):
    s = A[i, 0] * v[0]
    for k in ti.static(range(1, A.m)):
        s = s + A[i, k] * v[k]
    return s


@ti.func
def _rotate(A, V, p: ti.template(), q: ti.template()):
    """One Jacobi rotation zeroing A[p, q] of the symmetric A; V accumulates the rotations.

    ``A <- G^T A G`` and ``V <- V G`` with ``G`` the plane rotation ``(c, s)`` in ``(p, q)``,
    written out on the rows and columns ``p`` and ``q`` only.
    """
    apq = A[p, q]
    d = 0.5 * (A[q, q] - A[p, p])
    # t = tan(theta) of the smaller rotation angle, overflow-free, and without branches: a
    # runtime `if` reassigning t, c, s would put them on the adjoint's stack (15 rotations).
    # The rotation runs even when apq == 0 (t = 0): skipping it would drop dV/dA_pq.
    r = ti.sqrt(d * d + apq * apq + 1e-30)
    t = ti.select(d < 0, -1.0, 1.0) * apq / (ti.abs(d) + r)
    c = 1.0 / ti.sqrt(t * t + 1.0)
    s = t * c
    n = ti.static(A.n)
    # AG: columns p and q mix; then G^T (AG): rows p and q mix.
    AG = ti.Matrix([[A[i, j] if ti.static(j != p and j != q) else
                     (c * A[i, p] - s * A[i, q] if ti.static(j == p) else s * A[i, p] + c * A[i, q])
                     for j in ti.static(range(n))] for i in ti.static(range(n))])
    GAG = ti.Matrix([[AG[i, j] if ti.static(i != p and i != q) else
                      (c * AG[p, j] - s * AG[q, j] if ti.static(i == p) else s * AG[p, j] + c * AG[q, j])
                      for j in ti.static(range(n))] for i in ti.static(range(n))])
    VG = ti.Matrix([[V[i, j] if ti.static(j != p and j != q) else
                     (c * V[i, p] - s * V[i, q] if ti.static(j == p) else s * V[i, p] + c * V[i, q])
                     for j in ti.static(range(n))] for i in ti.static(range(n))])
    return GAG, VG


@ti.func
def sym_eig(A):
    """Eigen-decomposition of a symmetric 2x2 or 3x3 ``A`` by cyclic Jacobi rotations.

    Returns ``(lam, V)``: eigenvalues as a vector (unsorted) and eigenvectors as the
    columns of ``V`` with ``A = V diag(lam) V^T``. Straight-line code, so Taichi's reverse
    mode differentiates it.
    """
    V = ti.Matrix.identity(float, A.n)
    if ti.static(A.n == 2):
        A, V = _rotate(A, V, 0, 1)  # one rotation diagonalises a 2x2 exactly
    else:
        for _sweep in ti.static(range(_JACOBI_SWEEPS)):
            for p, q in ti.static(((0, 1), (0, 2), (1, 2))):
                A, V = _rotate(A, V, p, q)
    lam = ti.Vector([A[k, k] for k in ti.static(range(A.n))])
    return lam, V


@ti.func
def svd_stretches(F):
    """Principal stretches ``sigma`` (vector, clamped >= 1e-4) and right singular vectors
    ``V`` (columns) of ``F``, from the eigen-decomposition of ``F^T F``.

    ``U`` is not formed: a return mapping writes ``U diag(s') V^T = F V diag(s'/sigma) V^T``.
    """
    lam, V = sym_eig(matmul(F.transpose(), F))
    sig = ti.Vector([ti.sqrt(ti.max(lam[k], _MIN_STRETCH ** 2)) for k in ti.static(range(F.n))])
    return sig, V


@ti.func
def rescale_stretches(F, V, ratio):
    """``F V diag(ratio) V^T``: ``F`` with its principal stretches multiplied by ``ratio``."""
    D = ti.Matrix.zero(float, F.n, F.n)
    for k in ti.static(range(F.n)):
        D[k, k] = ratio[k]
    return matmul(F, matmul_t(matmul(V, D), V))


@ti.func
def polar_rotation(F):
    """Rotation ``R`` of the polar decomposition ``F = R S``, differentiable in 2D and 3D.

    2D: closed form. 3D: Newton's iteration ``X <- (g X + (g X)^-T) / 2`` with Higham's
    Frobenius scaling ``g = (|X^-1| / |X|)^(1/2)``, a fixed number of times.
    """
    R = ti.Matrix.identity(float, F.n)
    if ti.static(F.n == 2):
        a = F[0, 0] + F[1, 1]
        b = F[1, 0] - F[0, 1]
        inv = 1.0 / ti.sqrt(a * a + b * b + 1e-30)
        R = ti.Matrix([[a * inv, -b * inv], [b * inv, a * inv]])
    else:
        X = F
        for _it in ti.static(range(_NEWTON_ITERS)):
            Xi = X.inverse()
            g = ti.sqrt(ti.sqrt((Xi * Xi).sum() / ((X * X).sum() + 1e-30)))
            X = 0.5 * (g * X + Xi.transpose() / g)
        R = X
    return R


@ti.func
def corotated_kirchhoff(F, mu, lam):
    """Fixed corotated Kirchhoff stress ``2 mu (F - R) F^T + lam (J - 1) J I`` [Pa]."""
    return corotated_kirchhoff_R(F, polar_rotation(F), mu, lam)


@ti.func
def corotated_kirchhoff_R(F, R, mu, lam):
    """:func:`corotated_kirchhoff` with the rotation ``R`` of ``F`` given."""
    J = F.determinant()
    return 2.0 * mu * matmul_t(F - R, F) + lam * (J - 1.0) * J * ti.Matrix.identity(float, F.n)


@ti.func
def _safe_norm(v):
    return ti.sqrt(v.dot(v) + 1e-30)


# --------------------------------------------------------------------------- NumPy references

def _corotated_P_np(F, mu, lam):
    U, _, Vt = np.linalg.svd(F)
    R = U @ Vt
    if np.linalg.det(R) < 0:
        U[:, -1] *= -1
        R = U @ Vt
    J = np.linalg.det(F)
    return 2 * mu * (F - R) + lam * (J - 1) * J * np.linalg.inv(F).T, R


def _corotated_energy_np(F, mu, lam):
    P, R = _corotated_P_np(F, mu, lam)
    J = np.linalg.det(F)
    return float(mu * np.sum((F - R) ** 2) + 0.5 * lam * (J - 1) ** 2)


def _svd_np(F):
    U, s, Vt = np.linalg.svd(F)
    return U, np.maximum(s, _MIN_STRETCH), Vt


class PlasticMaterial(Material):
    """Base of the elastoplastic models: corotated elasticity plus a return mapping.

    Subclasses give ``update(F, Jp, mu, lam, q) -> (F_E, Jp', tau)`` (Taichi): the return
    mapping of the trial ``F`` and the Kirchhoff stress of the result. The mappings only
    rescale principal stretches, so ``F_E`` has the rotation of ``F``: one polar
    decomposition serves the projection and the stress.

    Class attributes:
        extra_params: ``{name: (units, default, doc)}`` per-particle parameters besides
            ``mu`` and ``lam``, passed to the Taichi functions as the vector ``q`` in order.
        plastic_state: whether the model evolves the per-particle scalar ``Jp``.
    """

    extra_params: dict = {}
    plastic_state = False

    @staticmethod
    def stress_np(F, mu, lam):
        """First Piola-Kirchhoff stress of the elastic part (fixed corotated) [Pa]."""
        return _corotated_P_np(F, mu, lam)[0]

    @staticmethod
    def energy_np(F, mu, lam):
        """Elastic energy density of the elastic part (fixed corotated) [J/m^3]."""
        return _corotated_energy_np(F, mu, lam)

    @classmethod
    def kirchhoff_np(cls, F, Jp, mu, lam, q):
        return cls.stress_np(F, mu, lam) @ F.T


@register
class MaterialVonMises(PlasticMaterial):
    """Von Mises plasticity on the Hencky strain (metals, clay, plasticine).

    With ``eps = log(sigma)`` and its deviator ``e = eps - tr(eps)/d``, the particle yields
    when ``|e| > tau_Y / (2 mu)``; the return mapping scales the deviator back to the yield
    surface: ``eps <- eps - (|e| - tau_Y / (2 mu)) e / |e|`` (volume is kept). Parameter
    ``yield_stress`` ``tau_Y`` [Pa].
    """

    name = "von_mises"
    extra_params = {"yield_stress": ("Pa", 1e3, "von Mises yield stress")}

    @staticmethod
    @ti.func
    def update(F, Jp, mu, lam, q):
        sig, V = svd_stretches(F)
        eps = ti.log(sig)
        dev = eps - eps.sum() / F.n
        n = _safe_norm(dev)
        excess = n - q[0] / (2.0 * mu)
        # both branches are formed and one selected: no adjoint stack for Fe
        Fe = ti.select(excess > 0, rescale_stretches(F, V, ti.exp(-(excess / n) * dev)), F)
        return Fe, Jp, corotated_kirchhoff_R(Fe, polar_rotation(F), mu, lam)

    @staticmethod
    def project_np(F, Jp, mu, lam, q):
        U, s, Vt = _svd_np(F)
        eps = np.log(s)
        dev = eps - eps.mean()
        n = np.linalg.norm(dev)
        excess = n - q[0] / (2 * mu)
        if excess <= 0:
            return F.copy(), Jp
        return U @ np.diag(np.exp(eps - excess / n * dev)) @ Vt, Jp


@register
class MaterialSnow(PlasticMaterial):
    """Snow (Stomakhin, Schroeder, Chai, Teran and Selle 2013).

    Principal stretches are clamped to ``[1 - theta_c, 1 + theta_s]``; the plastic volume
    ratio ``Jp`` takes the removed volume, ``Jp <- Jp J_trial / J_E``, and hardens the
    elastic response: ``mu, lam <- (mu, lam) exp(xi (1 - Jp))``. Parameters:
    ``critical_compression`` ``theta_c`` [-] (2.5e-2), ``critical_stretch`` ``theta_s`` [-]
    (7.5e-3), ``hardening`` ``xi`` [-] (10).
    """

    name = "snow"
    extra_params = {
        "critical_compression": ("-", 2.5e-2, "snow critical compression theta_c"),
        "critical_stretch": ("-", 7.5e-3, "snow critical stretch theta_s"),
        "hardening": ("-", 10.0, "snow hardening coefficient xi"),
    }
    plastic_state = True

    @staticmethod
    @ti.func
    def update(F, Jp, mu, lam, q):
        sig, V = svd_stretches(F)
        clamped = ti.Vector([ti.min(ti.max(sig[k], 1.0 - q[0]), 1.0 + q[1]) for k in ti.static(range(F.n))])
        ratio = clamped / sig
        vol = ratio[0]
        for k in ti.static(range(1, F.n)):
            vol = vol * ratio[k]
        # unclamped particles keep F exactly (V V^T = I only to round-off)
        yielded = (clamped - sig).norm_sqr() > 0
        Fe = ti.select(yielded, rescale_stretches(F, V, ratio), F)
        Jp_new = ti.select(yielded, Jp / vol, Jp)
        h = ti.exp(q[2] * (1.0 - Jp_new))
        return Fe, Jp_new, corotated_kirchhoff_R(Fe, polar_rotation(F), mu * h, lam * h)

    @staticmethod
    def project_np(F, Jp, mu, lam, q):
        U, s, Vt = _svd_np(F)
        c = np.clip(s, 1 - q[0], 1 + q[1])
        return U @ np.diag(c) @ Vt, Jp * np.prod(s) / np.prod(c)

    @classmethod
    def kirchhoff_np(cls, F, Jp, mu, lam, q):
        h = np.exp(q[2] * (1 - Jp))
        return cls.stress_np(F, mu * h, lam * h) @ F.T


@ti.func
def _dp_alpha(phi, d: ti.template()):
    sin_phi = ti.sin(phi)
    alpha = sin_phi / ti.sqrt(2.0)
    if ti.static(d == 3):
        alpha = ti.sqrt(2.0 / 3.0) * 2.0 * sin_phi / (3.0 - sin_phi)
    return alpha


def _dp_alpha_np(phi, d):
    s = np.sin(phi)
    return s / np.sqrt(2) if d == 2 else np.sqrt(2 / 3) * 2 * s / (3 - s)


@register
class MaterialDruckerPrager(PlasticMaterial):
    """Drucker-Prager sand (Klar, Gast, Pradhana, Fu, Schroeder, Jiang and Teran 2016).

    With ``eps = log(sigma)``, ``e = eps - tr(eps)/d`` and the cone ``|dev tau| <= -alpha
    tr tau``: ``alpha = sqrt(2/3) 2 sin(phi) / (3 - sin(phi))`` in 3D (Klar's match to
    Mohr-Coulomb in triaxial compression) and ``alpha = sin(phi) / sqrt(2)`` in 2D (the
    exact Mohr-Coulomb condition ``|t1 - t2| <= -sin(phi) (t1 + t2)`` of a plane model,
    where ``|dev tau| = |t1 - t2| / sqrt(2)``). Cohesion ``c`` (a log strain) moves the
    cone's apex into tension: the test uses ``eps - c``. In expansion
    (``tr(eps - c) >= 0``) the sand carries no more than its cohesive tension and
    ``F_E = exp(c) R`` (the cone's tip); otherwise
    ``dgamma = |e| + (d lam + 2 mu) / (2 mu) tr(eps - c) alpha`` and, when positive,
    ``eps <- eps - dgamma e / |e|``. Parameters ``friction_angle`` ``phi`` [rad] and
    ``cohesion`` ``c`` [-] (default 0: Klar's dry sand).

    Dry sand at rest (``F = I``) sits exactly on the apex, where the return mapping has a
    kink: gradients with respect to anything that perturbs it at rest are one-sided there.
    A small cohesion (1e-3) puts rest states inside the elastic cone, so those gradients
    are well defined, at the price of a tensile strength of about ``2 (mu + lam) c``.
    """

    name = "drucker_prager"
    extra_params = {"friction_angle": ("rad", np.deg2rad(30.0), "Drucker-Prager friction angle"),
                    "cohesion": ("-", 0.0, "Drucker-Prager cohesion: tensile log strain of "
                                 "the cone's apex")}

    @staticmethod
    @ti.func
    def update(F, Jp, mu, lam, q):
        sig, V = svd_stretches(F)
        R = polar_rotation(F)
        eps = ti.log(sig) - q[1]  # relative to the cohesive apex
        tr = eps.sum()
        alpha = _dp_alpha(q[0], F.n)
        dev = eps - tr / F.n
        n = _safe_norm(dev)
        dgamma = n + (F.n * lam + 2.0 * mu) / (2.0 * mu) * tr * alpha
        # all three branches are formed and one selected (no adjoint stack for Fe)
        F_cone = rescale_stretches(F, V, ti.exp(-(dgamma / n) * dev))
        Fe = ti.select(tr >= 0, ti.exp(q[1]) * R, ti.select(dgamma > 0, F_cone, F))
        return Fe, Jp, corotated_kirchhoff_R(Fe, R, mu, lam)

    @staticmethod
    def project_np(F, Jp, mu, lam, q):
        U, s, Vt = _svd_np(F)
        d = F.shape[0]
        eps = np.log(s) - q[1]
        tr = eps.sum()
        if tr >= 0:
            return np.exp(q[1]) * U @ Vt, Jp
        alpha = _dp_alpha_np(q[0], d)
        dev = eps - tr / d
        n = np.linalg.norm(dev)
        dgamma = n + (d * lam + 2 * mu) / (2 * mu) * tr * alpha
        if dgamma <= 0:
            return F.copy(), Jp
        return U @ np.diag(np.exp(eps + q[1] - dgamma / n * dev)) @ Vt, Jp
