"""Host assembly for implicit FEM: element operators, a fixed sparse pattern, and the
incremental potential of one step with its gradient and Hessian.

Backward Euler is the minimisation of the incremental potential (Kane et al. 2000; Gast
et al. 2015, "Optimization integrator for large time steps")::

    Phi(x) = sum_i m_i |x_i - x_n,i - h v_n,i|^2 / (2 h^2)                     inertia
           + sum_e V_e (Psi(F_e) + s_e |F_e a_e|)                                 elastic + active
           + alpha / (2h) sum_i m_i |x_i - x_n,i|^2 + beta / h sum_e V_e Psi_lin(G_e)  Rayleigh
           - f_ext . x + sum_i k/2 max(z_g - x_i,up, 0)^2                        loads, ground

with ``G_e`` the gradient of ``x - x_n`` over element ``e`` (so the damping force is
``-(alpha M + beta K0) (x - x_n) / h``, ``K0`` the rest stiffness) and ``f_ext = M g +``
nodal loads ``+`` tractions. The quasi-static potential keeps only the elastic, active,
load and ground terms. Its stationarity ``r(x) = grad Phi = 0`` is the step's equation;
:class:`Potential` gives ``Phi``, ``r`` and ``dr/dx`` (sparse) for one environment.

Element stiffness: ``K_e = V_e G_e^T C_e G_e`` with ``G_e = dvec(F_e)/dx_e`` (constant for
linear simplices, precomputed) and ``C_e`` the tangent as a ``d^2 x d^2`` matrix; entries are
scattered into a CSR pattern computed once (``np.bincount`` over a precomputed map), so an
assembly costs two batched matmuls and one bincount.
"""

import numpy as np
import scipy.sparse as sp

from . import constitutive as cm


class Pattern:
    """Sparse pattern of the ``N * dim`` DOF system of a mesh (vertex-major DOFs ``i * dim + m``).

    Args:
        elements: ``[E, d + 1]``; vertex_count: N; dim: d; free: ``[N * d]`` bool (free DOFs).
    """

    def __init__(self, elements: np.ndarray, vertex_count: int, dim: int, free: np.ndarray):
        d, N, n = dim, vertex_count, vertex_count * dim
        self.n = n
        E, a = elements.shape
        # Unique vertex pairs first (16x fewer keys than DOF pairs in 3D), as d x d blocks.
        pairs = (np.repeat(elements, a, axis=1) * N + np.tile(elements, (1, a))).ravel()
        block_keys, block_of_pair = np.unique(np.concatenate([pairs, np.arange(N) * (N + 1)]),
                                              return_inverse=True)
        brow, bcol = block_keys // N, block_keys % N
        bptr = np.concatenate([[0], np.cumsum(np.bincount(brow, minlength=N))])
        nb = len(block_keys)
        # CSR order of every block entry, from a BSR matrix whose data are the entry ids.
        ids = sp.bsr_matrix((np.arange(1, nb * d * d + 1, dtype=float).reshape(nb, d, d), bcol, bptr),
                            shape=(n, n)).tocsr()
        ids.sort_indices()
        csr_of_block_entry = np.empty(nb * d * d, dtype=np.int64)
        csr_of_block_entry[ids.data.astype(np.int64) - 1] = np.arange(ids.nnz)
        self.nnz = ids.nnz
        self.cols, self.indptr = ids.indices.astype(np.int64), ids.indptr.astype(np.int64)
        self.rows = np.repeat(np.arange(n), np.diff(self.indptr))
        # element entry (e, a, m, b, n) -> block (i_a, i_b), offset m d + n
        blocks = block_of_pair[: E * a * a].reshape(E, a, 1, a, 1)
        offset = (np.arange(d)[:, None] * d + np.arange(d)[None, :]).reshape(1, 1, d, 1, d)
        self.entry_map = csr_of_block_entry[blocks * d * d + offset].ravel()
        diag_blocks = block_of_pair[E * a * a:]
        self.diag_map = csr_of_block_entry[np.repeat(diag_blocks, d) * d * d + np.tile(np.arange(d) * (d + 1), N)]
        # The free-free block keeps the CSR order (remapping is monotone).
        self.free = free
        self.free_dofs = np.flatnonzero(free)
        remap = np.full(n, -1)
        remap[self.free_dofs] = np.arange(len(self.free_dofs))
        keep = free[self.rows] & free[self.cols]
        self.free_entries = np.flatnonzero(keep)
        nf = len(self.free_dofs)
        self.free_indices = remap[self.cols[keep]]
        self.free_indptr = np.concatenate([[0], np.cumsum(np.bincount(remap[self.rows[keep]], minlength=nf))])

    def data(self, element_matrices: np.ndarray, diagonal: np.ndarray | None = None) -> np.ndarray:
        """CSR data from element matrices ``[E, k, k]`` plus a diagonal ``[n]``."""
        out = np.bincount(self.entry_map, weights=element_matrices.ravel(), minlength=self.nnz)
        if diagonal is not None:
            out[self.diag_map] += diagonal
        return out

    def full(self, data: np.ndarray) -> sp.csr_matrix:
        return sp.csr_matrix((data, self.cols, self.indptr), shape=(self.n, self.n))

    def free_block(self, data: np.ndarray) -> sp.csr_matrix:
        nf = len(self.free_dofs)
        return sp.csr_matrix((data[self.free_entries], self.free_indices, self.free_indptr), shape=(nf, nf))


