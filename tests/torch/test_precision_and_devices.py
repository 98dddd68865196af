"""The engine's precision and device at the bridge's boundary, in fresh interpreters
(the test session's engine is float64 on the CPU and cannot be re-initialised)."""

import subprocess
import sys
import textwrap

import pytest
import torch

FLOAT32_ENGINE = textwrap.dedent("""
    import torch
    from diffsim.core import backend
    backend.init(arch="cpu", precision="float32")
    from diffsim import torch_bridge as tb
    from diffsim.core.builder import MassSpringBuilder
    from diffsim.solvers import SolverMassSpring
    b = MassSpringBuilder(dim=2)
    b.add_particle([0.0, 1.0]); b.add_particle([0.1, 1.0])
    b.add_spring(0, 1, stiffness=10.0)
    op = tb.RolloutOp(SolverMassSpring(b.finalize(), window=4), 4, 0.01)
    k64 = torch.tensor([10.0], dtype=torch.float64, requires_grad=True)
    try:
        torch.autograd.gradcheck(lambda k: op(params={"spring_stiffness": k})["x"], (k64,))
    except TypeError as e:
        assert "float32" in str(e) and "precision='float64'" in str(e), e
        print("REFUSED")
    k32 = torch.tensor([10.0], requires_grad=True)
    op(params={"spring_stiffness": k32})["x"].sum().backward()
    assert k32.grad.dtype == torch.float32 and torch.isfinite(k32.grad).all()
    print("FLOAT32_OK")
""")


def run(code: str) -> str:
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


@pytest.mark.slow  # a subprocess with its own engine
def test_float64_gradcheck_on_float32_engine_is_refused():
    out = run(FLOAT32_ENGINE)
    assert "REFUSED" in out and "FLOAT32_OK" in out


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU and a CUDA build of torch")
def test_cuda_tensors_stay_on_the_device():
    out = run(textwrap.dedent("""
        import torch
        from diffsim.core import backend
        backend.init(arch="cuda", precision="float32")
        from diffsim import torch_bridge as tb
        from diffsim.core.builder import MassSpringBuilder
        from diffsim.solvers import SolverMassSpring
        assert tb.engine_device().type == "cuda"
        b = MassSpringBuilder(dim=2)
        b.add_particle([0.0, 1.0]); b.add_particle([0.1, 1.0])
        b.add_spring(0, 1, stiffness=10.0, actuation=0.1)
        m = b.finalize(num_envs=2)
        step = tb.StepOp(SolverMassSpring(m, window=1), 0.01)
        x = torch.tensor(m.initial_state()["x"], device="cuda", requires_grad=True)
        v = torch.zeros_like(x)
        a = torch.zeros(2, 1, device="cuda", requires_grad=True)
        out = step({"x": x, "v": v}, a)
        assert out["x"].is_cuda
        out["x"].sum().backward()
        assert x.grad.is_cuda and a.grad.is_cuda
        print("CUDA_OK")
    """))
    assert "CUDA_OK" in out
