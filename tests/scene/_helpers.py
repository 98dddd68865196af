"""Shared paths and helpers of the scene tests."""

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCENES_DIR = ROOT / "scenes"
SCENE_FILES = sorted(SCENES_DIR.glob("*.toml"))
WALKER = SCENES_DIR / "mass_spring_walker.toml"
PENDULUM = SCENES_DIR / "mass_spring_pendulum.toml"
LATTICE = SCENES_DIR / "mass_spring_lattice_drop.toml"


def raw(path) -> dict:
    """The parsed (unvalidated) TOML of a scene file."""
    with open(path, "rb") as fh:
        return tomllib.load(fh)
