"""One differentiable step, and closed loops with a torch controller built from it.

:class:`StepOp` is a ``torch.autograd.Function`` for one step ``(state_t, controls_t,
params) -> state_{t+1}`` on frames 0 and 1 of a solver's window. Its forward saves only its
inputs (a state is small; the previous step's output is the same tensor, so it costs no
extra memory). Its backward writes the saved input back into frame 0, recomputes the step
(other steps have overwritten the window since), clears the gradient fields, seeds frame
1's gradient, runs ``step_grad`` and reads back the state, control and parameter
gradients; :mod:`.port` does each of these in one kernel launch.

:class:`ClosedLoop` chains StepOps with ``a_t = controller(obs(state_t))``. Without
``checkpoint`` autograd keeps every step's inputs and the controller's activations; with
``checkpoint=K``, ``torch.utils.checkpoint`` keeps only every K-th state and recomputes a
segment (controller and simulator) when backward reaches it.
"""

import inspect

import torch  # noqa: TID253 (the torch bridge is the one place that imports torch eagerly)
from torch.autograd.function import once_differentiable  # noqa: TID253
from torch.utils.checkpoint import checkpoint as torch_checkpoint  # noqa: TID253

from .boundary import (
    detached,
    initial_state,
    param_tensors,
    to_engine,
    user_dtype_device,
)
from .params import ParamScope
from .port import port_for


class _StepFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, op, scope, port, *flat):
        flat = tuple(detached(t) for t in flat)
        ctx.op, ctx.scope, ctx.port = op, scope, port
        ctx.save_for_backward(*flat)
        ctx.set_materialize_grads(False)
        return op._run(port, scope, flat)

    @staticmethod
    @once_differentiable
    def backward(ctx, *grads):
        op, scope, port = ctx.op, ctx.scope, ctx.port
        s, flat = op.solver, ctx.saved_tensors
        if all(g is None for g in grads):
            return (None,) * (3 + len(flat))
        scope.bind()
        scope.release_after_backward()
        n_s, n_c = len(s.state_names), len(port.controls)
        # Reload the saved input and recompute the step (other steps have overwritten the
        # window since this forward); the same launch clears every gradient field the
        # adjoint accumulates into and seeds frame 1's gradient.
        port.load_and_seed(list(flat[:n_s]), dict(zip(port.controls, flat[n_s:n_s + n_c])),
                           1, list(grads))
        s.step(s.state(0), s.state(1), s.control(0), op.dt)
        s.step_grad(s.state(0), s.state(1), s.control(0), op.dt)
        g_states, g_controls, g_params = port.harvest()
        found = [*g_states, *(g_controls[n] for n in port.controls),
                 *(g_params[n] for n in port.params)]
        return (None, None, None, *(g if need else None
                                    for g, need in zip(found, ctx.needs_input_grad[3:])))


class StepOp:
    """One differentiable step: ``(state_t, action_t, parameters) -> state_{t+1}``.

    Args:
        solver: frames 0 and 1 of its window are used: give the op a solver of its own
            (``window=1``). Sharing one with a :class:`RolloutOp` stays correct but makes
            that rollout's backward recompute its last segment.
        dt: step length [s].

    ``op(state, action=None, params=None, controls=None)``:
        state: ``{name: [B, N, ...]}``, every state array of the solver.
        action: ``[B, A]`` actuation; controls: ``{name: [B, count, ...]}`` other controls
            (those not given take the solver's defaults).
        params: ``{name: [B, ...]}`` model parameters (broadcastable).
    Returns ``{name: [B, N, ...]}`` in the engine's dtype on the engine's device.
    """

    def __init__(self, solver, dt: float):
        self.solver, self.dt = solver, float(dt)

    def _run(self, port, scope, flat) -> tuple:
        s = self.solver
        n_s, n_c = len(s.state_names), len(port.controls)
        scope.bind()
        try:
            port.load(list(flat[:n_s]), dict(zip(port.controls, flat[n_s:n_s + n_c])))
            s.step(s.state(0), s.state(1), s.control(0), self.dt)
            return tuple(port.store(1))
        finally:
            scope.release()

    def prepare(self, state, action=None, params=None, controls=None) -> tuple:
        """Engine tensors of a step's inputs: ``(state, controls, params)`` dicts."""
        s = self.solver
        missing = [n for n in s.state_names if n not in state]
        unknown = [n for n in state if n not in s.state_names]
        if missing or unknown:
            raise KeyError(f"state has {sorted(state)}; a step needs exactly {s.state_names}")
        st = {n: to_engine(state[n], f"state {n!r}", s.frame_shape(n)) for n in s.state_names}
        ctl = dict(controls or {})
        if action is not None:
            if s.action_count == 0:
                raise ValueError("the model has no actuators; do not pass an action")
            ctl["act"] = action
        for name in ctl:
            if name not in s.control_names:
                raise KeyError(f"{type(s).__name__} has no control {name!r}; it has {s.control_names}")
        ctl = {n: to_engine(v, f"control {n!r}", s.control_shape(n)) for n, v in ctl.items()}
        return st, ctl, param_tensors(s.model, params)

    def apply(self, scope, st: dict, ctl: dict, prm: dict) -> dict:
        """One step on prepared inputs; differentiable when any input requires grad."""
        port = port_for(self.solver, tuple(ctl), tuple(prm))
        flat = [*st.values(), *ctl.values(), *prm.values()]
        if torch.is_grad_enabled() and any(t.requires_grad for t in flat):
            outs = _StepFn.apply(self, scope, port, *flat)
        else:
            outs = self._run(port, scope, [detached(t) for t in flat])
        return dict(zip(self.solver.state_names, outs))

    def __call__(self, state, action=None, params=None, controls=None) -> dict:
        st, ctl, prm = self.prepare(state, action, params, controls)
        return self.apply(ParamScope(self.solver.model, prm), st, ctl, prm)


