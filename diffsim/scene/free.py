"""Free parameters: the model parameters a scene opens to training or identification.

A ``[[free]]`` table names a model parameter with bounds and a scaling. Optimisers work in
the *unit coordinate* ``z`` in [0, 1]: linear, ``p = lower + z (upper - lower)``, or
logarithmic, ``p = lower (upper / lower)^z``, so a stiffness searched over
[1e2, 1e5] N/m moves by decades rather than by Newtons-per-metre.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


def value_to_unit(value, lower: float, upper: float, scale: str) -> np.ndarray:
    """Map a parameter value into [0, 1] over ``[lower, upper]``, linearly or in log."""
    v = np.asarray(value, dtype=np.float64)
    if scale == "log":
        return (np.log(v) - np.log(lower)) / (np.log(upper) - np.log(lower))
    return (v - lower) / (upper - lower)


def unit_to_value(z, lower: float, upper: float, scale: str) -> np.ndarray:
    """Inverse of :func:`value_to_unit`."""
    z = np.asarray(z, dtype=np.float64)
    if scale == "log":
        return lower * (upper / lower) ** z
    return lower + z * (upper - lower)


@dataclass
class FreeParam:
    """One free parameter.

    Attributes:
        name: model parameter name, e.g. ``"spring_stiffness"``.
        lower, upper: bounds, in the parameter's units.
        scale: ``"linear"`` or ``"log"`` (then ``lower > 0``).
        init: starting value from the scene (``None``: the model's value).
        index: the one component freed (``None``: every entry shares one value), e.g. 2
            for gravity's z; checked against the parameter's shape when the model is built.
        units: the parameter's units (filled in when the model is built).
        shape: the parameter's shape ``[B, ...]`` (filled in when the model is built).
    """

    name: str
    lower: float
    upper: float
    scale: str = "linear"
    init: float | None = None
    index: int | None = None
    units: str = ""
    shape: tuple = field(default_factory=tuple)

    @property
    def label(self) -> str:
        """``name``, or ``name[index]`` for one component (as in reports)."""
        return self.name if self.index is None else f"{self.name}[{self.index}]"

    def entries(self, value: np.ndarray) -> np.ndarray:
        """The freed entries of a ``[B, ...]`` parameter value: all, or component ``index``."""
        return value if self.index is None else value[:, self.index]

    def put(self, full: np.ndarray, value) -> np.ndarray:
        """``full`` (a ``[B, ...]`` parameter value, changed in place) with the freed entries
        set to ``value`` (broadcast); returns it."""
        full[(slice(None),) if self.index is None else (slice(None), self.index)] = value
        return full

    def to_unit(self, value) -> np.ndarray:
        """Parameter value(s) -> unit coordinate(s) in [0, 1] (outside when out of bounds)."""
        return value_to_unit(value, self.lower, self.upper, self.scale)

    def from_unit(self, z) -> np.ndarray:
        """Unit coordinate(s) -> parameter value(s)."""
        return unit_to_value(z, self.lower, self.upper, self.scale)

    def clip(self, value) -> np.ndarray:
        """``value`` clipped to [lower, upper]."""
        return np.clip(np.asarray(value, dtype=np.float64), self.lower, self.upper)

    def contains(self, value) -> bool:
        v = np.asarray(value, dtype=np.float64)
        return bool(np.all((v >= self.lower) & (v <= self.upper)))
