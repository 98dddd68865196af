"""Host-side optimisers for parameters kept as NumPy arrays.

Used by the engine's own training loops (controllers in Taichi fields, open-loop action
sequences); torch users get ``torch.optim`` through the bridge instead.
"""

import numpy as np


def clip_by_global_norm(grads: dict, max_norm: float | None) -> tuple[dict, float]:
    """Scale all gradients together so their global L2 norm is at most ``max_norm``.

    Returns the (possibly scaled) gradients and the norm before clipping.
    """
    # float64: a float32 gradient of 1e20 (an exploded rollout) would square to inf
    norm = float(np.sqrt(sum(float(np.sum(np.square(np.asarray(g, np.float64)))) for g in grads.values())))
    if max_norm is not None and norm > max_norm:
        grads = {k: g * (max_norm / norm) for k, g in grads.items()}
    return grads, norm


class Adam:
    """Adam (Kingma and Ba 2015) over a dict of arrays; state is plain NumPy (checkpointable).

    Args:
        lr: step size; betas: moment decay rates; eps: denominator floor.
    """

    def __init__(self, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8):
        self.lr, self.betas, self.eps = lr, betas, eps
        self.t = 0
        self.m: dict[str, np.ndarray] = {}
        self.v: dict[str, np.ndarray] = {}

    def step(self, params: dict, grads: dict) -> dict:
        """Return updated copies of ``params`` given ``grads`` (same keys)."""
        self.t += 1
        b1, b2 = self.betas
        out = {}
        for k, p in params.items():
            g = np.asarray(grads[k], dtype=np.float64)
            m = self.m.get(k, np.zeros_like(g)) * b1 + (1 - b1) * g
            v = self.v.get(k, np.zeros_like(g)) * b2 + (1 - b2) * g * g
            self.m[k], self.v[k] = m, v
            m_hat = m / (1 - b1 ** self.t)
            v_hat = v / (1 - b2 ** self.t)
            out[k] = p - self.lr * m_hat / (np.sqrt(v_hat) + self.eps)
        return out

    def state_dict(self) -> dict:
        return {"t": self.t, "lr": self.lr, "m": dict(self.m), "v": dict(self.v)}

    def load_state_dict(self, state: dict) -> None:
        self.t, self.lr = int(state["t"]), float(state["lr"])
        self.m = {k: np.asarray(v) for k, v in state["m"].items()}
        self.v = {k: np.asarray(v) for k, v in state["v"].items()}
