"""Tapes, checkpointed rollouts, gradient checks and gradient diagnostics."""

from .checkpoint import Rollout, RolloutGrads
from .diagnostics import GradientError, GradientMonitor, SimulationError, check_finite
from .tape import Tape

__all__ = ["Rollout", "RolloutGrads", "Tape", "GradientMonitor", "GradientError",
           "SimulationError", "check_finite"]
