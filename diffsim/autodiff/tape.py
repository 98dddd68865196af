"""A tape of steps whose adjoints run in reverse.

Taichi's own ``ti.ad.Tape`` records kernel launches; ours records solver steps (and
controller evaluations), so a step whose backward recomputes scratch data (the MPM grid)
or solves a linear system (implicit FEM) is replayed by its own ``step_grad`` rather than by
the raw kernel adjoints. The tape zeroes the gradients it owns before use: Taichi's tape
does not zero ndarray gradients, and a second backward would otherwise double them.
"""


class Tape:
    """Record forward calls, replay their adjoints last-first.

    Example::

        tape = Tape()
        for f in range(n):
            tape.step(solver, solver.state(f), solver.state(f + 1), solver.control(f), dt)
        solver.write_frame_grad(n, {"x": dloss_dx})
        tape.backward()
    """

    def __init__(self):
        self._entries: list[tuple] = []

    def __len__(self) -> int:
        return len(self._entries)

    def call(self, forward, backward, *args) -> None:
        """Run ``forward(*args)`` now and remember ``backward(*args)`` for :meth:`backward`."""
        forward(*args)
        self._entries.append((backward, args))

    def record(self, backward, *args) -> None:
        """Remember ``backward(*args)`` for a forward call that has already run."""
        self._entries.append((backward, args))

    def step(self, solver, state_in, state_out, control, dt: float) -> None:
        """Run and record ``solver.step``."""
        self.call(solver.step, solver.step_grad, state_in, state_out, control, dt)

    def backward(self) -> None:
        """Run the recorded adjoints in reverse, then forget them."""
        for backward, args in reversed(self._entries):
            backward(*args)
        self._entries.clear()

    def reset(self) -> None:
        self._entries.clear()
