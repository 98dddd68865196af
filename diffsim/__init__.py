"""diffsim: differentiable physics (mass-spring, MPM, FEM, contact) on Taichi.

Start with :func:`diffsim.core.backend.init`, build a model (a builder or
:func:`load_scene`), make a solver, and roll it out with :class:`Rollout`.
"""

from .autodiff import GradientMonitor, Rollout, SimulationError, Tape
from .core import backend
from .core.builder import MassSpringBuilder, ModelBuilder
from .core.model import Model, Parameter
from .core.state import Control, State

__version__ = "0.1.0"


def load_scene(path, **kwargs):
    """Load a TOML scene file; see :func:`diffsim.scene.load_scene`."""
    from .scene import load_scene as _load

    return _load(path, **kwargs)


__all__ = ["backend", "Model", "Parameter", "State", "Control", "ModelBuilder", "MassSpringBuilder",
           "Rollout", "Tape", "GradientMonitor", "SimulationError", "load_scene", "__version__"]
