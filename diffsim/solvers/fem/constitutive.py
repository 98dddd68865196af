"""Vectorised NumPy constitutive models for the implicit FEM paths.

For a stack of deformation gradients ``F`` ``[E, d, d]`` with per-element Lame parameters
``mu``, ``lam`` ``[E]`` [Pa], :func:`evaluate` gives the energy density ``Psi`` [J/m^3],
the first Piola-Kirchhoff stress ``P = dPsi/dF`` [Pa] and the tangent
``C[e, i, j, k, l] = dP_ij / dF_kl`` [Pa]; :func:`param_derivatives` gives ``dP/dmu`` and
``dP/dlam``. They mirror the Taichi ``stress`` functions of :mod:`diffsim.materials`
(same formulas, checked against ``stress_np`` / ``energy_np`` and by finite differences in
``tests/fem/test_constitutive.py``), so the explicit and implicit solvers model the same
material.

Tangents (index form, ``G = F^-T``, ``cof = J G``):

* linear: ``mu (d_ik d_jl + d_il d_jk) + lam d_ij d_kl``;
* neo-Hookean: ``mu d_ik d_jl + (mu - lam log J) G_il G_kj + lam G_ij G_kl``;
* stable neo-Hookean (Smith, de Goes, Kim 2018):
  ``mu (1 - 1/(I_C+1)) d_ik d_jl + 2 mu/(I_C+1)^2 F_ij F_kl + lam cof_ij cof_kl
  + lam (J - alpha) dcof_ij/dF_kl`` with ``dcof_ij/dF_kl = eps_ika eps_jlc F_ac`` (3D);
* fixed corotated (Stomakhin et al. 2012): ``2 mu (I - dR/dF) + lam cof cof + lam (J - 1) dcof``
  with the rotation derivative ``dR = U Omega V^T``,
  ``Omega_ij = (M_ij - M_ji) / (s_i + s_j)``, ``M = U^T dF V`` (Papadopoulo and Lourakis 2000).

The active fibre term (muscle model, see :mod:`.explicit`) is ``Psi_a = s |F a|`` with
``s = sigma u`` the active stress [Pa] times the activation and ``a`` the fibre direction.
"""

from functools import lru_cache

import numpy as np

_EPS3 = np.zeros((3, 3, 3))
for _i, _j, _k in ((0, 1, 2), (1, 2, 0), (2, 0, 1)):
    _EPS3[_i, _j, _k], _EPS3[_i, _k, _j] = 1.0, -1.0
_EPS2 = np.array([[0.0, 1.0], [-1.0, 0.0]])
# d cof_ij / d F_kl = eps_ika eps_jlc F_ac (3D), as a [81, 9] matrix acting on vec(F)
_DCOF3 = np.einsum("ika,jlc->ijklac", _EPS3, _EPS3).reshape(81, 9)
_DCOF2 = np.einsum("ik,jl->ijkl", _EPS2, _EPS2)
# cyclic index pairs of the 3D cofactor: cof_ij = F[i1, j1] F[i2, j2] - F[i1, j2] F[i2, j1]
_I1, _I2 = np.array([1, 2, 0]), np.array([2, 0, 1])
# Same floor as the Taichi kernels' safe norm: keeps |F a| differentiable at zero.
FIBER_EPS = 1e-20


@lru_cache(maxsize=None)
def identity4(d: int):
    """``(d_ik d_jl, d_il d_jk, d_ij d_kl)`` as ``[d, d, d, d]`` arrays."""
    eye = np.eye(d)
    return (np.einsum("ik,jl->ijkl", eye, eye), np.einsum("il,jk->ijkl", eye, eye),
            np.einsum("ij,kl->ijkl", eye, eye))


def cofactor(F: np.ndarray) -> np.ndarray:
    """``dJ/dF = det(F) F^-T`` without the inverse (finite at ``J = 0``), ``[E, d, d]``."""
    if F.shape[-1] == 2:
        return np.stack([np.stack([F[:, 1, 1], -F[:, 1, 0]], -1), np.stack([-F[:, 0, 1], F[:, 0, 0]], -1)], 1)
    A = F[:, _I1][:, :, _I1] * F[:, _I2][:, :, _I2]
    B = F[:, _I1][:, :, _I2] * F[:, _I2][:, :, _I1]
    return A - B


def cofactor_derivative(F: np.ndarray) -> np.ndarray:
    """``d cof_ij / d F_kl``, ``[E, d, d, d, d]`` (constant in 2D, linear in F in 3D)."""
    if F.shape[-1] == 2:
        return np.broadcast_to(_DCOF2, (len(F), 2, 2, 2, 2))
    return (F.reshape(len(F), 9) @ _DCOF3.T).reshape(len(F), 3, 3, 3, 3)


