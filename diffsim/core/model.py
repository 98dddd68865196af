"""Static description of a scene: topology plus differentiable parameters.

A :class:`Model` is built once (by a builder) and never written by a time step. It holds
two kinds of data:

* **topology**: integer arrays that never change and carry no gradient (spring endpoints,
  tetrahedra, actuator groups), kept as NumPy arrays on the host and as Taichi fields for
  the kernels;
* **parameters**: real arrays with a leading environment axis ``[B, ...]`` (stiffness,
  masses, gravity, friction ...). Each is a Taichi field with gradient storage, so that
  every kernel that reads it accumulates its adjoint, and B environments with different
  parameters run in one launch.

Parameters are named; the torch bridge, the gradient checker and system identification
address them by name (``model.param("spring_stiffness")``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import taichi as ti

from . import backend


@dataclass
class Parameter:
    """One differentiable model parameter.

    Attributes:
        name: stable identifier, e.g. ``"spring_stiffness"``.
        field: Taichi field of shape ``[B, ...]`` with gradient storage.
        units: physical units, e.g. ``"N/m"``.
        doc: one-line description.
    """

    name: str
    field: object
    units: str = ""
    doc: str = ""
    # The owning model's deferred initial fills (see :meth:`Model.flush`); run before access.
    pending: list | None = dataclasses.field(default=None, repr=False, compare=False)

    def _flush(self) -> None:
        if self.pending:
            flush_pending(self.pending)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.field.shape)

    def numpy(self) -> np.ndarray:
        """Current value, shape ``[B, ...]``."""
        self._flush()
        return self.field.to_numpy()

    def set(self, value) -> None:
        """Assign a value broadcastable to ``[B, ...]``."""
        value = self._checked(value)
        self._flush()
        self.field.from_numpy(value)

    def _checked(self, value) -> np.ndarray:
        value = np.asarray(value, dtype=backend.np_real())
        try:
            value = np.broadcast_to(value, self.shape)
        except ValueError:
            raise ValueError(f"parameter {self.name!r}: expected shape {self.shape} "
                             f"(or broadcastable), got {value.shape}") from None
        if not np.all(np.isfinite(value)):
            raise ValueError(f"parameter {self.name!r}: value contains NaN or Inf")
        return np.ascontiguousarray(value)

    def set_deferred(self, value) -> None:
        """Like :meth:`set`, but the write waits for the model's next flush (builders use it)."""
        self.pending.append((self.field, self._checked(value)))

    def grad(self) -> np.ndarray:
        """Accumulated gradient, shape ``[B, ...]``."""
        self._flush()
        return self.field.grad.to_numpy()

    def zero_grad(self) -> None:
        self._flush()
        self.field.grad.fill(0)


def flush_pending(pending: list) -> None:
    """Fill fields declared earlier with their values: ``pending`` holds ``(field, array)``."""
    while pending:
        f, value = pending.pop(0)
        f.from_numpy(value)


@ti.data_oriented
class Model:
    """Topology and parameters of a scene for ``num_envs`` environments.

    Attributes:
        kind: which solver family built it (``"mass_spring"``, ``"mpm"``, ``"fem"``).
        dim: spatial dimension, 2 or 3.
        num_envs: B, the number of environments simulated together.
        counts: sizes by name, e.g. ``{"particle": N, "spring": S, "actuator": A}``.
        topology: integer host arrays by name (no gradient).
        params: :class:`Parameter` by name.
        meta: free-form host data a solver or renderer needs (e.g. body names).
    """

    def __init__(self, kind: str, dim: int, num_envs: int):
        if dim not in (2, 3):
            raise ValueError(f"dim must be 2 or 3, got {dim}")
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        self.kind = kind
        self.dim = dim
        self.num_envs = num_envs
        self.counts: dict[str, int] = {}
        self.topology: dict[str, np.ndarray] = {}
        self.params: dict[str, Parameter] = {}
        self.meta: dict = {}
        self._topology_fields: dict[str, object] = {}
        # Initial values wait here until every field is declared: the first fill places all
        # fields declared so far in one Taichi SNode tree, and a process may hold only 512
        # trees, so filling each field as it is created would exhaust them after a few
        # dozen models (a segfault in Taichi 1.7).
        self._pending: list = []

    # -- construction (builders call these) ---------------------------------------------
    def add_param(self, name: str, value: np.ndarray, units: str = "", doc: str = "") -> Parameter:
        """Create a differentiable parameter field from ``value`` of shape ``[B, ...]``."""
        value = np.asarray(value, dtype=backend.np_real())
        if value.ndim == 0 or value.shape[0] != self.num_envs:
            raise ValueError(f"parameter {name!r} must have leading axis B={self.num_envs}, "
                             f"got shape {value.shape}")
        shape = tuple(max(s, 1) for s in value.shape)
        f = ti.field(backend.real(), shape=shape, needs_grad=True)
        p = Parameter(name, f, units, doc, pending=self._pending)
        if value.size:
            p.set_deferred(value)
        self.params[name] = p
        setattr(self, name, f)
        return p

    def add_topology(self, name: str, value: np.ndarray) -> object:
        """Store an integer array on the host and as an ``i32`` field (attribute ``name``)."""
        value = np.ascontiguousarray(np.asarray(value, dtype=np.int32))
        self.topology[name] = value
        shape = tuple(max(s, 1) for s in value.shape) if value.ndim else (1,)
        f = ti.field(ti.i32, shape=shape)
        if value.size:
            self._pending.append((f, np.ascontiguousarray(value.reshape(shape))))
        self._topology_fields[name] = f
        setattr(self, name, f)
        return f

    def flush(self) -> None:
        """Write the deferred initial values into the fields.

        Builders call it at the end of ``finalize`` (so a model's fields share one SNode
        tree); code that adds fields to a model by hand calls it before using them.
        """
        flush_pending(self._pending)

    # -- access ---------------------------------------------------------------------------
    def param(self, name: str) -> Parameter:
        try:
            return self.params[name]
        except KeyError:
            raise KeyError(f"model has no parameter {name!r}; it has {sorted(self.params)}") from None

    def get(self, name: str) -> np.ndarray:
        return self.param(name).numpy()

    def set(self, name: str, value) -> None:
        self.param(name).set(value)

    def initial_state(self) -> dict[str, np.ndarray]:
        """The builder's initial state, ``{name: [B, N, ...]}`` (a fresh copy)."""
        return {k: np.array(v, dtype=backend.np_real()) for k, v in self.meta["initial_state"].items()}

    def grads(self) -> dict[str, np.ndarray]:
        return {n: p.grad() for n, p in self.params.items()}

    def zero_grads(self) -> None:
        for p in self.params.values():
            p.zero_grad()

    def param_bytes(self) -> int:
        item = np.dtype(backend.np_real()).itemsize
        return sum(int(np.prod(p.shape)) * item * 2 for p in self.params.values())

    def __repr__(self) -> str:
        return (f"Model(kind={self.kind!r}, dim={self.dim}, num_envs={self.num_envs}, "
                f"counts={self.counts}, params={sorted(self.params)})")
