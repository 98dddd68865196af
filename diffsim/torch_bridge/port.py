"""Fused kernels that move one step's data between torch tensors and a solver's window.

A step of :class:`~diffsim.torch_bridge.StepOp` has to write the state and the controls,
read the next state, and in backward also clear every gradient field, seed the output
gradient and read back state, control and parameter gradients. Done field by field that
is about 25 kernel launches per backward step, and on the CPU a launch costs more than a
small step itself; a :class:`Port` does it in three kernels (``load``, optionally clearing
and seeding the gradients as well, ``store`` and ``harvest``) over one packed tensor
``[B, K]`` per direction, whose columns are the fields' per-environment values flattened
in order. Torch packs and unpacks with ``cat`` and views. A step then costs three launches
forward (load, step, store) and four backward (load and seed, step, step_grad, harvest).

Each Port compiles its kernels once for a (solver, given controls, parameters) triple.
"""

import math
import weakref

import taichi as ti
import torch  # noqa: TID253 (the torch bridge is the one place that imports torch eagerly)

from .boundary import engine_device, engine_dtype


def _element(f) -> tuple:
    return () if not hasattr(f, "n") else ((f.n,) if f.ndim == 1 else (f.n, f.m))


class _Layout:
    """Columns of a packed ``[B, K]`` tensor for windowed fields ``f[slot, b, i, *elem]``."""

    def __init__(self, fields: list):
        self.fields = fields
        self.count = [f.shape[2] for f in fields]
        self.elem = [_element(f) for f in fields]
        self.width = [math.prod(e) for e in self.elem]     # values per item
        self.rank = [len(e) for e in self.elem]
        self.cols = [e[1] if len(e) == 2 else 1 for e in self.elem]
        self.offset, k = [], 0
        for n, w in zip(self.count, self.width):
            self.offset.append(k)
            k += n * w
        self.total = k

    def split(self, packed: torch.Tensor) -> list:
        """Views ``[B, N, *elem]`` of the packed columns."""
        B = packed.shape[0]
        return [packed[:, o:o + n * w].reshape((B, n) + e)
                for o, n, w, e in zip(self.offset, self.count, self.width, self.elem)]


def _active_controls(solver) -> list:
    """Control names a step must write (``act`` only when the model has actuators)."""
    return [n for n in solver.control_names if not (n == "act" and solver.action_count == 0)]


