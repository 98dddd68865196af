"""Session-wide MPM solvers for the tests of this directory (see _scenes.py)."""

import numpy as np
import pytest

from diffsim.solvers.mpm import SolverMPM

from ._scenes import STEPS, build_mixed


@pytest.fixture(scope="session")
def mixed_scene():
    model = build_mixed(num_envs=2)
    # environment 1 differs, so per-environment gradients are checked for real
    model.set("youngs_modulus", model.get("youngs_modulus") * np.array([[1.0], [1.3]]))
    solver = SolverMPM(model, SolverMPM.Config(grid_res=16, substeps=2, boundary="separate"),
                       window=STEPS)
    return model, solver
