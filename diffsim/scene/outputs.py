"""Files ``diffsim run`` writes for a simulated trajectory, via :mod:`diffsim.io`.

Formats (``[output] formats`` or ``--format``):

* ``npz``: ``trajectory.npz`` with every frame of every environment (``t`` [F], ``x``,
  ``v`` [F, B, N, dim], scalar ``dt``) and ``model.npz`` (topology, parameter values,
  actuation ``[T, B, A]``);
* ``png``: ``frames/frame_00000.png`` ...; ``gif``: ``animation.gif``; ``mp4``:
  ``animation.mp4`` (needs imageio-ffmpeg);
* ``vtu``: ``vtu/frame_00000.vtu`` (springs as line cells; point data ``velocity``,
  ``mass`` and the solver's other per-particle state, e.g. MPM's ``F`` and ``C``) and
  ``trajectory.pvd``, the time series ParaView opens;
* ``ply``: ``ply/frame_00000.ply`` point clouds with ``velocity``.

Pictures and meshes show environment ``[output] env`` every ``[output] every`` frames
(default: one frame per 1/fps of simulated time, so the GIF plays in real time), inside one
view window for the whole run. Every file is written atomically; ``scene.toml`` (the scene
as run) and ``run.json`` (a summary) are always written.
"""

from __future__ import annotations

from pathlib import Path
from xml.sax.saxutils import quoteattr

import numpy as np

from .loader import dump_scene
from .sections import OUTPUT_FORMATS

IMAGE_FORMATS = ("png", "gif", "mp4")


class OutputError(RuntimeError):
    """Writing one output format failed (e.g. no ffmpeg for MP4). Attribute ``fmt``."""

    def __init__(self, fmt: str, exc: Exception):
        self.fmt = fmt
        super().__init__(f"could not write {fmt}: {exc}")


def parse_formats(text: str) -> list[str]:
    """``"gif,npz"`` -> ``["gif", "npz"]``; ``ValueError`` naming an unknown format."""
    out = []
    for f in (s.strip().lower() for s in text.split(",")):
        if not f:
            continue
        if f not in OUTPUT_FORMATS:
            raise ValueError(f"unknown output format {f!r} (choose from {', '.join(OUTPUT_FORMATS)})")
        if f not in out:
            out.append(f)
    return out


def frame_stride(spec: dict) -> int:
    """Frames between two written pictures/meshes (``[output] every``, 0 = real time)."""
    every = spec["output"]["every"]
    if every > 0:
        return every
    return max(1, int(round(1.0 / (spec["output"]["fps"] * spec["solver"]["dt"]))))


def frame_indices(count: int, stride: int) -> list[int]:
    """Frames 0, stride, 2 stride, ... and always the last of ``count`` frames."""
    idx = list(range(0, count, stride))
    if idx[-1] != count - 1:
        idx.append(count - 1)
    return idx


def _collider_extent(c: dict, dim: int) -> np.ndarray | None:
    """Points [k, dim] a finite collider dict covers (``None`` for planes and unknowns)."""
    t = c["type"]
    if t in ("sphere", "circle"):
        r = float(c["radius"])
        return np.asarray(c["center"], float) + np.array([-r, r])[:, None] * np.ones(dim)
    if t == "box":
        r = float(np.linalg.norm(c["half_extents"]))  # any rotation stays inside
        return np.asarray(c["center"], float) + np.array([-r, r])[:, None] * np.ones(dim)
    if t == "capsule" and "p0" in c:
        r = float(c["radius"])
        ends = np.array([c["p0"], c["p1"]], float)
        return np.concatenate([ends - r, ends + r])
    if t == "heightfield" and dim == 2:
        return np.stack([np.asarray(c["x"], float), np.asarray(c["height"], float)], 1)
    return None


def view_bounds(x: np.ndarray, colliders: list[dict], dim: int) -> list[float]:
    """[min0, max0, min1, max1, ...] around every frame of ``x`` [F, N, dim] and the finite
    colliders, with a 10% margin; a ground plane's height is kept in view."""
    pts = x.reshape(-1, dim)
    pts = pts[np.all(np.isfinite(pts), axis=1)]
    lo, hi = (pts.min(0), pts.max(0)) if len(pts) else (np.zeros(dim), np.ones(dim))
    for c in colliders:
        extent = _collider_extent(c, dim)
        if extent is not None:
            lo, hi = np.minimum(lo, extent.min(0)), np.maximum(hi, extent.max(0))
        elif c["type"] == "plane" and abs(c["normal"][-1]) > 0.99:  # the ground
            lo[-1] = min(lo[-1], c["point"][-1])
    pad = max(0.1 * float(np.max(hi - lo)), 1e-3)
    return [float(v) for pair in zip(lo - pad, hi + pad) for v in pair]


def _images(scene, x, frames, actions, drawing, colliders, bounds, size):
    from ..io import render_frame_2d, render_frame_3d

    lines = drawing.get("lines")
    act_of = drawing.get("line_actuator")
    for f in frames:
        title = f"{scene.name}   t = {f * scene.dt:.3f} s"
        if scene.dim == 2:
            colors = None
            if actions is not None and act_of is not None and lines is not None and len(lines):
                u = actions[min(f, len(actions) - 1)]
                colors = np.where(act_of >= 0, u[np.maximum(act_of, 0)], np.nan)
            yield render_frame_2d(x[f], springs=lines if lines is not None and len(lines) else None,
                                  spring_colors=colors, colliders=colliders, bounds=bounds,
                                  size=size, title=title)
        else:
            yield render_frame_3d(x[f], springs=lines if lines is not None and len(lines) else None,
                                  colliders=colliders, bounds=bounds, size=size, up="z",
                                  title=title)


