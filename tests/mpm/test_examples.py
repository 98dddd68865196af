"""examples/mpm/train_walker.py trains in its --quick mode: the loss falls, a GIF is written."""

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_train_walker_quick(tmp_path):
    spec = importlib.util.spec_from_file_location("train_walker", ROOT / "examples" / "mpm" / "train_walker.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    result = mod.main(["--quick", "--out", str(tmp_path)])
    losses = result["losses"]
    assert len(losses) == 3 and losses[-1] < losses[0]
    assert (tmp_path / "walker.gif").stat().st_size > 1000
    assert (tmp_path / "loss.png").exists() and (tmp_path / "result.json").exists()
