"""PyTorch bridge: simulator rollouts as differentiable, batched, memory-bounded torch ops.

Three ops, on any solver that implements the :class:`~diffsim.solvers.SolverBase` contract,
batched over the model's B environments (tensors ``[B, ...]``; one kernel launch per
substep serves every environment):

* :class:`RolloutOp` (open loop): ``(initial state, actions [T, B, A], parameters) ->
  recorded frames [F, B, N, ...]``, one ``torch.autograd.Function`` around the engine's
  checkpointed :class:`~diffsim.autodiff.Rollout`;
* :class:`StepOp`: one step ``(state_t, action_t, parameters) -> state_{t+1}``;
* :class:`ClosedLoop`: a torch controller (any ``nn.Module``) in the loop,
  ``a_t = controller(obs(state_t))``, optionally ``torch.utils.checkpoint``-ed.

Parameters are passed by name (``{"spring_stiffness": tensor [B, S]}``); the model's fields
keep the user's values between calls. Inputs are cast to the engine's precision at the
boundary (a float64 tensor requiring grad is refused on a float32 engine); outputs come back
in the caller's dtype and device. See docs/torch_bridge.md.
"""

from .boundary import check_dtype, engine_device, engine_dtype
from .loop import ClosedLoop, StepOp, default_obs
from .rollout import RolloutOp

__all__ = ["RolloutOp", "StepOp", "ClosedLoop", "default_obs", "engine_dtype", "engine_device",
           "check_dtype"]
