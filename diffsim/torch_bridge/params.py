"""Model parameters of an op call: written into the model while the call runs, then restored.

The model's parameter fields hold the user's values between calls. An op's
:class:`ParamScope` swaps its tensors in for the length of a forward (or of a backward
pass) and swaps the previous values back afterwards, so no call sees another call's
parameters. The swap is one fused kernel over a packed buffer ``[B, K]``: the buffer holds
the scope's values while unbound and the displaced values while bound, so binding and
unbinding cost one launch each whatever the number of parameters.
"""

import math
import weakref

import taichi as ti
import torch  # noqa: TID253 (the torch bridge is the one place that imports torch eagerly)

_bound = weakref.WeakKeyDictionary()   # model -> the ParamScope whose values it holds
_swaps = weakref.WeakKeyDictionary()   # model -> {names: swap kernel}


def _swap_kernel(model, names: tuple):
    """Kernel ``swap(buf [B, K])`` exchanging the named parameter fields with ``buf``."""
    per_model = _swaps.setdefault(model, {})
    if names in per_model:
        return per_model[names]
    fields = [model.param(n).field for n in names]
    shapes = [tuple(f.shape) for f in fields]
    offsets = [sum(math.prod(s[1:]) for s in shapes[:k]) for k in range(len(shapes))]

    @ti.kernel
    def swap(buf: ti.types.ndarray(ndim=2)):
        for k in ti.static(range(len(fields))):
            for idx in ti.grouped(fields[k]):
                j = 0
                for d in ti.static(range(1, len(shapes[k]))):
                    j = j * shapes[k][d] + idx[d]
                held = fields[k][idx]
                fields[k][idx] = buf[idx[0], offsets[k] + j]
                buf[idx[0], offsets[k] + j] = held

    per_model[names] = swap
    return swap


class ParamScope:
    """Parameter values of one op call, ``{name: engine tensor [B, ...]}``.

    :meth:`bind` makes the model hold these values, first unbinding whichever other scope
    holds the model; :meth:`unbind` puts back the values that were there. A closed loop
    binds once for all its steps (``hold``); a backward pass binds at its first step and
    unbinds when the whole pass is over (an autograd-engine callback), not once per step.
    """

    def __init__(self, model, values: dict):
        self.model = model
        self.values = values
        self.hold = False
        self._callback_queued = False
        if values:
            B = model.num_envs
            self._names = tuple(values)
            self._buffer = torch.cat([t.detach().reshape(B, -1) for t in values.values()],
                                     dim=1).contiguous()

    def bind(self) -> None:
        current = _bound.get(self.model)
        if current is self:
            return
        if current is not None:
            current.unbind()
        if self.values:
            _swap_kernel(self.model, self._names)(self._buffer)
            _bound[self.model] = self

    def unbind(self) -> None:
        if _bound.get(self.model) is self:
            _swap_kernel(self.model, self._names)(self._buffer)
            del _bound[self.model]

    def release_after_backward(self) -> None:
        """Keep the values bound until the running backward pass ends, then unbind."""
        if self._callback_queued or not self.values:
            return
        self._callback_queued = True

        def done():
            self._callback_queued = False
            self.unbind()
        torch.autograd.Variable._execution_engine.queue_callback(done)

    def release(self) -> None:
        """Unbind now, unless a closed loop holds the values; during a backward pass (a
        checkpointed segment recomputing) unbind when the pass ends instead."""
        if self.hold or self._callback_queued:
            return
        if torch._C._current_graph_task_id() != -1:
            self.release_after_backward()
        else:
            self.unbind()