class Port:
    """Kernels for one step's traffic on ``solver``: states, controls and parameters.

    Args:
        solver: the solver (frame 0 / control step 0 of its window are used).
        controls: names of the controls the caller gives; the other active controls get the
            solver's defaults.
        params: names of the model parameters whose gradients the caller reads.
    """

    def __init__(self, solver, controls: tuple, params: tuple):
        s = solver
        # (no reference to the solver itself: the port cache is keyed weakly by it)
        self.B, self.substeps = s.model.num_envs, s.substeps
        active = _active_controls(s)
        self.controls, self.params = tuple(controls), tuple(params)
        self.states = _Layout([s.fields[n] for n in s.state_names])
        self.inputs = _Layout([s.fields[n] for n in s.state_names]
                              + [s.control_fields[n] for n in active])
        self.given = _Layout([s.control_fields[n] for n in self.controls])
        self.input_order = list(s.state_names) + active
        pf = [s.model.param(n).field for n in self.params]
        self.param_shape = [tuple(f.shape) for f in pf]
        self.param_offset, k = [], 0
        for shape in self.param_shape:
            self.param_offset.append(k)
            k += math.prod(shape[1:])
        self.param_total = k
        B = self.B
        device, dtype = engine_device(), engine_dtype()
        # Controls not given are written with their defaults every step (the slot may hold
        # another step's values); their packed columns are built once.
        self.default_columns = {
            n: torch.as_tensor(s.default_controls(n)).to(device=device, dtype=dtype).reshape(B, -1)
            for n in active if n not in self.controls}
        self._dummy = torch.zeros((B, 1), dtype=dtype, device=device)
        self._build(s, pf, list(s.fields.values()), [s.control_fields[n] for n in active])

    def _build(self, s, pf, window_fields, control_fields):
        inp, st, given = self.inputs, self.states, self.given
        n_in, n_st, n_given, n_p = len(inp.fields), len(st.fields), len(given.fields), len(pf)
        n_win, n_ctl = len(window_fields), len(control_fields)
        pshape, poff = self.param_shape, self.param_offset

        @ti.kernel
        def load(slot: ti.i32, src: ti.types.ndarray(ndim=2), grad_slot: ti.i32,
                 grad_src: ti.types.ndarray(ndim=2), seed: ti.template()):
            # States into window slot `slot`, controls into window step 0. With `seed`
            # (backward), also clear every gradient the step's adjoint accumulates into
            # (Taichi's adjoints add) and set the output frame's state gradient.
            for k in ti.static(range(n_in)):
                for b, i in ti.ndrange(src.shape[0], inp.count[k]):
                    at = slot * ti.static(int(k < n_st))
                    for c in ti.static(range(inp.width[k])):
                        v = src[b, inp.offset[k] + i * inp.width[k] + c]
                        if ti.static(inp.rank[k] == 0):
                            inp.fields[k][at, b, i] = v
                        elif ti.static(inp.rank[k] == 1):
                            inp.fields[k][at, b, i][c] = v
                        else:
                            inp.fields[k][at, b, i][c // inp.cols[k], c % inp.cols[k]] = v
            if ti.static(seed):
                for k in ti.static(range(n_win)):
                    for idx in ti.grouped(window_fields[k].grad):
                        window_fields[k].grad[idx] = ti.zero(window_fields[k].grad[idx])
                for k in ti.static(range(n_ctl)):
                    for idx in ti.grouped(control_fields[k].grad):
                        control_fields[k].grad[idx] = ti.zero(control_fields[k].grad[idx])
                for k in ti.static(range(n_p)):
                    for idx in ti.grouped(pf[k].grad):
                        pf[k].grad[idx] = 0
                for k in ti.static(range(n_st)):
                    for b, i in ti.ndrange(grad_src.shape[0], st.count[k]):
                        for c in ti.static(range(st.width[k])):
                            v = grad_src[b, st.offset[k] + i * st.width[k] + c]
                            if ti.static(st.rank[k] == 0):
                                st.fields[k].grad[grad_slot, b, i] = v
                            elif ti.static(st.rank[k] == 1):
                                st.fields[k].grad[grad_slot, b, i][c] = v
                            else:
                                st.fields[k].grad[grad_slot, b, i][c // st.cols[k], c % st.cols[k]] = v

        @ti.kernel
        def store(slot: ti.i32, out: ti.types.ndarray(ndim=2)):
            for k in ti.static(range(n_st)):
                for b, i in ti.ndrange(out.shape[0], st.count[k]):
                    for c in ti.static(range(st.width[k])):
                        j = st.offset[k] + i * st.width[k] + c
                        if ti.static(st.rank[k] == 0):
                            out[b, j] = st.fields[k][slot, b, i]
                        elif ti.static(st.rank[k] == 1):
                            out[b, j] = st.fields[k][slot, b, i][c]
                        else:
                            out[b, j] = st.fields[k][slot, b, i][c // st.cols[k], c % st.cols[k]]

        @ti.kernel
        def harvest(out_s: ti.types.ndarray(ndim=2), out_c: ti.types.ndarray(ndim=2),
                    out_p: ti.types.ndarray(ndim=2)):
            for k in ti.static(range(n_st)):
                for b, i in ti.ndrange(out_s.shape[0], st.count[k]):
                    for c in ti.static(range(st.width[k])):
                        j = st.offset[k] + i * st.width[k] + c
                        if ti.static(st.rank[k] == 0):
                            out_s[b, j] = st.fields[k].grad[0, b, i]
                        elif ti.static(st.rank[k] == 1):
                            out_s[b, j] = st.fields[k].grad[0, b, i][c]
                        else:
                            out_s[b, j] = st.fields[k].grad[0, b, i][c // st.cols[k], c % st.cols[k]]
            for k in ti.static(range(n_given)):
                for b, i in ti.ndrange(out_c.shape[0], given.count[k]):
                    for c in ti.static(range(given.width[k])):
                        j = given.offset[k] + i * given.width[k] + c
                        if ti.static(given.rank[k] == 0):
                            out_c[b, j] = given.fields[k].grad[0, b, i]
                        elif ti.static(given.rank[k] == 1):
                            out_c[b, j] = given.fields[k].grad[0, b, i][c]
                        else:
                            out_c[b, j] = given.fields[k].grad[0, b, i][c // given.cols[k],
                                                                        c % given.cols[k]]
            for k in ti.static(range(n_p)):
                for idx in ti.grouped(pf[k]):
                    j = 0
                    for d in ti.static(range(1, len(pshape[k]))):
                        j = j * pshape[k][d] + idx[d]
                    out_p[idx[0], poff[k] + j] = pf[k].grad[idx]

        self._load, self._store, self._harvest = load, store, harvest

    # -- torch side --------------------------------------------------------------------------
    def _empty(self, width: int) -> torch.Tensor:
        B = self.B
        if width == 0:
            return self._dummy
        return torch.empty((B, width), dtype=engine_dtype(), device=engine_device())

    def _pack_inputs(self, states: list, controls: dict) -> torch.Tensor:
        cols = [t.reshape(self.B, -1) for t in states]
        for name in self.input_order[len(states):]:
            cols.append(controls[name].reshape(self.B, -1) if name in controls
                        else self.default_columns[name])
        return torch.cat(cols, dim=1).contiguous()

    def load(self, states: list, controls: dict) -> None:
        """Write state tensors (solver order) into frame 0 and controls into step 0."""
        self._load(0, self._pack_inputs(states, controls), 0, self._dummy, False)

    def load_and_seed(self, states: list, controls: dict, frame: int, grads: list) -> None:
        """:meth:`load`, then clear all window, control and parameter gradients and set
        ``frame``'s state gradients (``None`` entries are zero), in one launch."""
        cols = [torch.zeros((self.B, n * w), dtype=engine_dtype(), device=engine_device())
                if g is None else g.to(engine_dtype()).reshape(self.B, -1)
                for g, n, w in zip(grads, self.states.count, self.states.width)]
        self._load(0, self._pack_inputs(states, controls), frame * self.substeps,
                   torch.cat(cols, dim=1).contiguous(), True)

    def store(self, frame: int) -> list:
        """State tensors ``[B, N, ...]`` of ``frame`` (views of one packed tensor)."""
        out = self._empty(self.states.total)
        self._store(frame * self.substeps, out)
        return self.states.split(out)

    def harvest(self) -> tuple:
        """Gradients of frame 0's states, step 0's given controls and the parameters:
        ``(list [B, N, ...], {control: [B, count, ...]}, {param: [B, ...]})``."""
        out_s, out_c = self._empty(self.states.total), self._empty(self.given.total)
        out_p = self._empty(self.param_total)
        self._harvest(out_s, out_c, out_p)
        controls = dict(zip(self.controls, self.given.split(out_c))) if self.controls else {}
        params = {n: out_p[:, o:o + math.prod(shape[1:])].reshape(shape)
                  for n, o, shape in zip(self.params, self.param_offset, self.param_shape)}
        return self.states.split(out_s), controls, params


_ports = weakref.WeakKeyDictionary()  # solver -> {(controls, params): Port}


def port_for(solver, controls: tuple, params: tuple) -> Port:
    """The (cached) :class:`Port` of ``solver`` for these given controls and parameters."""
    per_solver = _ports.setdefault(solver, {})
    key = (tuple(controls), tuple(params))
    if key not in per_solver:
        per_solver[key] = Port(solver, *key)
    return per_solver[key]
