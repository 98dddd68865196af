"""docs/scene_format.md is generated from the schema and current; docs/cli.md covers the CLI."""

import re

import pytest

from diffsim.cli import COMMANDS
from diffsim.scene import read_scene
from diffsim.scene import sections as sec
from diffsim.scene.docs import BEGIN, END, reference_markdown, render_file
from diffsim.scene.solvers import collider_types, extension_sections, solver_kinds

from ._helpers import ROOT

SCENE_DOC = ROOT / "docs" / "scene_format.md"
CLI_DOC = ROOT / "docs" / "cli.md"


def _all_tables():
    yield "scene", sec.SCENE.keys
    yield "solver", sec.SOLVER_COMMON
    for name, kind in solver_kinds().items():
        yield f"solver ({name})", kind.solver_keys
        yield f"materials ({name})", kind.material_keys
        for body, table in kind.body_types.items():
            yield f"bodies.{body}", table.keys
    for name, ct in collider_types().items():
        yield f"colliders.{name}", ct.table.keys
    for name in ("initial", "actuators", "output", "free"):
        yield name, getattr(sec, name.upper()).keys
    for name, ext in extension_sections().items():
        yield f"extension {name}", ext.table.keys


def test_generated_reference_is_current():
    text = SCENE_DOC.read_text(encoding="utf-8")
    assert BEGIN in text and END in text
    assert render_file(text) == text, (
        "docs/scene_format.md is out of date: run python -m diffsim.scene.docs docs/scene_format.md")


@pytest.mark.parametrize("section,keys", list(_all_tables()), ids=lambda v: v if isinstance(v, str) else "")
def test_every_key_documented_with_units_and_doc(section, keys):
    block = SCENE_DOC.read_text(encoding="utf-8").split(BEGIN)[1]
    for name, key in keys.items():
        if name == "type" and "." in section:
            continue  # the variant selector is documented in the table's heading
        assert key.doc, f"{section}.{name} has no doc"
        numeric = key.type in ("float", "int") or (key.type == "array" and key.dtype == "float")
        # units are checked on the core tables; extension sections belong to their packages
        if numeric and not section.startswith("extension"):
            assert key.units, f"{section}.{name} is numeric but has no units"
        assert re.search(rf"\| `{re.escape(name)}` \|", block), f"{section}.{name} not documented"


def test_reference_lists_every_solver_kind_and_body_type():
    md = reference_markdown()
    for name, kind in solver_kinds().items():
        assert f"Solver kind `{name}`" in md
        for body in kind.body_types:
            assert f'type = "{body}"' in md


def test_docs_example_is_a_valid_scene():
    text = SCENE_DOC.read_text(encoding="utf-8")
    example = text.split("## Example", 1)[1].split("```toml", 1)[1].split("```", 1)[0]
    import tomllib

    spec = read_scene(tomllib.loads(example))
    assert spec["bodies"][0]["type"] == "grid_robot"


def test_cli_doc_covers_every_subcommand():
    text = CLI_DOC.read_text(encoding="utf-8")
    for name in COMMANDS:
        assert f"## `diffsim {name}" in text, f"docs/cli.md lacks a section for {name}"
    for fmt in sec.OUTPUT_FORMATS:
        assert f"| `{fmt}` |" in text
