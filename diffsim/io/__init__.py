"""Headless output of simulation results: atomic files, images, videos, plots, meshes.

Everything takes plain NumPy arrays, so any solver's state can be saved or drawn without
this package knowing about solvers. Every file is written atomically: a crash never leaves
a half-written file under the final name.
"""

from diffsim.io.atomic import atomic_path, atomic_write, save_json_atomic, save_npz_atomic
from diffsim.io.export import read_mesh, write_ply, write_trajectory_npz, write_vtu
from diffsim.io.render import (
    plot_curves,
    render_frame_2d,
    render_frame_3d,
    write_gif,
    write_mp4,
    write_png,
)

__all__ = [
    "atomic_path",
    "atomic_write",
    "plot_curves",
    "read_mesh",
    "render_frame_2d",
    "render_frame_3d",
    "save_json_atomic",
    "save_npz_atomic",
    "write_gif",
    "write_mp4",
    "write_ply",
    "write_png",
    "write_trajectory_npz",
    "write_vtu",
]
