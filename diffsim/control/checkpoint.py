"""Training checkpoints and exported controllers, as ``.npz`` + ``.json`` (no pickle).

A checkpoint is everything a training run needs to continue bit for bit: controller
parameters, Adam's moments and step count, the command generator's state, the iteration
and the loss history. It is written in two files inside the output directory:

* ``checkpoint_<iteration>.npz``: the arrays (``param/W1`` ..., ``adam_m/W1`` ...,
  ``adam_v/W1`` ..., ``iteration``);
* ``checkpoint.json``: the commit record (iteration, the npz file it goes with, Adam's
  scalars, the RNG state, the history, the controller architecture).

The npz is written first and the json last, each atomically (:mod:`diffsim.io.atomic`),
so an interruption at any moment leaves the previous consistent checkpoint in place; the
json names its npz, and older npz files are removed only after the json moved on.

``controller.npz`` is the export a user keeps: the four weight arrays and the architecture
as a JSON string (``config``), loadable without the training state.
"""

import json
from pathlib import Path

import numpy as np

from ..io import save_json_atomic, save_npz_atomic

FORMAT = 1


def save_checkpoint(out_dir, iteration: int, params: dict, adam_state: dict, rng_state: dict,
                    history: list, extra: dict | None = None) -> Path:
    """Write the checkpoint of ``iteration`` completed iterations; returns the json path."""
    out = Path(out_dir)
    npz_name = f"checkpoint_{iteration:07d}.npz"
    arrays = {"iteration": np.asarray(iteration)}
    arrays.update({f"param/{k}": v for k, v in params.items()})
    arrays.update({f"adam_m/{k}": v for k, v in adam_state["m"].items()})
    arrays.update({f"adam_v/{k}": v for k, v in adam_state["v"].items()})
    save_npz_atomic(out / npz_name, **arrays)
    record = {"format": FORMAT, "iteration": iteration, "arrays": npz_name,
              "adam": {"t": adam_state["t"], "lr": adam_state["lr"]}, "rng": rng_state,
              "history": history, **(extra or {})}
    path = save_json_atomic(out / "checkpoint.json", record)
    for old in out.glob("checkpoint_*.npz"):
        if old.name != npz_name:
            old.unlink(missing_ok=True)
    return path


def load_checkpoint(out_dir) -> dict:
    """The latest checkpoint in ``out_dir``: ``{"iteration", "params", "adam", "rng",
    "history", ...}`` (``adam`` in :meth:`Adam.load_state_dict` form)."""
    out = Path(out_dir)
    path = out / "checkpoint.json"
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint to resume from in {out} (checkpoint.json missing)")
    record = json.loads(path.read_text(encoding="utf-8"))
    if record.get("format") != FORMAT:
        raise ValueError(f"{path}: unknown checkpoint format {record.get('format')!r}")
    with np.load(out / record["arrays"], allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    if int(arrays["iteration"]) != record["iteration"]:
        raise ValueError(f"{path} and {record['arrays']} disagree on the iteration")

    def group(prefix):
        return {k[len(prefix) + 1:]: v for k, v in arrays.items() if k.startswith(prefix + "/")}

    record["params"] = group("param")
    record["adam"] = {"t": record["adam"]["t"], "lr": record["adam"]["lr"],
                      "m": group("adam_m"), "v": group("adam_v")}
    return record


def save_controller_file(path, config: dict, params: dict, meta: dict | None = None) -> Path:
    """Export a controller: weights ``{W1, b1, W2, b2}`` and its architecture ``config``."""
    text = json.dumps({"controller": config, **(meta or {})})
    return save_npz_atomic(path, config=np.asarray(text), **{k: np.asarray(v) for k, v in params.items()})


def load_controller_file(path) -> tuple[dict, dict]:
    """``(config, params)`` from a ``controller.npz``; ``config`` also carries ``meta``
    entries under ``"_meta"`` (command names, training scene)."""
    with np.load(path, allow_pickle=False) as z:
        if "config" not in z.files:
            raise ValueError(f"{path} is not a controller file (no 'config' entry)")
        doc = json.loads(str(z["config"]))
        params = {k: z[k].astype(np.float64) for k in ("W1", "b1", "W2", "b2")}
    config = dict(doc.pop("controller"))
    config["_meta"] = doc
    return config, params
