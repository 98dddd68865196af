"""Open-loop rollouts as one ``torch.autograd.Function`` over the engine's checkpointed Rollout.

Forward runs :class:`~diffsim.autodiff.Rollout` (segments of at most the solver's window;
one host checkpoint per segment) and returns the recorded frames. Backward scatters the
incoming frame gradients into ``[T + 1, B, N, ...]`` cotangents and runs
``Rollout.backward``, which restores each segment's checkpoint, recomputes it and runs its
adjoint, last segment first. The last segment is still in the window after forward and is
not recomputed, unless another op used the solver in between (then it is).
"""

from dataclasses import dataclass

import numpy as np
import torch  # noqa: TID253 (the torch bridge is the one place that imports torch eagerly)
from torch.autograd.function import once_differentiable  # noqa: TID253

from ..autodiff import Rollout
from .boundary import (
    detached,
    from_host,
    host,
    initial_state,
    param_tensors,
    to_engine,
    user_dtype_device,
)
from .params import ParamScope


@dataclass
class _Plan:
    """One call's flat input order: ``[(kind, name)]``, kind ``state``/``control``/``param``."""

    op: "RolloutOp"
    inputs: list

    def split(self, flat) -> tuple:
        parts = {"state": {}, "control": {}, "param": {}}
        for (kind, name), t in zip(self.inputs, flat):
            parts[kind][name] = t
        return parts["state"], parts["control"], parts["param"]


def _forward(plan: _Plan, flat) -> tuple:
    """Run the engine's Rollout; returns (recorded tensors, the Rollout)."""
    op = plan.op
    states, controls, params = plan.split([detached(t) for t in flat])
    scope = ParamScope(op.solver.model, params)
    rollout = Rollout(op.solver, op.steps, op.dt, record=op.record, segment=op.segment)
    scope.bind()
    try:
        out = rollout.forward({n: host(t) for n, t in states.items()},
                              controls={n: host(t) for n, t in controls.items()})
    finally:
        scope.unbind()
    outs = tuple(from_host(out[n] if op.frames is None else out[n][op.frames]) for n in op.record)
    return outs, rollout


class _RolloutFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, plan, *flat):
        outs, rollout = _forward(plan, flat)
        ctx.plan, ctx.rollout = plan, rollout
        # Parameters go through save_for_backward, so an in-place change before backward is
        # caught; states and controls live on in the Rollout's host copies.
        ctx.param_index = [k for k, (kind, _) in enumerate(plan.inputs) if kind == "param"]
        ctx.save_for_backward(*(flat[k] for k in ctx.param_index))
        ctx.set_materialize_grads(False)
        return outs

    @staticmethod
    @once_differentiable
    def backward(ctx, *grads):
        plan, rollout = ctx.plan, ctx.rollout
        op, s = plan.op, plan.op.solver
        record_grads = {}
        for name, g in zip(op.record, grads):
            if g is None:
                continue
            if op.frames is None:
                record_grads[name] = host(g)
            else:
                full = np.zeros((op.steps + 1,) + s.frame_shape(name), dtype=s.dtype)
                np.add.at(full, op.frames, host(g))  # chosen frames may repeat
                record_grads[name] = full
        if not record_grads:
            return (None,) * (1 + len(plan.inputs))
        scope = ParamScope(s.model, {plan.inputs[k][1]: t
                                     for k, t in zip(ctx.param_index, ctx.saved_tensors)})
        scope.bind()
        try:
            rg = rollout.backward(record_grads)
        finally:
            scope.unbind()
        out = [None]
        for k, (kind, name) in enumerate(plan.inputs):
            if ctx.needs_input_grad[k + 1]:
                src = {"state": rg.initial, "control": rg.controls, "param": rg.params}[kind]
                out.append(from_host(src[name]))
            else:
                out.append(None)
        return tuple(out)


class RolloutOp:
    """Open-loop rollout of ``steps`` steps as one differentiable torch op.

    Args:
        solver: any solver; its window is the longest checkpoint segment.
        steps: T, number of steps.
        dt: step length [s].
        record: state arrays returned, e.g. ``("x", "v")``.
        frames: frames returned, ints in ``0..T`` (negative counts back from ``T + 1``,
            repeats allowed); default all ``T + 1``.
        segment: checkpoint segment length (default: the solver's window). Device memory is
            one window; host memory one frame per segment plus the recorded frames.

    ``op(initial=None, actions=None, params=None, controls=None)``:
        initial: ``{name: [B, N, ...]}``; arrays not given come from the model's builder.
        actions: ``[T, B, A]`` actuation (shorthand for ``controls={"act": ...}``).
        params: ``{name: [B, ...]}`` model parameters (broadcastable, e.g. ``[S]``).
        controls: ``{name: [T, B, count, ...]}`` other per-step solver controls.

    Returns ``{name: [F, B, N, ...]}`` in the dtype and on the device of the first tensor
    argument. Any tensor argument may require grad; those that do not get none. Under
    ``torch.no_grad()`` (or with no input requiring grad) only the forward runs and nothing
    is kept for a backward.
    """

    def __init__(self, solver, steps: int, dt: float, record=("x",), frames=None,
                 segment: int | None = None):
        self.solver, self.steps, self.dt = solver, int(steps), float(dt)
        self.record = tuple(record)
        for name in self.record:
            if name not in solver.state_names:
                raise KeyError(f"cannot record {name!r}: state arrays are {solver.state_names}")
        self.segment = segment
        self.frames = None
        if frames is not None:
            idx = np.asarray(frames, dtype=np.int64).reshape(-1)
            if np.any(idx < -(self.steps + 1)) or np.any(idx > self.steps):
                raise IndexError(f"frames must lie in -{self.steps + 1}..{self.steps}")
            self.frames = np.where(idx < 0, idx + self.steps + 1, idx)

    def __call__(self, initial=None, actions=None, params=None, controls=None) -> dict:
        s, T = self.solver, self.steps
        controls = dict(controls or {})
        if actions is not None:
            if s.action_count == 0:
                raise ValueError("the model has no actuators; do not pass actions")
            controls["act"] = actions
        inputs, flat = [], []
        for name, t in initial_state(s, initial).items():
            inputs.append(("state", name))
            flat.append(t)
        for name, value in controls.items():
            if name not in s.control_names:
                raise KeyError(f"{type(s).__name__} has no control {name!r}; it has {s.control_names}")
            inputs.append(("control", name))
            flat.append(to_engine(value, f"control {name!r}", (T,) + s.control_shape(name)))
        for name, t in param_tensors(s.model, params).items():
            inputs.append(("param", name))
            flat.append(t)
        plan = _Plan(self, inputs)
        if torch.is_grad_enabled() and any(t.requires_grad for t in flat):
            outs = _RolloutFn.apply(plan, *flat)
        else:  # forward only: the Rollout and its checkpoints are dropped right here
            outs = _forward(plan, flat)[0]
        dtype, device = user_dtype_device(*(initial or {}).values(), actions,
                                          *(params or {}).values())
        return {n: o.to(device=device, dtype=dtype) for n, o in zip(self.record, outs)}
