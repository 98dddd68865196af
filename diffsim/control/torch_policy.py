"""A torch ``nn.Module`` mirror of :class:`~diffsim.control.ControllerSineMLP`.

The Taichi controller is what training uses (one kernel launch per step for all
environments); this module is the same network in PyTorch, so a trained controller can be
exported as a ``state_dict``, used with the torch bridge (:class:`diffsim.torch_bridge.ClosedLoop`)
or deployed anywhere torch runs. Weights convert exactly both ways:

* ``W1`` ``[H, I]`` <-> ``layer1.weight``, ``b1`` ``[H]`` <-> ``layer1.bias``;
* ``W2`` ``[A, H]`` <-> ``layer2.weight``, ``b2`` ``[A]`` <-> ``layer2.bias``.

The input vector (clock sines, phase pairs, proprioception relative to the sensors'
centre, centre velocity and height, commands) is built by :meth:`TorchSineMLP.observe`
from a state dict in exactly the order and scaling of the Taichi kernel (see
:mod:`diffsim.control.controller`); ``forward`` maps that vector to actions in [-1, 1].

This is the only module of :mod:`diffsim.control` that imports torch.
"""

import math

import numpy as np
import torch  # noqa: TID253 (this module exists to hold the torch mirror)
from torch import nn  # noqa: TID253

PARAM_MAP = {"W1": "layer1.weight", "b1": "layer1.bias", "W2": "layer2.weight", "b2": "layer2.bias"}


class TorchSineMLP(nn.Module):
    """``[B, I]`` inputs -> ``[B, A]`` actions, the architecture of a ControllerSineMLP.

    Args:
        config: the controller's :meth:`~diffsim.control.ControllerSineMLP.config` dict
            (``hidden``, ``n_sin``, ``omega``, ``obs_scale``, ``sensors``, ``commands``,
            ``dt``, ``activation``, ``harmonics``, ``relative_velocity``, ``center_inputs``,
            ``center_scale``, ``height_ref``, ``command_scale``, ``command_offset``, ``dim``,
            ``actuators``).
        dtype: parameter dtype (float64 reproduces a float64 engine to rounding).
    """

    def __init__(self, config: dict, dtype=torch.float64):
        super().__init__()
        self.config = dict(config)
        c = self.config
        self.n_inputs = (c["n_sin"] + 2 * c["harmonics"] + 2 * c["dim"] * len(c["sensors"])
                         + (c["dim"] + 1 if c["center_inputs"] else 0) + c["commands"])
        self.layer1 = nn.Linear(self.n_inputs, c["hidden"], dtype=dtype)
        self.layer2 = nn.Linear(c["hidden"], c["actuators"], dtype=dtype)
        self.register_buffer("sensors", torch.as_tensor(c["sensors"], dtype=torch.long))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """Actions ``[B, A]`` in [-1, 1] from the input vector ``[B, I]``."""
        z = self.layer1(inputs.to(self.layer1.weight.dtype))
        h = torch.sin(z) if self.config["activation"] == "sin" else torch.tanh(z)
        return torch.tanh(self.layer2(h))

    def observe(self, x: torch.Tensor, v: torch.Tensor, t: int, commands=None) -> torch.Tensor:
        """The input vector ``[B, I]`` from positions ``x`` and velocities ``v``
        ``[B, N, dim]`` at global step ``t``, with ``commands`` ``[B, C]`` (differentiable
        in ``x``, ``v`` and ``commands``)."""
        c = self.config
        dtype = self.layer1.weight.dtype
        x, v = x.to(dtype), v.to(dtype)
        B = x.shape[0]
        xs, vs = x[:, self.sensors], v[:, self.sensors]
        center, center_v = xs.mean(1), vs.mean(1)
        w = c["omega"] * t * c["dt"]
        k = torch.arange(c["n_sin"], dtype=dtype)
        parts = [torch.sin(w + 2 * math.pi / max(c["n_sin"], 1) * k).expand(B, -1)]
        if c["harmonics"]:
            j = torch.arange(1, c["harmonics"] + 1, dtype=dtype)
            phase = torch.stack([torch.sin(j * w), torch.cos(j * w)], dim=1).reshape(-1)
            parts.append(phase.expand(B, -1))
        rel_v = vs - center_v[:, None] if c["relative_velocity"] else vs
        prop = torch.cat([xs - center[:, None], rel_v], dim=2) * c["obs_scale"]
        parts.append(prop.reshape(B, -1))
        if c["center_inputs"]:
            h = center[:, -1:] - c["height_ref"]
            parts.append(torch.cat([center_v, h], dim=1) * c["center_scale"])
        if c["commands"]:
            cmd = torch.as_tensor(commands if commands is not None else np.zeros((B, c["commands"])))
            scale = torch.as_tensor(c.get("command_scale", [1.0] * c["commands"]), dtype=dtype)
            offset = torch.as_tensor(c.get("command_offset", [0.0] * c["commands"]), dtype=dtype)
            parts.append((cmd.to(dtype).reshape(B, c["commands"]) - offset) * scale)
        return torch.cat(parts, dim=1)

    def act(self, x, v, t: int, commands=None) -> torch.Tensor:
        """``forward(observe(x, v, t, commands))``: actions ``[B, A]``."""
        return self(self.observe(x, v, t, commands))

    def obs_fn(self, commands=None):
        """An ``obs(state, t)`` for :class:`diffsim.torch_bridge.ClosedLoop` (commands fixed)."""
        return lambda state, t: self.observe(state["x"], state["v"], t, commands)

    # -- conversion -----------------------------------------------------------------------
    def load_numpy(self, params: dict) -> "TorchSineMLP":
        """Copy Taichi-controller parameters ``{W1, b1, W2, b2}`` into this module."""
        self.load_state_dict(numpy_to_state_dict(params, self.layer1.weight.dtype), strict=False)
        return self

    def numpy_params(self) -> dict:
        """This module's parameters as ``{W1, b1, W2, b2}`` NumPy arrays (float64)."""
        return state_dict_to_numpy(self.state_dict())


def numpy_to_state_dict(params: dict, dtype=torch.float64) -> dict:
    """``{W1, b1, W2, b2}`` arrays -> a :class:`TorchSineMLP` ``state_dict`` (without buffers)."""
    return {PARAM_MAP[k]: torch.tensor(np.asarray(params[k]), dtype=dtype) for k in PARAM_MAP}


def state_dict_to_numpy(state: dict) -> dict:
    """A :class:`TorchSineMLP` ``state_dict`` -> ``{W1, b1, W2, b2}`` float64 arrays."""
    return {k: state[name].detach().cpu().to(torch.float64).numpy().copy()
            for k, name in PARAM_MAP.items()}


def from_controller(controller, dtype=torch.float64) -> TorchSineMLP:
    """The torch mirror of a :class:`~diffsim.control.ControllerSineMLP`, weights copied."""
    return TorchSineMLP(controller.config(), dtype).load_numpy(controller.get_params())


def load_exported(path, dtype=torch.float64) -> TorchSineMLP:
    """A :class:`TorchSineMLP` from a ``controller.npz`` written by ``diffsim train``."""
    from .checkpoint import load_controller_file

    config, params = load_controller_file(path)
    return TorchSineMLP(config, dtype).load_numpy(params)


def to_controller(module: TorchSineMLP, controller) -> None:
    """Copy a torch mirror's weights into a Taichi controller of the same architecture."""
    if module.config["hidden"] != controller.H or module.n_inputs != controller.n_inputs:
        raise ValueError("the torch module and the controller have different architectures")
    controller.set_params(module.numpy_params())
