"""Particle-grid transfers of MLS-MPM and their hand-written adjoints.

With quadratic B-splines a particle at ``X = (x - origin) / dx`` (in cells) touches the
``3^dim`` nodes ``base + o``, ``base = floor(X - 0.5)``, ``o in {0,1,2}^dim``, with weight
``W = prod_k N(fx_k - o_k)``, ``fx = X - base``, and per-axis weights
``w(0) = (1.5 - f)^2 / 2``, ``w(1) = 0.75 - (f - 1)^2``, ``w(2) = (f - 0.5)^2 / 2``.

Forward (see :mod:`.solver` for the scheme):

* scatter: ``p_n += W (m v + A (o - fx) dx)``, ``m_n += W m`` with ``A`` the particle's
  affine matrix (APIC momentum plus stress);
* gather: ``v' = sum W g_n``, ``C' = 4/dx sum W g_n (o - fx)^T``, ``x' = x + h v'``.

Both are linear in the grid and particle values apart from the weights, so their adjoints
are short and written here by hand. Taichi's reverse mode of the same loops ran about six
times slower (it keeps every intermediate of the unrolled stencil) and took minutes to
compile in 3D. Adjoints (bars) of the scatter, per node:

* ``Wbar = pbar . q + mbar m`` with ``q = m v + A dpos``;
* ``xbar += (sum Wbar dW/dfx - dx W A^T pbar) / dx``, ``vbar += W m pbar``,
  ``Abar += W pbar dpos^T``, ``mass_bar += W (pbar . v + mbar)``;

and of the gather (with ``va = vbar' + h xbar'``, ``Ca = 4/dx Cbar'``):

* ``gbar_n += W (va + Ca d)``, ``Wbar = g . (va + Ca d)``,
* ``xbar += xbar' + (sum Wbar dW/dfx - W Ca^T g) / dx``.

The stencil loop is dynamic along the first axis and unrolled along the others: a third of
the code of a full unroll (compile time) at a few percent of run time.
"""

import taichi as ti


