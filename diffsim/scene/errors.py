"""The one exception a scene file can produce: :class:`SceneError`.

A scene is user input, so every problem with it (TOML syntax, a misspelt key, a wrong
type, a negative size, a missing asset file, a scene too large to allocate) reaches the
user as a ``SceneError`` naming the file, the key path (``bodies[1].stiffness``), what was
expected and what was found, never as a Taichi or NumPy traceback. Validation collects
every problem of a stage before raising, so one run of ``diffsim validate`` lists them all.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Issue:
    """One problem in a scene.

    Attributes:
        key: key path, e.g. ``"bodies[1].stiffness"`` (``""`` for the whole file).
        message: what is wrong, e.g. ``"expected a number > 0, found -3.0"``.
        suggestion: a close, valid alternative for a misspelt name (or ``None``).
    """

    key: str
    message: str
    suggestion: str | None = None

    def __str__(self) -> str:
        hint = f" (did you mean {self.suggestion!r}?)" if self.suggestion else ""
        return f"{self.key}: {self.message}{hint}" if self.key else f"{self.message}{hint}"


class SceneError(ValueError):
    """A scene file (or scene dict) is invalid. Subclass of ``ValueError``.

    Attributes:
        file: path of the scene file, or ``None`` for a dict.
        issues: every :class:`Issue` found (at least one).
        key, suggestion: those of the first issue (convenience for single-issue errors).
    """

    def __init__(self, issues, file: str | Path | None = None):
        if isinstance(issues, str):
            issues = [Issue("", issues)]
        self.issues: list[Issue] = list(issues)
        if not self.issues:
            raise ValueError("SceneError needs at least one issue")
        self.file = str(file) if file is not None else None
        first = self.issues[0]
        self.key, self.suggestion = first.key, first.suggestion
        super().__init__(self._format())

    def _format(self) -> str:
        where = f"{self.file}: " if self.file else ""
        if len(self.issues) == 1:
            return f"{where}{self.issues[0]}"
        lines = "\n".join(f"  - {i}" for i in self.issues)
        return f"{where}{len(self.issues)} problems:\n{lines}"


class SceneFileNotFoundError(SceneError, FileNotFoundError):
    """The scene file itself does not exist (also a ``FileNotFoundError``)."""


def did_you_mean(name: str, candidates) -> str | None:
    """The candidate closest to a misspelt ``name`` (difflib ratio >= 0.6), or ``None``."""
    matches = difflib.get_close_matches(str(name), [str(c) for c in candidates], n=1, cutoff=0.6)
    return matches[0] if matches else None


def describe(value) -> str:
    """Short description of a found value for error messages: type and a clipped repr."""
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, dict):
        return f"a table with keys {sorted(value)[:6]}" if value else "an empty table"
    if isinstance(value, list):
        return f"an array of {len(value)} item{'s' if len(value) != 1 else ''}"
    if isinstance(value, str):
        text = value if len(value) <= 40 else value[:37] + "..."
        return f"string {text!r}"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, int):
        text = str(value)
        return text if len(text) <= 24 else f"integer with {len(text)} digits"
    return f"{type(value).__name__} {str(value)[:40]}"


def key_path(parts) -> str:
    """Render ``["bodies", 1, "stiffness"]`` as ``bodies[1].stiffness`` (TOML-quoted keys)."""
    out = ""
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            text = p if (p and all(c.isalnum() or c in "_-" for c in p) and p.isascii()) \
                else '"' + p.replace("\\", "\\\\").replace('"', '\\"') + '"'
            out += ("." if out else "") + text
    return out