def gradient_matrix(Bop: np.ndarray) -> np.ndarray:
    """``G[e, m d + j, a d + n] = dF_mj / dx_an = delta_mn Bop_aj``, ``[E, d^2, (d+1) d]``."""
    E, a, d = Bop.shape
    G = np.einsum("mn,eaj->emjan", np.eye(d), Bop)
    return G.reshape(E, d * d, a * d)


def element_gradients(field: np.ndarray, elements: np.ndarray, G: np.ndarray) -> np.ndarray:
    """Gradient over each element of a vertex field ``[N, d]`` (``F`` for positions), ``[E, d, d]``."""
    E, d = len(elements), field.shape[1]
    return np.matmul(G, field[elements].reshape(E, -1, 1)).reshape(E, d, d)


def scatter_forces(P: np.ndarray, volume: np.ndarray, elements: np.ndarray, G: np.ndarray,
                   vertex_count: int) -> np.ndarray:
    """``sum_e V_e P_e Bop_a`` onto vertices: the gradient of ``sum_e V_e Psi(F_e)``, ``[N, d]``."""
    E, d = P.shape[0], P.shape[1]
    local = (volume[:, None] * np.matmul(P.reshape(E, 1, d * d), G)[:, 0]).reshape(E, -1, d)
    out = np.zeros((vertex_count, d))
    for m in range(d):
        out[:, m] = np.bincount(elements.ravel(), local[:, :, m].ravel(), minlength=vertex_count)
    return out


def element_stiffness(C: np.ndarray, volume: np.ndarray, G: np.ndarray) -> np.ndarray:
    """``K_e = V_e G_e^T C_e G_e`` (``C`` as a ``d^2 x d^2`` matrix), ``[E, (d+1) d, (d+1) d]``."""
    E, d = C.shape[0], C.shape[1]
    return volume[:, None, None] * np.matmul(np.swapaxes(G, 1, 2), np.matmul(C.reshape(E, d * d, d * d), G))


def project_psd(C: np.ndarray) -> np.ndarray:
    """Clamp the negative eigenvalues of each tangent (as a ``d^2 x d^2`` matrix) to zero."""
    E, d = C.shape[0], C.shape[1]
    A = C.reshape(E, d * d, d * d)
    A = 0.5 * (A + np.swapaxes(A, 1, 2))
    w, Q = np.linalg.eigh(A)
    if np.all(w >= 0):
        return C
    A = np.einsum("eij,ej,ekj->eik", Q, np.maximum(w, 0.0), Q)
    return A.reshape(C.shape)