@ti.data_oriented
class TransferMixin:
    """Stencil, scatter, gather and their adjoints as Taichi functions of the solver.

    Expects ``origin``, ``inv_dx``, ``dx``, ``grid_res``, ``real``, the windowed fields
    ``x``, ``v``, ``C``, the scratch ``affine`` ``[B, N]`` and the grid fields ``grid_p``,
    ``grid_m``, ``grid_v`` ``[B, *grid_res]``.
    """

    @ti.func
    def _stencil(self, xp):
        """Base node, fractional position (cells), weights and weight slopes per axis."""
        D = ti.static(len(self.grid_res))
        X = (xp - ti.Vector(self.origin)) * self.inv_dx
        base = ti.cast(X - 0.5, ti.i32)
        # Clamp so that a particle that left the domain cannot address memory outside the grid.
        for k in ti.static(range(D)):
            base[k] = ti.min(ti.max(base[k], 0), self.grid_res[k] - 3)
        fx = X - ti.cast(base, self.real)
        w = ti.Matrix.rows([0.5 * (1.5 - fx) ** 2, 0.75 - (fx - 1.0) ** 2, 0.5 * (fx - 0.5) ** 2])
        dw = ti.Matrix.rows([fx - 1.5, -2.0 * (fx - 1.0), fx - 0.5])
        return base, fx, w, dw

    @ti.func
    def _node(self, b, base, i, rest):
        D = ti.static(len(self.grid_res))
        return ti.Vector([b, base[0] + i] + [base[k + 1] + rest[k] for k in ti.static(range(D - 1))])

    @ti.func
    def _weight(self, w, dw, i, rest):
        """Weight ``W`` of node offset ``(i, *rest)`` and its gradient ``dW/dfx``."""
        D = ti.static(len(self.grid_res))
        f = ti.Vector([_pick(w, i, 0)] + [w[rest[k], k + 1] for k in ti.static(range(D - 1))])
        df = ti.Vector([_pick(dw, i, 0)] + [dw[rest[k], k + 1] for k in ti.static(range(D - 1))])
        W = ti.cast(1.0, self.real)
        for k in ti.static(range(D)):
            W *= f[k]
        grad = ti.Vector.zero(self.real, D)
        for k in ti.static(range(D)):
            g = df[k]
            for j in ti.static(range(D)):
                if ti.static(j != k):
                    g *= f[j]
            grad[k] = g
        return W, grad

    @ti.func
    def _offset(self, fx, i, rest):
        D = ti.static(len(self.grid_res))
        o = ti.Vector([ti.cast(i, self.real)] + [ti.cast(rest[k], self.real) for k in ti.static(range(D - 1))])
        return o - fx

    # -- forward ----------------------------------------------------------------------------------
    @ti.func
    def _scatter(self, si, b, p, mass):
        D = ti.static(len(self.grid_res))
        xp = self.x[si, b, p]
        base, fx, w, dw = self._stencil(xp)
        A = self.affine[b, p]
        mv = mass * self.v[si, b, p]
        for i in range(3):
            for rest in ti.static(ti.grouped(ti.ndrange(*((3,) * (D - 1))))):
                W, _ = self._weight(w, dw, i, rest)
                dpos = self._offset(fx, i, rest) * self.dx
                node = self._node(b, base, i, rest)
                self.grid_p[node] += W * (mv + A @ dpos)
                self.grid_m[node] += W * mass

    @ti.func
    def _gather(self, si, so, b, p, dt):
        D = ti.static(len(self.grid_res))
        xp = self.x[si, b, p]
        base, fx, w, dw = self._stencil(xp)
        v_new = ti.Vector.zero(self.real, D)
        B = ti.Matrix.zero(self.real, D, D)
        for i in range(3):
            for rest in ti.static(ti.grouped(ti.ndrange(*((3,) * (D - 1))))):
                W, _ = self._weight(w, dw, i, rest)
                g = self.grid_v[self._node(b, base, i, rest)]
                v_new += W * g
                B += W * g.outer_product(self._offset(fx, i, rest))
        self.v[so, b, p] = v_new
        self.C[so, b, p] = (4.0 * self.inv_dx) * B
        self.x[so, b, p] = xp + dt * v_new

    # -- adjoints ---------------------------------------------------------------------------------
    @ti.func
    def _scatter_adjoint(self, si, b, p, mass):
        """Returns ``mass_bar``; accumulates x/v adjoints of slot ``si``, stores ``affine.grad``."""
        D = ti.static(len(self.grid_res))
        xp = self.x[si, b, p]
        base, fx, w, dw = self._stencil(xp)
        A = self.affine[b, p]
        vp = self.v[si, b, p]
        mv = mass * vp
        fx_bar = ti.Vector.zero(self.real, D)
        v_bar = ti.Vector.zero(self.real, D)
        A_bar = ti.Matrix.zero(self.real, D, D)
        m_bar = ti.cast(0.0, self.real)
        for i in range(3):
            for rest in ti.static(ti.grouped(ti.ndrange(*((3,) * (D - 1))))):
                W, dW = self._weight(w, dw, i, rest)
                dpos = self._offset(fx, i, rest) * self.dx
                node = self._node(b, base, i, rest)
                pb = self.grid_p.grad[node]
                mb = self.grid_m.grad[node]
                q = mv + A @ dpos
                fx_bar += (pb.dot(q) + mb * mass) * dW - (W * self.dx) * (A.transpose() @ pb)
                v_bar += (W * mass) * pb
                A_bar += W * pb.outer_product(dpos)
                m_bar += W * (pb.dot(vp) + mb)
        self.x.grad[si, b, p] += self.inv_dx * fx_bar
        self.v.grad[si, b, p] += v_bar
        self.affine.grad[b, p] = A_bar
        return m_bar

    @ti.func
    def _gather_adjoint(self, si, so, b, p, dt):
        D = ti.static(len(self.grid_res))
        xp = self.x[si, b, p]
        base, fx, w, dw = self._stencil(xp)
        x_bar = self.x.grad[so, b, p]
        va = self.v.grad[so, b, p] + dt * x_bar
        Ca = (4.0 * self.inv_dx) * self.C.grad[so, b, p]
        fx_bar = ti.Vector.zero(self.real, D)
        for i in range(3):
            for rest in ti.static(ti.grouped(ti.ndrange(*((3,) * (D - 1))))):
                W, dW = self._weight(w, dw, i, rest)
                d = self._offset(fx, i, rest)
                node = self._node(b, base, i, rest)
                g = self.grid_v[node]
                a = va + Ca @ d
                self.grid_v.grad[node] += W * a
                fx_bar += g.dot(a) * dW - W * (Ca.transpose() @ g)
        self.x.grad[si, b, p] += x_bar + self.inv_dx * fx_bar


@ti.func
def _pick(M, i, k):
    """``M[i, k]`` for a runtime row ``i`` in 0..2 (selects, no dynamic indexing)."""
    return ti.select(i == 0, M[0, k], ti.select(i == 1, M[1, k], M[2, k]))
