"""Grid boundary conditions of the MPM solver: domain walls and the ground plane.

MPM enforces boundaries on grid velocities after the grid update (Stomakhin et al. 2013,
section 8): a node inside a wall or below the ground gets its velocity ``v`` projected
with respect to the wall's inward normal ``n`` (``v_n = v . n``, ``v_t = v - v_n n``):

* ``sticky``: ``v = 0`` (no slip, no separation);
* ``slip``: ``v = v_t`` (the normal part is removed both ways: no penetration, no
  separation), with Coulomb friction when approaching;
* ``separate``: when approaching (``v_n < 0``) ``v = v_t`` with Coulomb friction,
  otherwise ``v`` is left alone (the material may leave the wall).

Coulomb friction shortens the tangential velocity by ``mu |v_n|``:
``v_t <- max(0, 1 - mu |v_n| / |v_t|) v_t`` (a full stop when friction wins). The norm is
``sqrt(v_t . v_t + 1e-20)`` so that the adjoint stays finite at ``v_t = 0``.

Colliders (boxes, spheres, meshes ...) are handled by
:meth:`diffsim.contact.colliders.ColliderSet.grid_collide`, which applies the same three
conditions relative to a moving collider.
"""

import taichi as ti

KINDS = ("sticky", "slip", "separate")


@ti.func
def collide(v, n, mu, active, kind: ti.template()):
    """Velocity ``v`` [m/s] after a wall of inward unit normal ``n`` and friction ``mu``,
    where ``active`` (the node lies in the wall) and ``v`` unchanged elsewhere.

    Written with selects, not branches: Taichi's reverse mode keeps a stack for a local
    that a runtime ``if`` reassigns and later code reads, and chained walls would need one
    per wall.
    """
    vn = v.dot(n)
    vt = v - vn * n
    lt = ti.sqrt(vt.dot(vt) + 1e-20)
    slid = ti.max(0.0, 1.0 + mu * vn / lt) * vt
    out = v
    if ti.static(kind == "sticky"):
        out = ti.select(active, ti.Vector.zero(float, v.n), v)
    elif ti.static(kind == "slip"):
        out = ti.select(active, ti.select(vn < 0, slid, vt), v)
    else:
        out = ti.select(active & (vn < 0), slid, v)
    return out
