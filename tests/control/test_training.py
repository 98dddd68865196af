"""Training and evaluation of a tiny robot: a few iterations, checkpoints, Ctrl-C, resume
equivalence, the NaN guard, and `diffsim train` / `diffsim eval` end to end (float64,
tests/conftest.py). One Trainer serves the in-process tests (kernels compile per solver)."""

import json

import numpy as np
import pytest

from diffsim.cli import main
from diffsim.control.checkpoint import load_checkpoint, load_controller_file
from diffsim.control.train import Trainer

from ._scene import write_tiny_robot


@pytest.fixture(scope="module")
def scene_file(tmp_path_factory):
    return write_tiny_robot(tmp_path_factory.mktemp("scene"))


@pytest.fixture(scope="module")
def trainer(scene_file, tmp_path_factory):
    return Trainer(scene_file, tmp_path_factory.mktemp("trainer"), progress=False)


def _losses(out_dir):
    return [h["loss"] for h in load_checkpoint(out_dir)["history"]]


def test_training_writes_checkpoints_and_resume_is_exact(trainer, tmp_path):
    straight, split = tmp_path / "straight", tmp_path / "split"
    trainer.reset(straight)
    result = trainer.run(6)
    assert not result.interrupted and result.iteration == 6
    for name in ("controller.npz", "checkpoint.json", "loss.png", "train.json"):
        assert (straight / name).is_file(), name
    assert len(list(straight.glob("checkpoint_*.npz"))) == 1  # older ones are removed
    ck = load_checkpoint(straight)
    assert ck["iteration"] == 6 and len(ck["history"]) == 6
    assert all(h["velocity"] > 0 and h["height"] > 0 and h["effort"] > 0 for h in ck["history"])
    assert all(np.isfinite(_losses(straight)))
    # validation every 3 iterations keeps the best weights
    evals = [h["eval_error"] for h in ck["history"] if "eval_error" in h]
    assert len(evals) == 2 and ck["best"]["eval_error"] == min(evals)
    assert (straight / "controller_best.npz").is_file()

    trainer.reset(split)
    trainer.run(3)
    trainer.reset()  # forget everything in memory: the rest comes from the files
    trainer.resume()
    assert trainer.iteration == 3
    trainer.run(6)
    np.testing.assert_allclose(_losses(split), _losses(straight), rtol=1e-10, atol=0)
    pa, pb = load_checkpoint(straight)["params"], load_checkpoint(split)["params"]
    for k in pa:
        np.testing.assert_allclose(pb[k], pa[k], rtol=1e-9, atol=1e-12)
    config, params = load_controller_file(straight / "controller.npz")
    assert config["commands"] == 2 and config["_meta"]["commands"] == ["velocity", "height"]
    np.testing.assert_array_equal(params["W1"], pa["W1"])


def test_ctrl_c_saves_then_resume_continues(trainer, tmp_path, monkeypatch):
    trainer.reset(tmp_path)
    real_step = Trainer.step

    def interrupted(self):
        if self.iteration == 2:  # the third iteration is cut short
            raise KeyboardInterrupt
        return real_step(self)

    monkeypatch.setattr(Trainer, "step", interrupted)
    result = trainer.run(6)
    assert result.interrupted and result.iteration == 2
    assert load_checkpoint(tmp_path)["iteration"] == 2
    monkeypatch.setattr(Trainer, "step", real_step)
    trainer.reset()
    trainer.resume()
    assert trainer.run(3).iteration == 3
    assert load_checkpoint(tmp_path)["iteration"] == 3


def test_nan_guard_skips_the_update_and_names_the_step(trainer, tmp_path):
    trainer.reset(tmp_path)
    before = trainer.ctrl.get_params()
    k = trainer.scene.model.get("spring_stiffness")
    trainer.scene.model.set("spring_stiffness", 1e12)  # explodes within a few steps
    try:
        entry = trainer.step()
    finally:
        trainer.scene.model.set("spring_stiffness", k)
    assert "skipped" in entry and "step" in entry["skipped"], entry
    for name, v in trainer.ctrl.get_params().items():
        np.testing.assert_array_equal(v, before[name])


def test_cli_train_then_eval(scene_file, tmp_path, capsys):
    assert main(["train", scene_file, "--out", str(tmp_path), "--iters", "2", "--quiet"]) == 0
    assert load_checkpoint(tmp_path)["iteration"] == 2
    code = main(["eval", scene_file, "--controller", str(tmp_path / "controller.npz"),
                 "--steps", "24", "--quiet"])
    assert code == 0, capsys.readouterr().err
    for name in ("eval.gif", "eval_tracking.png", "eval.json"):
        assert (tmp_path / name).is_file(), name
    tab = json.loads((tmp_path / "eval.json").read_text())["tracking"]
    assert tab["commanded"] == [0.1, 0.2] and len(tab["achieved"]) == 2
    assert np.isfinite(tab["mean_rel_error"])
