"""The diffsim command line: subcommands, exit codes, messages (no tracebacks)."""

import subprocess
import sys
import types
from pathlib import Path

import pytest

from diffsim.cli import COMMANDS, build_parser, command, main
from diffsim.core import backend
from diffsim.scene import dump_scene

from ._helpers import PENDULUM, ROOT, SCENE_FILES, WALKER, raw

backend.init(arch="cpu", precision="float64")


def test_registry_has_the_commands():
    assert {"run", "validate", "gradcheck", "info", "demo"} <= set(COMMANDS)


def test_a_new_subcommand_is_one_function(capsys):
    @command("hello", "say hello", lambda p: p.add_argument("--name", default="world"))
    def cmd_hello(args):
        print(f"hello {args.name}")
        return 0
    try:
        assert main(["hello", "--name", "scene"]) == 0
        assert "hello scene" in capsys.readouterr().out
    finally:
        del COMMANDS["hello"]
    with pytest.raises(SystemExit):
        build_parser().parse_args(["hello"])


def test_validate(capsys, tmp_path):
    assert main(["validate", *map(str, SCENE_FILES)]) == 0
    out = capsys.readouterr().out
    assert out.count("ok ") == len(SCENE_FILES)
    bad = tmp_path / "bad.toml"
    bad.write_text(WALKER.read_text().replace("friction = 1.0", "fricton = 1.0"))
    assert main(["validate", str(WALKER), str(bad)]) == 2
    err = capsys.readouterr().err
    assert "colliders[0].fricton" in err and "did you mean 'friction'" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("argv,fragment", [
    (["run", "missing.toml"], "not found"),
    (["run", str(WALKER), "--format", "gif,avi"], "unknown output format 'avi'"),
    (["run", str(WALKER), "--steps", "0"], "--steps must be >= 1"),
    (["run", str(WALKER), "--num-envs", "0"], "solver.num_envs"),
    (["gradcheck", "missing.toml"], "not found"),
])
def test_bad_input_exits_2(argv, fragment, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert fragment in err and "Traceback" not in err


def test_precision_conflict_is_bad_input(capsys):
    assert main(["run", str(WALKER), "--precision", "float32"]) == 2
    assert "float64" in capsys.readouterr().err


def test_simulation_failure_exits_1(tmp_path, capsys):
    doc = raw(PENDULUM)
    doc["solver"]["dt"] = 0.05
    doc["bodies"][0]["stiffness"] = 1e9
    doc["free"] = []
    path = dump_scene(doc, tmp_path / "explode.toml")
    assert main(["run", str(path), "--steps", "40", "--format", "npz", "--out",
                 str(tmp_path / "out"), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "simulation failed" in err and "step" in err and "'x'" in err
    assert "Traceback" not in err


def test_gradcheck_passes_on_the_pendulum(capsys):
    assert main(["gradcheck", str(PENDULUM), "--steps", "4"]) == 0
    out = capsys.readouterr().out
    for group in ("x0", "v0", "spring_stiffness", "spring_damping"):
        assert group in out
    assert "rel.err" in out and " NO" not in out


def test_gradcheck_failure_exits_1(monkeypatch, capsys):
    import diffsim.scene
    from diffsim.autodiff.gradcheck import GradcheckRow
    from diffsim.scene import checks

    # the command's own logic only: no scene is built
    fake = types.SimpleNamespace(name="fake", solver=types.SimpleNamespace(window=10))
    monkeypatch.setattr(diffsim.scene, "load_scene", lambda *a, **k: fake)
    monkeypatch.setattr(checks, "param_groups", lambda scene, free=True: ["x0"])
    bad = [GradcheckRow("x0", 4, 4, 1e-6, 0.5, 0.5, 1.0, False)]
    monkeypatch.setattr(checks, "scene_gradcheck", lambda *a, **k: bad)
    assert main(["gradcheck", str(PENDULUM), "--steps", "2"]) == 1
    captured = capsys.readouterr()
    assert "FAILED: x0" in captured.err and "NO" in captured.out


def test_info(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    for name in ("diffsim", "taichi", "numpy", "torch", "arch", "threads"):
        assert name in out


def test_demo_calls_run_demo(monkeypatch, tmp_path):
    calls = []
    fake = types.ModuleType("diffsim.control.demo")
    fake.run_demo = lambda **kw: calls.append(kw)
    monkeypatch.setitem(sys.modules, "diffsim.control.demo", fake)
    assert main(["demo", "--out", str(tmp_path), "--iters", "3"]) == 0
    assert calls == [{"out_dir": str(tmp_path), "iters": 3}]


def test_demo_without_the_module(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "diffsim.control.demo", None)  # import raises ImportError
    assert main(["demo"]) == 1
    assert "not available" in capsys.readouterr().err


def test_auto_arch_never_probes_without_a_driver(monkeypatch):
    import ctypes.util

    monkeypatch.setattr(ctypes.util, "find_library", lambda name: None)
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.delenv("DIFFSIM_PROBE_GPU", raising=False)
    import taichi as ti

    from diffsim.core import backend

    assert backend._resolve_arch("auto") == ti.cpu
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: "libcuda.so.1")
    assert backend._resolve_arch("auto") == ti.cuda
    assert backend._resolve_arch("gpu") == ti.gpu


def test_console_script(tmp_path):
    exe = Path(sys.executable).parent / "diffsim"
    ok = subprocess.run([str(exe), "validate", str(PENDULUM)], capture_output=True, text=True,
                        cwd=ROOT, timeout=300)
    assert ok.returncode == 0, ok.stderr
    bad = subprocess.run([str(exe), "run", str(tmp_path / "none.toml")], capture_output=True,
                         text=True, cwd=tmp_path, timeout=300)
    assert bad.returncode == 2 and "not found" in bad.stderr and "Traceback" not in bad.stderr
