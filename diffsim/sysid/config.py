"""The ``[sysid]`` section of a scene file: which data, how it maps, what is fitted how.

A scene for identification is an ordinary scene (its ``[[free]]`` tables mark the
parameters to fit, with bounds and ``scale = "log"`` for stiffnesses) plus one ``[sysid]``
table. Its schema, :data:`SYSID`, is written with the scene schema's own
:class:`~diffsim.scene.schema.Key` machinery and registered as an extension section of
the scene loader (:data:`diffsim.scene.solvers.EXTENSION_SECTIONS`), so ``diffsim
validate`` checks it and its errors read like every other scene error (file, key path,
expected, found, did-you-mean); ``data`` paths resolve against the scene file's directory.
"""

from __future__ import annotations

from ..scene.schema import OPTIONAL, Context, Key, Table, validate_table
from .data import STRESS_UNITS
from .losses import LOSSES

DATA_KINDS = ("markers", "point_cloud", "rigid_poses", "load_curve")
SPLITS = ("trials", "time", "none", "stretch")


def _check(values: dict, path, ctx: Context) -> None:
    if values["marker_map"] == "explicit" and "marker_particles" not in values:
        ctx.add(path + ["marker_particles"], "marker_map = 'explicit' needs marker_particles "
                "(one particle index per marker, in the data's marker order)")
    if "marker_particles" in values and values["marker_map"] != "explicit":
        ctx.add(path + ["marker_map"], "marker_particles is given: set marker_map = 'explicit'")
    if values["data_kind"] == "rigid_poses" and values["kinematic_markers"]:
        ctx.add(path + ["kinematic_markers"], "rigid_poses data drive no particles: leave "
                "kinematic_markers empty")
    _check_load_curve(values, path, ctx)
    if values["split"] == "trials" and "heldout" not in values and values["train_fraction"] >= 1.0:
        ctx.add(path + ["train_fraction"], "split = 'trials' with train_fraction = 1 holds "
                "nothing out; lower it, name heldout trials, or use split = 'none'")


def _check_load_curve(values: dict, path, ctx: Context) -> None:
    curve = values["data_kind"] == "load_curve"
    if curve and values["split"] not in ("stretch", "none"):
        ctx.add(path + ["split"], "load_curve data are one curve: split = 'stretch' (rows above "
                "heldout_above are held out) or 'none'")
    if values["split"] == "stretch" and not curve:
        ctx.add(path + ["split"], "split = 'stretch' needs data_kind = 'load_curve'")
    if values["split"] == "stretch" and "heldout_above" not in values:
        ctx.add(path + ["heldout_above"], "split = 'stretch' needs heldout_above (the stretch "
                "above which rows are held out)")
    if curve and values["kinematic_markers"]:
        ctx.add(path + ["kinematic_markers"], "load_curve data drive the scene's driven_regions, "
                "not markers: leave kinematic_markers empty")


