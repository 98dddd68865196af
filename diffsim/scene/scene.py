"""A loaded scene: model, solver, time stepping, initial state, drive and free parameters.

:class:`Scene` is what :func:`~diffsim.scene.load_scene` returns; running, training and
system identification all start from it. :meth:`Scene.rollout` is the forward-only
convenience (with a progress bar for long runs); :meth:`Scene.make_rollout` gives the
checkpointed :class:`~diffsim.autodiff.Rollout` for gradients.
"""

from __future__ import annotations

import numpy as np

from ..autodiff import Rollout
from . import inputs
from .errors import SceneError
from .solvers import collider_types

MAX_RECORD_BYTES = 8 << 30  # host memory a recorded trajectory may take


class _Progress:
    """Rollout diagnostics hook that only advances a tqdm bar (one tick per step)."""

    def __init__(self, bar):
        self.bar = bar

    def check_forward(self, solver, frame: int, global_frame: int) -> None:
        self.bar.update(1)

    def backward(self, tape, solver, t0: int, n: int) -> None:
        tape.backward()


class Scene:
    """A scene ready to simulate.

    Attributes:
        spec: the validated scene dict (defaults filled in, overrides applied).
        path: the scene file (``None`` for a dict); base_dir: where its paths resolve.
        name: ``[scene] name``. kind: the :class:`~diffsim.scene.solvers.SolverKind`.
        model: the :class:`~diffsim.core.model.Model`; solver: its solver.
        dt: step [s]; steps: T; num_envs: B; dim: 2 or 3.
        counts: sizes, e.g. ``{"particle": N, "spring": S, "actuator": A}``.
        initial_state: ``{name: [B, N, dim]}`` host arrays (float64) after ``[initial]``.
        free_params: list of :class:`~diffsim.scene.free.FreeParam`.
    """

    def __init__(self, plan, model, solver):
        self.spec = plan.spec
        self.path = plan.file
        self.base_dir = plan.base_dir
        self.kind = plan.kind
        self.model = model
        self.solver = solver
        sol = plan.spec["solver"]
        self.name = plan.spec["scene"]["name"]
        self.dt, self.steps = sol["dt"], sol["steps"]
        self.num_envs, self.dim = sol["num_envs"], sol["dim"]
        self.counts = dict(plan.counts)
        self.initial_state = plan.initial_state
        self.free_params = plan.free_params
        self._drive_file = plan.drive_file

    def __repr__(self) -> str:
        return (f"Scene({self.name!r}, kind={self.kind.name!r}, dim={self.dim}, B={self.num_envs}, "
                f"steps={self.steps}, dt={self.dt:g}, counts={self.counts})")

    # -- inputs ---------------------------------------------------------------------------
    def actions(self, steps: int | None = None) -> np.ndarray | None:
        """The ``[actuators]`` drive as ``[steps, B, A]`` (``None``: no drive)."""
        return inputs.drive(self.spec, steps or self.steps, self.num_envs,
                            self.counts.get("actuator", 0), self._drive_file)

    def free_values(self) -> dict[str, np.ndarray]:
        """Current values of the free parameters, ``{label: [B, ...]}`` (a component freed
        by ``index`` is labelled ``name[index]`` and gives its ``[B, ...]`` slice)."""
        return {f.label: f.entries(self.model.get(f.name)) for f in self.free_params}

    def set_free(self, values: dict) -> None:
        """Set free parameters ``{label: value}`` (values must lie within their bounds)."""
        free = {f.label: f for f in self.free_params}
        for label, value in values.items():
            if label not in free:
                raise KeyError(f"{label!r} is not a free parameter of this scene "
                               f"(free: {sorted(free)})")
            f = free[label]
            if not f.contains(value):
                raise ValueError(f"{label}: value outside [{f.lower:g}, {f.upper:g}]")
            self.model.set(f.name, value if f.index is None else f.put(self.model.get(f.name), value))

    # -- simulation -----------------------------------------------------------------------
    def make_rollout(self, steps: int | None = None, record=("x",), segment: int | None = None,
                     controller=None, diagnostics=None) -> Rollout:
        """A checkpointed :class:`~diffsim.autodiff.Rollout` of this scene's solver."""
        return Rollout(self.solver, steps or self.steps, self.dt, record=record, segment=segment,
                       controller=controller, diagnostics=diagnostics)

    def rollout(self, steps: int | None = None, actions=None, initial: dict | None = None,
                record=None, progress: bool = False) -> dict:
        """Simulate forward (no gradients).

        Args:
            steps: T (default: the scene's).
            actions: ``[T, B, A]`` actuation (default: the scene's drive, or zero).
            initial: ``{name: [B, N, ...]}`` (default: :attr:`initial_state`).
            record: state arrays to return (default: all of the solver's).
            progress: show a tqdm progress bar on stderr.
        Returns:
            ``{name: [T + 1, B, N, ...]}`` per recorded array.
        Raises:
            SimulationError: the state became NaN or Inf (with the step and quantity).
        """
        steps = int(steps or self.steps)
        record = tuple(record or self.solver.state_names)
        frame_bytes = sum(int(np.prod(self.solver.frame_shape(n))) for n in record) * 8
        if (steps + 1) * frame_bytes > MAX_RECORD_BYTES:
            raise SceneError(f"recording {steps} steps needs "
                             f"{(steps + 1) * frame_bytes / 2**30:.1f} GiB of host memory; "
                             "run fewer steps", self.path)
        if actions is None:
            actions = self.actions(steps)
        bar = None
        if progress:
            from tqdm.auto import tqdm

            # disable=None: a bar on a terminal only, not in logs
            bar = tqdm(total=steps, desc=f"simulating {self.name}", unit="step", leave=False,
                       disable=None)
        try:
            r = Rollout(self.solver, steps, self.dt, record=record,
                        diagnostics=_Progress(bar) if bar is not None else None)
            return r.forward(initial if initial is not None else self.initial_state, actions)
        finally:
            if bar is not None:
                bar.close()

    # -- drawing --------------------------------------------------------------------------
    def colliders(self) -> list[dict]:
        """The colliders as :mod:`diffsim.io.render` collider dicts."""
        types = collider_types()
        return [types[c["type"]].drawing(c, self.dim) for c in self.spec["colliders"]]

    def drawing(self) -> dict:
        """Topology for pictures and meshes (e.g. ``{"lines": [S, 2], ...}``)."""
        return self.kind.drawing(self.model)
