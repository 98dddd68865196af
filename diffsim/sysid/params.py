"""Free parameters of an identification: bounds, scaling, and their binding to a model.

Optimisers work on the *unit coordinate* ``z`` in [0, 1] of each free parameter (the
scene's ``[[free]]`` convention, :class:`diffsim.scene.FreeParam`): linear,
``p = lower + z (upper - lower)``, or logarithmic, ``p = lower (upper / lower)^z``, so that a
stiffness searched over three decades moves in relative steps and every coordinate has the
same range (well-conditioned for Adam's step size and for L-BFGS-B's bounds).

A parameter is one scalar per group of environments. It binds to the model as:

* a model parameter by name (``spring_stiffness``): the scalar is written to every entry
  (every spring), or to the entries ``index`` selects (``gravity`` with ``index=2``: the
  vertical component); its gradient is the sum of the entries' gradients;
* ``youngs_modulus`` [Pa] / ``poisson_ratio`` [-]: a model parameter of that name when the
  model has one (MPM), else derived on models with Lame parameters ``element_mu``/
  ``element_lam`` (FEM): ``mu = E / (2 (1 + nu))``, ``lam = E nu / ((1 + nu)(1 - 2 nu))``;
* ``time_offset`` [s]: not a model parameter; the loss terms shift their data by it
  (:mod:`.align`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..scene.free import unit_to_value, value_to_unit

ELASTIC = ("youngs_modulus", "poisson_ratio")
TIME_OFFSET = "time_offset"
_LAME_PAIRS = (("element_mu", "element_lam"), ("particle_mu", "particle_lam"), ("mu", "lam"))


@dataclass
class ParamSpec:
    """One free scalar.

    Attributes:
        name: a model parameter, ``youngs_modulus``/``poisson_ratio`` or ``time_offset``.
        lower, upper: bounds in the parameter's units; scale: ``linear`` or ``log``.
        init: start value (``None``: the model's current value, clipped to the bounds).
        index: entries of the per-environment parameter to set (``None``: all), e.g.
            ``2`` for the z component of ``gravity`` [B, 3].
        units: for reports (filled from the model when empty).
    """

    name: str
    lower: float
    upper: float
    scale: str = "linear"
    init: float | None = None
    index: int | tuple | None = None
    units: str = ""

    def __post_init__(self):
        if self.scale not in ("linear", "log"):
            raise ValueError(f"{self.name}: scale must be linear or log, got {self.scale!r}")
        if not self.lower < self.upper:
            raise ValueError(f"{self.name}: lower ({self.lower:g}) must be < upper ({self.upper:g})")
        if self.scale == "log" and not self.lower > 0:
            raise ValueError(f"{self.name}: a log-scaled parameter needs lower > 0")

    @property
    def label(self) -> str:
        if self.index is None:
            return self.name
        idx = self.index if isinstance(self.index, tuple) else (self.index,)
        return f"{self.name}[{', '.join(map(str, idx))}]"

    @classmethod
    def from_free(cls, free) -> "ParamSpec":
        """From a scene :class:`~diffsim.scene.FreeParam`."""
        return cls(free.name, float(free.lower), float(free.upper), free.scale, free.init,
                   getattr(free, "index", None), getattr(free, "units", ""))

    def to_unit(self, value) -> np.ndarray:
        return value_to_unit(value, self.lower, self.upper, self.scale)

    def from_unit(self, z) -> np.ndarray:
        return unit_to_value(z, self.lower, self.upper, self.scale)

    def dvalue_dunit(self, z) -> np.ndarray:
        """d value / d z at ``z``."""
        z = np.asarray(z, dtype=np.float64)
        if self.scale == "log":
            return self.from_unit(z) * np.log(self.upper / self.lower)
        return np.full_like(z, self.upper - self.lower)


def _derived(model, spec) -> bool:
    """Whether ``spec`` is an elastic modulus the model holds as Lame parameters."""
    return spec.name in ELASTIC and spec.name not in model.params


def _lame_names(model):
    for pair in _LAME_PAIRS:
        if all(n in model.params for n in pair):
            return pair
    return None


def _entries(arr: np.ndarray, index) -> np.ndarray:
    """Boolean mask over one environment's entries of a ``[B, ...]`` parameter."""
    mask = np.zeros(arr.shape[1:], bool)
    if index is None:
        mask[...] = True
    else:
        mask[index if isinstance(index, tuple) else (index,)] = True
    return mask


def check_specs(model, specs: list[ParamSpec]) -> None:
    """Raise ``KeyError``/``ValueError`` for names the model cannot bind, fill in units."""
    seen = set()
    for s in specs:
        if s.label in seen:
            raise ValueError(f"parameter {s.label!r} is free twice")
        seen.add(s.label)
        if s.name == TIME_OFFSET:
            s.units = s.units or "s"
            continue
        if _derived(model, s):
            if _lame_names(model) is None:
                raise KeyError(f"{s.name!r} needs a model with Lame parameters "
                               f"(element_mu/element_lam or particle_mu/particle_lam)")
            s.units = s.units or ("Pa" if s.name == "youngs_modulus" else "-")
            continue
        p = model.param(s.name)  # KeyError naming the parameters the model has
        if s.index is not None:
            try:
                _entries(p.numpy(), s.index)
            except IndexError:
                raise ValueError(f"index {s.index} is out of range for {s.name} of shape "
                                 f"{p.shape}") from None
        s.units = s.units or p.units


def current_values(model, specs: list[ParamSpec]) -> np.ndarray:
    """The model's values of the free parameters, ``[B, p]`` (entry mean for vectors)."""
    B = model.num_envs
    out = np.zeros((B, len(specs)))
    lame = _lame_names(model)
    for j, s in enumerate(specs):
        if s.name == TIME_OFFSET:
            out[:, j] = s.init if s.init is not None else 0.0
        elif _derived(model, s):
            mu, lam = (model.get(n).reshape(B, -1).mean(axis=1) for n in lame)
            out[:, j] = mu * (3 * lam + 2 * mu) / (lam + mu) if s.name == "youngs_modulus" \
                else lam / (2 * (lam + mu))
        else:
            arr = model.get(s.name)
            out[:, j] = arr[:, _entries(arr, s.index)].mean(axis=1)
    return out


def apply_values(model, specs: list[ParamSpec], values: np.ndarray) -> None:
    """Write ``values`` ``[B, p]`` into the model (``time_offset`` is skipped)."""
    values = np.asarray(values, float)
    B = model.num_envs
    for j, s in enumerate(specs):
        if _derived(model, s) or s.name == TIME_OFFSET:
            continue
        arr = model.get(s.name)
        m = _entries(arr, s.index)
        arr[:, m] = values[:, j][:, None]
        model.set(s.name, arr)
    el = [j for j, s in enumerate(specs) if _derived(model, s)]
    if el:
        mu_n, lam_n = _lame_names(model)
        cur = current_values(model, [ParamSpec(n, 0.1, 1.0) for n in ELASTIC])
        E, nu = cur[:, 0], cur[:, 1]
        for j in el:
            if specs[j].name == "youngs_modulus":
                E = values[:, j]
            else:
                nu = values[:, j]
        shape = model.param(mu_n).shape
        lead = (B,) + (1,) * (len(shape) - 1)  # one value per environment, on every element
        model.set(mu_n, np.broadcast_to((E / (2 * (1 + nu))).reshape(lead), shape))
        model.set(lam_n, np.broadcast_to((E * nu / ((1 + nu) * (1 - 2 * nu))).reshape(lead), shape))


def chain_grads(model, specs: list[ParamSpec], values: np.ndarray, param_grads: dict) -> np.ndarray:
    """d loss / d value ``[B, p]`` from model-parameter gradients ``{name: [B, ...]}``.

    ``values`` ``[B, p]`` are the values in force (needed by the elastic chain rule).
    """
    B = model.num_envs
    out = np.zeros((B, len(specs)))
    lame = _lame_names(model)
    E = nu = None
    for j, s in enumerate(specs):
        if s.name == TIME_OFFSET:
            continue
        if _derived(model, s):
            if E is None:
                cur = current_values(model, [ParamSpec(n, 0.1, 1.0) for n in ELASTIC])
                E, nu = cur[:, 0], cur[:, 1]
            gmu = param_grads[lame[0]].reshape(B, -1).sum(axis=1)
            glam = param_grads[lame[1]].reshape(B, -1).sum(axis=1)
            if s.name == "youngs_modulus":
                out[:, j] = gmu / (2 * (1 + nu)) + glam * nu / ((1 + nu) * (1 - 2 * nu))
            else:
                out[:, j] = gmu * (-E / (2 * (1 + nu) ** 2)) \
                    + glam * E * (1 + 2 * nu ** 2) / ((1 + nu) ** 2 * (1 - 2 * nu) ** 2)
            continue
        g = param_grads.get(s.name)
        if g is None:
            continue
        g = np.asarray(g).reshape((B,) + model.param(s.name).shape[1:])
        out[:, j] = g[:, _entries(g, s.index)].sum(axis=1)
    return out
