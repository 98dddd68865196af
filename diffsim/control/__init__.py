"""Controllers, losses and training loops."""

from .controller import ControllerSineMLP
from .optim import Adam, clip_by_global_norm

__all__ = ["ControllerSineMLP", "Adam", "clip_by_global_norm"]