def _pvd(path: Path, entries: list[tuple[float, str]]) -> None:
    from ..io import atomic_path

    rows = "\n".join(f'    <DataSet timestep="{t:.9g}" part="0" file={quoteattr(name)}/>'
                     for t, name in entries)
    text = ('<?xml version="1.0"?>\n<VTKFile type="Collection" version="0.1">\n'
            f"  <Collection>\n{rows}\n  </Collection>\n</VTKFile>\n")
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_outputs(scene, traj: dict, out_dir, formats, actions=None,
                  progress: bool = False) -> list[Path]:
    """Write ``formats`` for trajectory ``traj`` (``{"x": [F, B, N, dim], ...}``).

    Args:
        scene: the :class:`~diffsim.scene.scene.Scene` that produced ``traj``.
        out_dir: directory (created). formats: subset of :data:`OUTPUT_FORMATS`.
        actions: the actuation ``[T, B, A]`` that was applied (colours actuated springs).
        progress: tqdm bar over the rendered frames.
    Returns:
        Paths written (directories of per-frame files are listed as directories).
    Raises:
        OutputError: a writer failed (the message names the format).
    """
    from .. import io

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    spec = scene.spec
    env = spec["output"]["env"]
    x = traj["x"][:, env]
    F = len(x)
    frames = frame_indices(F, frame_stride(spec))
    written: list[Path] = [dump_scene(spec, out / "scene.toml", base_dir=scene.base_dir)]
    drawing = scene.drawing()
    colliders = scene.colliders()

    def guarded(fmt, fn):
        try:
            return fn()
        except OutputError:
            raise
        except Exception as exc:
            raise OutputError(fmt, exc) from exc

    if "npz" in formats:
        def npz():
            t = np.arange(F) * scene.dt
            arrays = {k: v for k, v in traj.items() if k != "actions"}
            p1 = io.write_trajectory_npz(out / "trajectory.npz", t=t, dt=np.float64(scene.dt), **arrays)
            model = {f"topology_{k}": v for k, v in scene.model.topology.items()}
            model.update({f"param_{k}": scene.model.get(k) for k in scene.model.params})
            if actions is not None:
                model["actions"] = actions
            return [p1, io.save_npz_atomic(out / "model.npz", **model)]
        written += guarded("npz", npz)

    if any(f in formats for f in IMAGE_FORMATS):
        bounds = spec["output"].get("bounds") or view_bounds(x[frames], colliders, scene.dim)
        size = tuple(spec["output"]["size"])
        act_env = actions[:, env] if actions is not None else None
        images = _images(scene, x, frames, act_env, drawing, colliders, bounds, size)
        if progress:
            from tqdm.auto import tqdm

            images = tqdm(images, total=len(frames), desc="rendering", unit="frame", leave=False,
                          disable=None)
        rendered = []
        for k, img in enumerate(images):
            rendered.append(img)
            if "png" in formats:
                guarded("png", lambda: io.write_png(out / "frames" / f"frame_{frames[k]:05d}.png", img))
        if "png" in formats:
            written.append(out / "frames")
        fps = spec["output"]["fps"]
        if "gif" in formats:
            written.append(guarded("gif", lambda: io.write_gif(out / "animation.gif", rendered, fps=fps)))
        if "mp4" in formats:
            written.append(guarded("mp4", lambda: io.write_mp4(out / "animation.mp4", rendered, fps=fps)))

    v = traj["v"][:, env] if "v" in traj else None
    if "vtu" in formats:
        mass = scene.model.get("particle_mass")[env] if "particle_mass" in scene.model.params else None
        lines = drawing.get("lines")
        cells = {"line": np.asarray(lines)} if lines is not None and len(lines) else None
        entries = []
        for f in frames:
            name = f"vtu/frame_{f:05d}.vtu"
            data = {}
            if v is not None:
                data["velocity"] = np.pad(v[f], ((0, 0), (0, 3 - scene.dim)))
            if mass is not None:
                data["mass"] = mass
            for key, arr in traj.items():  # the solver's other per-particle state (MPM F, C)
                if key not in ("x", "v") and arr.ndim >= 3 and arr.shape[2] == x.shape[1]:
                    data[key] = arr[f, env]
            guarded("vtu", lambda: io.write_vtu(out / name, x[f], cells=cells, point_data=data))
            entries.append((f * scene.dt, name))
        guarded("vtu", lambda: _pvd(out / "trajectory.pvd", entries))
        written += [out / "vtu", out / "trajectory.pvd"]

    if "ply" in formats:
        for f in frames:
            data = {"velocity": np.pad(v[f], ((0, 0), (0, 3 - scene.dim)))} if v is not None else None
            guarded("ply", lambda: io.write_ply(out / f"ply/frame_{f:05d}.ply", x[f], point_data=data))
        written.append(out / "ply")
    return written