SYSID = Table({
    "data": Key("path", "measured data file (.csv or .npz; see docs/sysid.md)", OPTIONAL,
                suffixes=(".csv", ".npz")),
    "data_kind": Key("str", "what the file holds: marker trajectories, point clouds, "
                     "tracked rigid-body states (NPZ states [S, 13]: the scene's particles move "
                     "rigidly with the measured pose; every window starts from the measured "
                     "state), or a load curve (CSV of stretch and nominal stress: one "
                     "quasi-static load step per row on the FEM scene's driven face)", "markers",
                     choices=DATA_KINDS),
    "stretch_column": Key("str", "load_curve: the CSV column of stretches L / L0", "stretch"),
    "stress_column": Key("str", "load_curve: the CSV column of nominal stresses (force over the "
                         "reference area)", "nominal_stress"),
    "stress_unit": Key("str", "load_curve: stress unit of a file that declares none "
                       "(# stress_unit: ...)", "Pa", choices=tuple(STRESS_UNITS)),
    "stress_sigma": Key("float", "load_curve: stress noise scale that whitens residuals", 1.0,
                        "Pa", positive=True, hi=1e15),
    "heldout_above": Key("float", "split = 'stretch': rows with a larger stretch are held out",
                         OPTIONAL, "-", positive=True, hi=1e6),
    "trials": Key("strings", "names of the data's trials to use (default: all)", OPTIONAL),
    "force_data": Key("path", "measured forces of the same trials (trial names must match): "
                      "the reaction on force_particles", OPTIONAL, suffixes=(".csv", ".npz")),
    "force_sigma": Key("float", "force noise scale that whitens force residuals", 1.0, "N",
                       positive=True, hi=1e12),
    "length_unit": Key("str", "length unit of a data file that declares none", "m",
                       choices=("m", "cm", "mm", "um", "in")),
    "time_unit": Key("str", "time unit of a data file that declares none", "s",
                     choices=("s", "ms", "us")),
    "force_unit": Key("str", "force unit of a data file that declares none", "N",
                      choices=("N", "mN", "kN")),
    "missing": Key("str", "NaN samples: an error, or masked out of the loss", "error",
                   choices=("error", "mask")),
    "interpolation": Key("str", "resampling of the data at simulation frames (cubic: for "
                         "fast motion sampled near the frame rate)", "cubic",
                         choices=("linear", "cubic")),
    "marker_map": Key("str", "markers -> particles: nearest particle to the marker's first "
                      "sample in the rest shape, or explicit indices", "nearest",
                      choices=("nearest", "explicit")),
    "marker_particles": Key("array", "explicit map: one particle index per marker (rigid_poses: "
                            "the particles compared with the measured pose's body points; "
                            "default all)", OPTIONAL, "-",
                            lo=0, hi=10**9, shape=("*",), dtype="int"),
    "max_distance": Key("float", "a marker further than this from every particle maps to "
                        "nothing (an error)", 0.01, "m", positive=True, hi=1e6),
    "kinematic_markers": Key("strings", "markers held by a gripper: they drive their particles "
                             "(boundary conditions from data) instead of being predicted", []),
    "kinematic_smoothing": Key("str", "smooth the kinematic markers before they drive "
                               "particles: none, or a smoothing spline whose residual RMS is "
                               "kinematic_sigma (lowers the input noise but also removes real "
                               "fast input motion; see docs/sysid.md)", "none",
                               choices=("none", "spline")),
    "kinematic_sigma": Key("float", "noise scale of the kinematic markers (default: sigma)",
                           OPTIONAL, "m", positive=True, hi=1e9),
    "cloud_particles": Key("array", "particles compared with a point cloud (default: all)",
                           OPTIONAL, "-", lo=0, hi=10**9, shape=("*",), dtype="int"),
    "force_particles": Key("array", "held particles whose reaction force the data measure "
                           "(default: the kinematic markers' particles)", OPTIONAL, "-", lo=0,
                           hi=10**9, shape=("*",), dtype="int"),
    "initial_state": Key("str", "initial state: the scene's, or the mapped particles' first "
                         "sample (velocity by finite differences)", "scene",
                         choices=("scene", "data")),
    "loss": Key("str", "misfit penalty", "l2", choices=LOSSES),
    "huber_delta": Key("float", "Huber threshold, in units of sigma", 3.0, "-", positive=True, hi=1e6),
    "sigma": Key("float", "measurement noise scale that whitens residuals (data units)", 1e-3,
                 positive=True, hi=1e9),
    "optimizer": Key("str", "optimiser: L-BFGS-B, Adam, or Levenberg-Marquardt", "lbfgsb",
                     choices=("lbfgsb", "adam", "lm")),
    "max_iter": Key("int", "optimiser iterations", 50, "-", lo=0, hi=1_000_000),
    "lr": Key("float", "Adam step size in unit coordinates", 0.05, "-", positive=True, hi=1.0),
    "split": Key("str", "held-out data: whole trials, the tail of each trial, none, or the "
                 "load-curve rows above heldout_above",
                 "trials", choices=SPLITS),
    "heldout": Key("strings", "names of held-out trials (split = 'trials'; default: the last "
                   "(1 - train_fraction) of the trials)", OPTIONAL),
    "train_fraction": Key("float", "fraction of trials (split = 'trials') or of each trial's "
                          "duration (split = 'time') used for fitting", 0.75, "-", positive=True,
                          hi=1.0),
    "window": Key("int", "fit on windows of this many steps, each restarted from the data "
                  "(needs every particle observed; 0: whole trials)", 0, "-", lo=0, hi=10**8),
    "time_offset": Key("bool", "also fit a time offset between data and simulation", False),
    "offset_bound": Key("float", "bound on |time offset|", 0.05, "s", positive=True, hi=1e6),
    "plot_markers": Key("strings", "markers drawn in markers.png (default: the first three "
                        "predicted ones)", OPTIONAL),
}, "System identification: data, mapping, loss, optimiser and split.", _check)


def sysid_config(scene) -> dict:
    """The validated ``[sysid]`` table of a loaded scene (defaults when it has none)."""
    cfg = scene.spec.get("sysid")
    if cfg:
        return dict(cfg)
    ctx = Context(file=scene.path)
    cfg = validate_table({}, SYSID, ["sysid"], ctx)
    ctx.raise_if_any()
    return cfg