def default_obs(state: dict) -> torch.Tensor:
    """Observation ``[B, O]``: every state array flattened per environment and concatenated
    (mass-spring: positions [m], then velocities [m/s])."""
    return torch.cat([t.reshape(t.shape[0], -1) for t in state.values()], dim=1)


class ClosedLoop:
    """``steps`` steps with a torch controller in the loop; gradients reach its weights.

    Each step: ``o_t = obs(state_t)`` (or ``obs(state_t, t)``), ``a_t = controller(o_t)``
    ``[B, A]`` (cast to the engine's dtype), ``state_{t+1} = step(state_t, a_t, params)``.

    Args:
        solver: a solver reserved for the loop (``window=1`` is enough).
        dt: step length [s].
        controller: any ``nn.Module`` or callable ``[B, O] -> [B, A]``; observations are
            cast to the dtype of its first parameter.
        obs: ``obs(state) -> [B, O]`` or ``obs(state, t)``; default :func:`default_obs`.
        record: state arrays returned for every frame.
        checkpoint: ``None`` keeps each step's inputs and controller activations for
            backward; ``K`` runs ``torch.utils.checkpoint`` over segments of K steps (keeps
            every K-th state, recomputes a segment in backward; slower, see
            docs/torch_bridge.md).

    ``loop(steps, initial=None, params=None)`` returns ``{name: [T + 1, B, N, ...],
    "act": [T, B, A]}`` in the dtype and on the device of the first tensor argument.
    """

    def __init__(self, solver, dt: float, controller, obs=None, record=("x", "v"),
                 checkpoint: int | None = None):
        if solver.action_count == 0:
            raise ValueError("a closed loop needs a model with actuators")
        self.solver, self.controller = solver, controller
        self.step = StepOp(solver, dt)
        self.obs = obs or default_obs
        self._obs_takes_t = len(inspect.signature(self.obs).parameters) >= 2
        self.record = tuple(record)
        for name in self.record:
            if name not in solver.state_names:
                raise KeyError(f"cannot record {name!r}: state arrays are {solver.state_names}")
        if checkpoint is not None and checkpoint < 1:
            raise ValueError("checkpoint must be None or a segment length >= 1")
        self.checkpoint = checkpoint
        first = (next(controller.parameters(), None) if isinstance(controller, torch.nn.Module)
                 else None)
        self._obs_dtype = first.dtype if first is not None else None

    def _segment(self, t0: int, n: int, scope, prm: dict, *state_values) -> tuple:
        """Steps ``t0 .. t0 + n - 1``: (final state..., records [n, ...]..., actions [n, B, A])."""
        s = self.solver
        state = dict(zip(s.state_names, state_values))
        records, actions = {name: [] for name in self.record}, []
        shape = s.control_shape("act")
        for t in range(t0, t0 + n):
            o = self.obs(state, t) if self._obs_takes_t else self.obs(state)
            a = self.controller(o if self._obs_dtype is None else o.to(self._obs_dtype))
            a = to_engine(a, "controller output", shape)
            state = self.step.apply(scope, state, {"act": a}, prm)
            actions.append(a)
            for name in self.record:
                records[name].append(state[name])
        return (*state.values(), *(torch.stack(records[name]) for name in self.record),
                torch.stack(actions))

    def __call__(self, steps: int, initial=None, params=None) -> dict:
        s = self.solver
        if steps < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        state = initial_state(s, initial)
        prm = param_tensors(s.model, params)
        scope = ParamScope(s.model, prm)
        k = self.checkpoint if (self.checkpoint and torch.is_grad_enabled()) else steps
        records = {name: [state[name][None]] for name in self.record}
        actions = []
        scope.hold = True
        scope.bind()
        try:
            for t0 in range(0, steps, k):
                args = (t0, min(k, steps - t0), scope, prm, *state.values())
                out = (torch_checkpoint(self._segment, *args, use_reentrant=False) if k < steps
                       else self._segment(*args))
                state = dict(zip(s.state_names, out[:len(state)]))
                for j, name in enumerate(self.record):
                    records[name].append(out[len(state) + j])
                actions.append(out[-1])
        finally:
            scope.hold = False
            scope.release()
        dtype, device = user_dtype_device(*(initial or {}).values(), *(params or {}).values())
        result = {name: torch.cat(v).to(device=device, dtype=dtype) for name, v in records.items()}
        result["act"] = torch.cat(actions).to(device=device, dtype=dtype)
        return result