class Potential:
    """Incremental potential of one step for one environment (see the module docstring).

    Args:
        geo: ``dict`` with ``elements [E, d+1]``, ``volume [E]``, ``G [E, d^2, (d+1) d]``
            (:func:`gradient_matrix`), ``material``, ``pattern`` (:class:`Pattern`).
        p: per-environment arrays: ``mu, lam, s [E]`` (s = active stress x activation),
            ``fiber [E, d]``, ``mass [N]``, ``alpha, beta`` (floats), ``f_ext [N, d]``,
            ``ground`` (``None`` or ``(height, stiffness)``).
        x_n, v_n: start-of-step positions and velocities ``[N, d]``.
        h: step [s], or ``None`` for the quasi-static potential.
    """

    def __init__(self, geo: dict, p: dict, x_n: np.ndarray, v_n: np.ndarray, h: float | None):
        self.geo, self.p, self.x_n, self.v_n, self.h = geo, p, x_n, v_n, h
        self.y = None if h is None else x_n + h * v_n

    def _F(self, x):
        return element_gradients(x, self.geo["elements"], self.geo["G"])

    def _damping_gradient(self, x):
        return element_gradients(x - self.x_n, self.geo["elements"], self.geo["G"])

    def energy(self, x: np.ndarray) -> float:
        g, p = self.geo, self.p
        F = self._F(x)
        psi = cm.evaluate(g["material"], F, p["mu"], p["lam"])[0] + cm.fiber(F, p["fiber"], p["s"])[0]
        total = float(np.dot(g["volume"], psi)) - float(np.sum(p["f_ext"] * x))
        if self.h is not None:
            h, m = self.h, p["mass"]
            total += float(np.sum(m[:, None] * (x - self.y) ** 2)) / (2 * h * h)
            total += p["alpha"] / (2 * h) * float(np.sum(m[:, None] * (x - self.x_n) ** 2))
            if p["beta"]:
                G = self._damping_gradient(x)
                psi_lin = 0.5 * np.sum(cm.linear_stress(G, p["mu"], p["lam"]) * G, axis=(1, 2))
                total += p["beta"] / h * float(np.dot(g["volume"], psi_lin))
        if p["ground"] is not None:
            height, k = p["ground"]
            depth = np.maximum(height - x[:, -1], 0.0)
            total += 0.5 * k * float(np.sum(depth ** 2))
        return total if np.isfinite(total) else np.inf

    def gradient(self, x: np.ndarray) -> np.ndarray:
        """``r = dPhi/dx`` ``[N, d]``."""
        g, p = self.geo, self.p
        F = self._F(x)
        P = cm.evaluate(g["material"], F, p["mu"], p["lam"])[1] + cm.fiber(F, p["fiber"], p["s"])[1]
        if self.h is not None and p["beta"]:
            P = P + p["beta"] / self.h * cm.linear_stress(self._damping_gradient(x), p["mu"], p["lam"])
        r = scatter_forces(P, g["volume"], g["elements"], g["G"], len(x)) - p["f_ext"]
        if self.h is not None:
            h, m = self.h, p["mass"][:, None]
            r += m * (x - self.y) / (h * h) + p["alpha"] / h * m * (x - self.x_n)
        if p["ground"] is not None:
            height, k = p["ground"]
            r[:, -1] -= k * np.maximum(height - x[:, -1], 0.0)
        return r

    def hessian_data(self, x: np.ndarray, project: bool = False) -> np.ndarray:
        """CSR data (in ``geo['pattern']``) of ``dr/dx``; ``project``: PSD element tangents."""
        g, p = self.geo, self.p
        F = self._F(x)
        d = F.shape[1]
        C = cm.evaluate(g["material"], F, p["mu"], p["lam"], tangent=True)[2] \
            + cm.fiber(F, p["fiber"], p["s"], tangent=True)[2]
        if project:
            C = project_psd(C)
        if self.h is not None and p["beta"]:
            I4, I4T, IxI = cm.identity4(d)
            C = C + p["beta"] / self.h * (p["mu"][:, None, None, None, None] * (I4 + I4T)
                                          + p["lam"][:, None, None, None, None] * IxI)
        diag = np.zeros(len(x) * d)
        if self.h is not None:
            h = self.h
            diag += np.repeat(p["mass"], d) * (1.0 / (h * h) + p["alpha"] / h)
        if p["ground"] is not None:
            height, k = p["ground"]
            diag[d - 1::d] += k * (x[:, -1] < height)
        return g["pattern"].data(element_stiffness(C, g["volume"], g["G"]), diag)
