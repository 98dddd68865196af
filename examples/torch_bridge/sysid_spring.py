"""System identification through the torch bridge: recover spring stiffness and damping.

A chain of four 0.1 kg particles joined by three springs falls freely under gravity from
an initial stretch of 30%, so it oscillates while it falls. A "measured" trajectory is
simulated with the true stiffness and damping; starting from a wrong guess, torch.optim
(Adam, then L-BFGS from the same guess) fits both values so that the simulated trajectory
matches the measurement. The optimisers see the simulator as one differentiable torch op
(``RolloutOp``); the parameters live in log space so they stay positive.

    python examples/torch_bridge/sysid_spring.py            # full run (~1 min)
    python examples/torch_bridge/sysid_spring.py --quick    # a few iterations (test)

The last line printed is ``RESULT {json}`` with the loss histories and recovered values.
"""

import argparse
import json
import math

import torch

from diffsim import torch_bridge as tb
from diffsim.core import backend

TRUE = {"spring_stiffness": 40.0, "spring_damping": 0.15}     # N/m, N s/m
GUESS = {"spring_stiffness": 15.0, "spring_damping": 0.05}
STEPS, DT = 150, 0.004                                          # 0.6 s (about two periods)


def build_op(steps: int):
    from diffsim.core.builder import MassSpringBuilder
    from diffsim.solvers import SolverMassSpring

    b = MassSpringBuilder(dim=2, gravity=[0.0, -9.81])
    rest = 0.1
    for i in range(4):                   # hanging vertically, stretched 30% (and a kink)
        b.add_particle([0.02 * (i % 2), -1.3 * rest * i], mass=0.1)
    for i in range(3):
        b.add_spring(i, i + 1, stiffness=TRUE["spring_stiffness"], damping=0.0, rest_length=rest)
    model = b.finalize(num_envs=1)
    # The rollout runs in three checkpointed segments of one window each.
    solver = SolverMassSpring(model, window=-(-steps // 3))
    return tb.RolloutOp(solver, steps, DT, record=("x",))


def params_of(log_theta: torch.Tensor) -> dict:
    """One stiffness and one damping shared by all springs (broadcast to [B, S])."""
    k, c = torch.exp(log_theta)
    return {"spring_stiffness": k.reshape(1), "spring_damping": c.reshape(1)}


def fit(op, target, optimiser: str, iterations: int, max_iter: int = 5) -> dict:
    log_theta = torch.tensor([math.log(GUESS["spring_stiffness"]), math.log(GUESS["spring_damping"])],
                             dtype=torch.float64, requires_grad=True)

    def loss_fn():
        x = op(params=params_of(log_theta))["x"]
        return ((x - target) ** 2).mean() / 1e-4     # in cm^2: O(1) at the start

    # history[i]: the loss after i optimiser steps
    if optimiser == "adam":
        opt = torch.optim.Adam([log_theta], lr=0.1)
        history = []
        for it in range(iterations):
            opt.zero_grad()
            loss = loss_fn()
            loss.backward()
            opt.step()
            history.append(loss.item())
            print(f"  adam   {it:3d}  loss {history[-1]:.3e}")
    else:
        opt = torch.optim.LBFGS([log_theta], lr=1.0, max_iter=max_iter, line_search_fn="strong_wolfe")

        def closure():
            opt.zero_grad()
            loss = loss_fn()
            loss.backward()
            return loss
        with torch.no_grad():
            history = [loss_fn().item()]
        for it in range(iterations):
            opt.step(closure)          # up to max_iter L-BFGS iterations with line search
            with torch.no_grad():
                history.append(loss_fn().item())
            print(f"  lbfgs  {it:3d}  loss {history[-1]:.3e}")
    if optimiser == "adam":
        with torch.no_grad():
            history.append(loss_fn().item())
    k, c = torch.exp(log_theta).tolist()
    return {"loss": history, "spring_stiffness": k, "spring_damping": c}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few iterations only")
    args = parser.parse_args(argv)
    backend.init(arch="cpu", precision="float64")   # L-BFGS line searches like float64
    op = build_op(STEPS // 2 if args.quick else STEPS)
    with torch.no_grad():   # the measurement: true parameters, forward only
        target = op(params={n: torch.tensor([v], dtype=torch.float64) for n, v in TRUE.items()})["x"]
    results = {}
    runs = (("adam", 4, 150), ("lbfgs", 1, 6))
    for name, quick_iterations, iterations in runs:
        print(f"{name}: start from k={GUESS['spring_stiffness']}, c={GUESS['spring_damping']}")
        results[name] = fit(op, target, name, quick_iterations if args.quick else iterations,
                            max_iter=3 if args.quick else 5)
        r = results[name]
        print(f"{name}: k={r['spring_stiffness']:.4f} N/m (true {TRUE['spring_stiffness']}), "
              f"c={r['spring_damping']:.4f} N s/m (true {TRUE['spring_damping']})")
    print("RESULT " + json.dumps(results))
    return results


if __name__ == "__main__":
    torch.set_num_threads(1)   # tiny tensors: torch's thread pool would only add sync
    main()
