"""The torch bridge examples run in quick mode and their losses fall.

They run in this process (the engine is already float64 on the CPU, as the examples ask or
accept via ``--precision``): a fresh interpreter per example would add the torch, Taichi
and torch._dynamo imports (several seconds each) to the suite.
"""

import importlib.util
from pathlib import Path

import pytest
import torch

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "torch_bridge"


def run_example(name: str, *argv: str) -> dict:
    """``main(["--quick", *argv])`` of ``examples/torch_bridge/<name>.py``; its result dict.

    Torch runs one intra-op thread meanwhile, as the scripts do when run directly.
    """
    spec = importlib.util.spec_from_file_location(f"torch_bridge_example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return module.main(["--quick", *argv])
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def sysid_result():
    return run_example("sysid_spring")


@pytest.mark.parametrize("optimiser", ["adam", "lbfgs"])
def test_sysid_spring_loss_falls(optimiser, sysid_result):
    loss = sysid_result[optimiser]["loss"]
    assert loss[-1] < 0.8 * loss[0], loss


@pytest.mark.slow
def test_walker_closed_loop_loss_falls():
    loss = run_example("walker_closed_loop", "--precision", "float64")["loss"]
    assert loss[-1] < loss[0], loss
