"""The boundary between torch tensors and the engine: dtype, device, shapes, parameters.

* Inputs are cast (differentiably, in torch) to the engine's dtype and device and broadcast
  to their full ``[B, ...]`` shape, so torch sums the gradient of a shared value over the
  environments. A float64 tensor that requires grad is refused on a float32 engine.
"""


import numpy as np
import torch  # noqa: TID253 (the torch bridge is the one place that imports torch eagerly)

from ..core import backend


def engine_dtype() -> torch.dtype:
    """Torch dtype of the engine's real fields (fixed by ``backend.init(precision=...)``)."""
    return torch.float64 if backend.ensure_init().precision == "float64" else torch.float32


def engine_device() -> torch.device:
    """Device whose tensors Taichi kernels read in place: CUDA when Taichi runs on CUDA.

    Taichi takes torch tensors as ndarray kernel arguments by pointer when the tensor lives
    where the kernels run; anywhere else it would stage a copy, so tensors are moved here.
    """
    if backend.ensure_init().arch == "cuda" and torch.cuda.is_available():
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def check_dtype(t: torch.Tensor, what: str, engine: torch.dtype | None = None) -> None:
    """Refuse a float64 tensor that requires grad when the engine computes in float32."""
    engine = engine or engine_dtype()
    if t.dtype == torch.float64 and engine == torch.float32 and t.requires_grad:
        raise TypeError(
            f"{what} is a float64 tensor that requires grad, but the diffsim engine runs in "
            "float32: its gradient would only be float32-accurate and "
            "torch.autograd.gradcheck cannot pass. Call "
            "diffsim.core.backend.init(precision='float64') before building the model, or "
            "pass float32 tensors.")


def to_engine(value, what: str, shape: tuple) -> torch.Tensor:
    """``value`` cast to the engine's dtype and device and broadcast to ``shape`` (in torch,
    so gradients flow back through the cast and the broadcast)."""
    t = value if isinstance(value, torch.Tensor) else torch.as_tensor(np.asarray(value))
    check_dtype(t, what)
    t = t.to(device=engine_device(), dtype=engine_dtype())
    try:
        return t.expand(shape)
    except RuntimeError:
        raise ValueError(f"{what}: expected shape {tuple(shape)} (or broadcastable), "
                         f"got {tuple(t.shape)}") from None


def detached(t: torch.Tensor) -> torch.Tensor:
    """Contiguous, detached tensor whose memory Taichi may read directly."""
    return t.detach().contiguous()


def host(t: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(t.detach().cpu().numpy())


def from_host(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a)).to(engine_device())


def user_dtype_device(*candidates) -> tuple:
    """Dtype and device of the first tensor given (the caller's), else the engine's."""
    dtype = device = None
    for t in candidates:
        if isinstance(t, torch.Tensor):
            device = device or t.device
            if dtype is None and t.is_floating_point():
                dtype = t.dtype
    return dtype or engine_dtype(), device or torch.device("cpu")


def initial_state(solver, initial) -> dict:
    """``{state name: engine tensor [B, N, ...]}``; arrays not given come from the model's
    builder (``model.initial_state()``), or are zero if it has none."""
    initial = dict(initial or {})
    for name in initial:
        if name not in solver.state_names:
            raise KeyError(f"{type(solver).__name__} has no state array {name!r}; "
                           f"it has {solver.state_names}")
    defaults = solver.model.initial_state() if "initial_state" in solver.model.meta else {}
    out = {}
    for name in solver.state_names:
        shape = solver.frame_shape(name)
        value = initial.get(name, defaults.get(name))
        out[name] = (to_engine(value, f"initial state {name!r}", shape) if value is not None
                     else torch.zeros(shape, dtype=engine_dtype(), device=engine_device()))
    return out


def param_tensors(model, params) -> dict:
    """``{name: engine tensor [B, ...]}`` for the parameters given, checked finite."""
    out = {}
    for name, value in (params or {}).items():
        out[name] = to_engine(value, f"parameter {name!r}", model.param(name).shape)
        if not bool(torch.isfinite(out[name]).all()):
            raise ValueError(f"parameter {name!r} contains NaN or Inf")
    return out