def rotation(F: np.ndarray):
    """Polar rotation of ``F`` with its SVD: ``(R, U, s, V)``, ``det R = +1``.

    For ``det F < 0`` the last singular value is made negative (the "rotation variant"
    SVD), the convention of :class:`diffsim.materials.MaterialCorotated`.
    """
    U, s, Vt = np.linalg.svd(F)
    flip = np.linalg.det(U) * np.linalg.det(Vt) < 0
    U[flip, :, -1] *= -1
    s[flip, -1] *= -1
    V = np.swapaxes(Vt, 1, 2)
    return U @ Vt, U, s, V


def rotation_derivative(U, s, V) -> np.ndarray:
    """``dR_pq / dF_kl`` of the polar rotation, ``[E, d, d, d, d]``."""
    d = s.shape[1]
    denom = s[:, :, None] + s[:, None, :]
    denom = np.where(np.abs(denom) < 1e-12, 1e-12, denom)  # repeated zero singular values
    off = 1.0 - np.eye(d)
    # T[e, k, l, i, j] = (U_ki V_lj - U_kj V_li) / (s_i + s_j) for i != j
    UV = np.einsum("eki,elj->eklij", U, V)
    T = (UV - np.swapaxes(UV, 3, 4)) * (off / denom)[:, None, None]
    return np.einsum("epklj,eqj->epqkl", np.einsum("epi,eklij->epklj", U, T), V)


def evaluate(name: str, F: np.ndarray, mu: np.ndarray, lam: np.ndarray, tangent: bool = False):
    """Energy density, stress and (optionally) tangent of material ``name``.

    Args:
        F: ``[E, d, d]``; mu, lam: ``[E]`` [Pa].
    Returns:
        ``(psi [E], P [E, d, d], C [E, d, d, d, d] or None)``. ``psi`` is ``+inf`` where the
        material is undefined (neo-Hookean with ``J <= 0``), which a line search rejects.
    """
    E, d = F.shape[0], F.shape[1]
    eye = np.eye(d)
    mu_, lam_ = mu[:, None, None], lam[:, None, None]
    I4, I4T, IxI = identity4(d)
    C = None
    if name == "linear":
        eps = 0.5 * (F + np.swapaxes(F, 1, 2)) - eye
        tr = np.trace(eps, axis1=1, axis2=2)
        psi = mu * np.sum(eps * eps, axis=(1, 2)) + 0.5 * lam * tr ** 2
        P = 2 * mu_ * eps + lam_ * tr[:, None, None] * eye
        if tangent:
            C = mu[:, None, None, None, None] * (I4 + I4T) + lam[:, None, None, None, None] * IxI
    elif name == "neo_hookean":
        J = np.linalg.det(F)
        ok = J > 0
        Fs = np.where(ok[:, None, None], F, eye)  # keep the arithmetic finite where J <= 0
        logJ = np.log(np.where(ok, J, 1.0))
        G = np.swapaxes(np.linalg.inv(Fs), 1, 2)
        psi = 0.5 * mu * (np.sum(F * F, axis=(1, 2)) - d) - mu * logJ + 0.5 * lam * logJ ** 2
        psi = np.where(ok, psi, np.inf)
        P = mu_ * (F - G) + (lam * logJ)[:, None, None] * G
        if tangent:
            GG = np.einsum("eil,ekj->eijkl", G, G)
            C = (mu[:, None, None, None, None] * I4 + ((mu - lam * logJ)[:, None, None, None, None]) * GG
                 + lam[:, None, None, None, None] * np.einsum("eij,ekl->eijkl", G, G))
    elif name == "stable_neo_hookean":
        alpha = 1.0 + mu * d / ((d + 1.0) * lam)
        Ic = np.sum(F * F, axis=(1, 2))
        J = np.linalg.det(F)
        cof = cofactor(F)
        psi = 0.5 * mu * (Ic - d) + 0.5 * lam * (J - alpha) ** 2 - 0.5 * mu * np.log(Ic + 1.0)
        P = (mu * (1 - 1 / (Ic + 1)))[:, None, None] * F + (lam * (J - alpha))[:, None, None] * cof
        if tangent:
            C = ((mu * (1 - 1 / (Ic + 1)))[:, None, None, None, None] * I4
                 + (2 * mu / (Ic + 1) ** 2)[:, None, None, None, None] * np.einsum("eij,ekl->eijkl", F, F)
                 + lam[:, None, None, None, None] * np.einsum("eij,ekl->eijkl", cof, cof)
                 + (lam * (J - alpha))[:, None, None, None, None] * cofactor_derivative(F))
    elif name == "corotated":
        R, U, s, V = rotation(F)
        J = np.linalg.det(F)
        cof = cofactor(F)
        psi = mu * np.sum((F - R) ** 2, axis=(1, 2)) + 0.5 * lam * (J - 1) ** 2
        P = 2 * mu_ * (F - R) + (lam * (J - 1))[:, None, None] * cof
        if tangent:
            C = (2 * mu[:, None, None, None, None] * (I4 - rotation_derivative(U, s, V))
                 + lam[:, None, None, None, None] * np.einsum("eij,ekl->eijkl", cof, cof)
                 + (lam * (J - 1))[:, None, None, None, None] * cofactor_derivative(F))
    else:
        raise KeyError(f"no host model for material {name!r}; known: linear, corotated, "
                       "neo_hookean, stable_neo_hookean")
    del E
    return psi, P, C


