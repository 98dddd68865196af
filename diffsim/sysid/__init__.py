"""System identification: fit physical parameters to measured data, with uncertainty.

The pipeline, one module per stage (tutorial: docs/sysid.md)::

    data.py         load markers / point clouds / forces (CSV, NPZ), units, bad-data errors
    align.py        resample to simulation frames (+ time offset), map markers to particles
    kinematic.py    measured gripper markers drive particles (boundary conditions from data)
    losses.py       l2 / Huber penalties, Chamfer distance
    terms.py        marker, point-cloud and force loss terms of one experiment
    params.py       free parameters: bounds, log/linear scaling, binding to the model
    problem.py      experiments + parameters + solver -> loss and gradient (Rollout adjoint)
    fit.py          L-BFGS-B / Adam, progress bar, atomic checkpoint and resume
    uncertainty.py  Gauss-Newton covariance, correlations, identifiability warnings
    report.py       report.json and plots
    pipeline.py     `diffsim sysid SCENE --data FILE --out DIR` end to end
    config.py       the scene's [sysid] table; cli_commands.py registers the subcommand
    rigid.py        tracked rigid poses <-> particle states; synthetic.py engine-made data
    load_curve.py   stress-stretch curves as quasi-static FEM load steps (reaction observable)
"""

from .align import MarkerMap, map_explicit, map_nearest_particle, map_nearest_surface, resample, smooth
from .data import (
                    DataError,
                    PointCloudRecording,
                    Recording,
                    load_columns,
                    load_forces,
                    load_markers,
                    load_point_clouds,
                    save_markers_csv,
                    save_markers_npz,
)
from .fit import FitResult, fit
from .kinematic import KinematicDriver
from .losses import Penalty, chamfer
from .params import ParamSpec
from .problem import Evaluation, Experiment, FunctionProblem, SysIDProblem
from .terms import ForceTerm, MarkerTerm, PointCloudTerm, SpringReactionForce
from .uncertainty import Uncertainty, gauss_newton

__all__ = [
    "DataError", "Recording", "PointCloudRecording", "load_markers", "load_forces",
    "load_point_clouds", "load_columns", "save_markers_csv", "save_markers_npz", "MarkerMap",
    "map_explicit", "map_nearest_particle", "map_nearest_surface", "resample", "smooth",
    "KinematicDriver", "Penalty", "chamfer", "MarkerTerm", "ForceTerm", "PointCloudTerm",
    "SpringReactionForce", "ParamSpec", "Experiment", "SysIDProblem", "FunctionProblem",
    "Evaluation", "fit", "FitResult", "gauss_newton", "Uncertainty",
]
