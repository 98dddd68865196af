"""examples/contact/push_block.py runs in quick mode: the loss falls and a GIF is written.

It runs in this process (the engine is already float64 on the CPU), like the torch bridge
examples: a fresh interpreter would pay the Taichi start-up and compilation again.
"""

import importlib.util
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "contact"


@pytest.mark.slow
def test_push_block_quick(tmp_path):
    spec = importlib.util.spec_from_file_location("contact_push_block", EXAMPLES / "push_block.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = module.main(["--quick", "--out", str(tmp_path)])
    loss = result["loss"]
    assert loss[-1] < 0.7 * loss[0], loss
    gif = Path(result["gif"])
    assert gif.is_file() and gif.stat().st_size > 1000
    assert (tmp_path / "loss.json").is_file()