def param_derivatives(name: str, F: np.ndarray, mu: np.ndarray, lam: np.ndarray):
    """``(dP/dmu, dP/dlam)``, each ``[E, d, d]`` [-]."""
    d = F.shape[1]
    eye = np.eye(d)
    if name == "linear":
        eps = 0.5 * (F + np.swapaxes(F, 1, 2)) - eye
        return 2 * eps, np.trace(eps, axis1=1, axis2=2)[:, None, None] * eye
    if name == "neo_hookean":
        J = np.linalg.det(F)
        G = np.swapaxes(np.linalg.inv(F), 1, 2)
        return F - G, np.log(np.maximum(J, 1e-300))[:, None, None] * G
    if name == "stable_neo_hookean":
        Ic = np.sum(F * F, axis=(1, 2))
        J = np.linalg.det(F)
        cof = cofactor(F)
        # alpha = 1 + mu d / ((d + 1) lam): lam (J - alpha) = lam (J - 1) - mu d / (d + 1)
        return ((1 - 1 / (Ic + 1))[:, None, None] * F - d / (d + 1.0) * cof,
                (J - 1)[:, None, None] * cof)
    if name == "corotated":
        R = rotation(F)[0]
        J = np.linalg.det(F)
        return 2 * (F - R), (J - 1)[:, None, None] * cofactor(F)
    raise KeyError(f"no host model for material {name!r}")


def linear_stress(G: np.ndarray, mu: np.ndarray, lam: np.ndarray) -> np.ndarray:
    """Small-strain stress of a displacement gradient ``G`` ``[E, d, d]``:
    ``mu (G + G^T) + lam tr(G) I`` (Rayleigh stiffness damping uses it on velocity gradients)."""
    tr = np.trace(G, axis1=1, axis2=2)
    return mu[:, None, None] * (G + np.swapaxes(G, 1, 2)) + (lam * tr)[:, None, None] * np.eye(G.shape[1])


def fiber(F: np.ndarray, a: np.ndarray, s: np.ndarray, tangent: bool = False):
    """Active fibre term ``Psi_a = s |F a|``.

    Args:
        F: ``[E, d, d]``; a: fibre directions ``[E, d]``; s: active stress times activation [Pa] ``[E]``.
    Returns:
        ``(psi [E], P [E, d, d], C or None)`` with ``P = s (F a) a^T / |F a|`` and
        ``C_ijkl = s / |F a| (d_ik - n_i n_k) a_j a_l``, ``n = F a / |F a|``.
    """
    Fa = np.einsum("eij,ej->ei", F, a)
    ell = np.sqrt(np.sum(Fa * Fa, axis=1) + FIBER_EPS)
    P = (s / ell)[:, None, None] * np.einsum("ei,ej->eij", Fa, a)
    C = None
    if tangent:
        n = Fa / ell[:, None]
        proj = np.eye(F.shape[1]) - np.einsum("ei,ek->eik", n, n)
        C = (s / ell)[:, None, None, None, None] * np.einsum("eik,ej,el->eijkl", proj, a, a)
    return s * ell, P, C


def fiber_derivatives(F: np.ndarray, a: np.ndarray, s: np.ndarray, Lam: np.ndarray):
    """Contractions with a test gradient ``Lam`` ``[E, d, d]`` of the fibre stress's derivatives.

    Returns:
        ``(dP/ds : Lam [E], (dP/da : Lam) [E, d])``.
    """
    Fa = np.einsum("eij,ej->ei", F, a)
    ell = np.sqrt(np.sum(Fa * Fa, axis=1) + FIBER_EPS)
    La = np.einsum("eij,ej->ei", Lam, a)
    FaLa = np.sum(Fa * La, axis=1)
    d_s = FaLa / ell
    FtFa = np.einsum("eij,ei->ej", F, Fa)
    d_a = (s / ell)[:, None] * (np.einsum("eij,ei->ej", F, La) + np.einsum("eij,ei->ej", Lam, Fa)
                                - (FaLa / ell ** 2)[:, None] * FtFa)
    return d_s, d_a
