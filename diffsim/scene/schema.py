"""Declarative scene schema: one table of :class:`Key` per section, and its validator.

A :class:`Key` says everything about one scene key: type, default, units, a one-line doc
and its constraints (bounds, choices, array shape). Validation and the reference
documentation (``docs/scene_format.md``, see :mod:`diffsim.scene.docs`) are both generated
from these tables, so they cannot drift apart.

Validation returns the *normalised* spec: defaults filled in, integers given for real keys
converted to ``float``, arrays as nested lists. Everything in it is plain TOML data, so a
spec can be written back out (:func:`diffsim.scene.dump_scene`) and read again unchanged.
Problems are collected in a :class:`Context` (key path, expected, found, did-you-mean) and
raised together as one :class:`~diffsim.scene.errors.SceneError`.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any, Callable

from .errors import Issue, SceneError, describe, did_you_mean, key_path

# Caps that keep any input, however large, from reaching an allocation that fails deep in
# Taichi or NumPy. They are far above any scene that runs in reasonable time.
MAX_ARRAY_ITEMS = 1_000_000   # numbers in one array-valued key
MAX_LENGTH = 1e6              # |coordinate| and length bounds [m]
MAX_MODULUS = 1e15            # stiffness, damping, mass bounds (SI units)


class _Marker:
    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return self.name


REQUIRED = _Marker("REQUIRED")   # the key must be given
OPTIONAL = _Marker("OPTIONAL")   # no default: absent from the spec unless given
_INVALID = _Marker("INVALID")


@dataclass(frozen=True)
class Computed:
    """A default that depends on other settings (e.g. gravity on the dimension's up axis).

    ``fn(ctx)`` returns the value; ``doc`` describes it in the reference documentation.
    """

    fn: Callable[["Context"], Any]
    doc: str


@dataclass(frozen=True)
class Key:
    """One scene key.

    Attributes:
        type: ``float``, ``int``, ``bool``, ``str``, ``path`` (a file, relative to the scene
            file), ``array`` (nested lists of numbers of a given ``shape``) or ``strings``
            (a list of strings from ``choices``).
        doc: one-line description.
        default: a value, :data:`REQUIRED`, :data:`OPTIONAL` or a :class:`Computed`.
        units: SI units (``"-"`` for dimensionless, ``""`` for non-numeric keys).
        lo / hi: inclusive bounds of numbers (array elements too); ``positive``: strictly > 0.
        choices: allowed values of a ``str`` key or of the items of a ``strings`` key.
        shape: array shape; each entry an int, ``"dim"``, ``"dim+1"``, ``"2*dim"`` or ``"*"``.
        dtype: ``float`` or ``int`` elements of an ``array``.
        min_items: minimum length of the first array axis.
        max_items: maximum count of numbers in an ``array``.
        suffixes: allowed file suffixes of a ``path`` (lower case, with the dot).
    """

    type: str
    doc: str
    default: Any = REQUIRED
    units: str = ""
    lo: float | None = None
    hi: float | None = None
    positive: bool = False
    choices: tuple | None = None
    shape: tuple = ()
    dtype: str = "float"
    min_items: int = 0
    max_items: int = MAX_ARRAY_ITEMS
    suffixes: tuple = ()

    def expected(self, ctx: "Context | None" = None) -> str:
        """Human description of valid values, e.g. ``"a number > 0"``."""
        if self.type == "bool":
            return "true or false"
        if self.type == "str":
            return ("one of " + ", ".join(repr(c) for c in self.choices)) if self.choices \
                else "a string"
        if self.type == "path":
            tail = f" ending in {'/'.join(self.suffixes)}" if self.suffixes else ""
            return f"a file path (string){tail}"
        if self.type == "strings":
            return "an array of strings from " + ", ".join(repr(c) for c in self.choices or ())
        number = "an integer" if self.type == "int" or self.dtype == "int" else "a number"
        bounds = self._bounds_text()
        if self.type == "array":
            dims = ", ".join(_shape_text(t, ctx) for t in self.shape)
            what = "integers" if self.dtype == "int" else "numbers"
            return f"a [{dims}] array of {what}{(' each ' + bounds) if bounds else ''}"
        return f"{number}{(' ' + bounds) if bounds else ''}"

    def _bounds_text(self) -> str:
        lo = 0 if self.positive else self.lo
        op = ">" if self.positive else ">="
        if lo is not None and self.hi is not None and not self.positive:
            return f"in [{_num(lo)}, {_num(self.hi)}]"
        parts = []
        if lo is not None:
            parts.append(f"{op} {_num(lo)}")
        if self.hi is not None:
            parts.append(f"<= {_num(self.hi)}")
        return " and ".join(parts)


def _num(x) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


def _shape_text(token, ctx) -> str:
    if token == "*":
        return "N"
    if isinstance(token, str) and ctx is not None:
        return str(resolve_token(token, ctx))
    return str(token)


def resolve_token(token, ctx: "Context") -> int | None:
    """Length required by a shape token (``None`` for ``"*"``)."""
    if token == "*":
        return None
    if isinstance(token, int):
        return token
    return {"dim": ctx.dim, "dim+1": ctx.dim + 1, "2*dim": 2 * ctx.dim}[token]


@dataclass
class Table:
    """The keys of one TOML table, and an optional cross-key check.

    ``check(values, path, ctx)`` runs after the keys validated without problems; it reports
    with ``ctx.add`` (e.g. "``lower`` must be below ``upper``").
    """

    keys: dict[str, Key]
    doc: str = ""
    check: Callable[[dict, list, "Context"], None] | None = None


@dataclass
class Context:
    """Validation state: where problems go, and settings later keys depend on.

    Attributes:
        file: scene file (for messages). base_dir: directory relative paths resolve against.
        dim: spatial dimension (from ``[solver]``), used by shape tokens.
        path_fn: optional transform applied to every ``path`` value (used to rebase paths
            when a spec is written to another directory).
        stem: the scene file's name without suffix (default scene name).
    """

    file: str | None = None
    base_dir: Any = None
    dim: int = 2
    path_fn: Callable[[str], str] | None = None
    stem: str | None = None
    issues: list[Issue] = field(default_factory=list)

    def add(self, path, message: str, suggestion: str | None = None) -> None:
        self.issues.append(Issue(key_path(path), message, suggestion))

    def expected(self, path, expected: str, found) -> None:
        self.add(path, f"expected {expected}, found {describe(found)}")

    def raise_if_any(self) -> None:
        if self.issues:
            raise SceneError(self.issues, self.file)


class _Bad(Exception):
    """Internal: stop checking one array after its first problem."""


# ----------------------------------------------------------------------------- values


def _number_or_none(value, key: Key, integer: bool):
    """The value as int/float if valid for ``key``, else ``None`` (the fast path)."""
    t = type(value)  # exact types: bool is a subclass of int and must not pass
    if t is int:
        if not integer:
            try:
                value = float(value)
            except OverflowError:
                return None
    elif t is float:
        if integer or not math.isfinite(value):
            return None
    else:
        return None
    if (key.positive and not value > 0) or (key.lo is not None and value < key.lo) or (
            key.hi is not None and value > key.hi):
        return None
    return value


def _check_number(value, key: Key, path, ctx: Context, integer: bool):
    number = _number_or_none(value, key, integer)
    if number is not None:
        return number
    # the message is built only on failure: arrays check up to a million numbers
    if isinstance(value, float) and not math.isfinite(value):
        ctx.expected(path, f"a finite {'integer' if integer else 'number'}", value)
        return _INVALID
    bounds = key._bounds_text()
    what = key.expected(ctx) if key.type != "array" else (
        ("an integer" if integer else "a number") + (f" {bounds}" if bounds else ""))
    ctx.expected(path, what, value)
    return _INVALID


def _check_array(value, key: Key, path, ctx: Context):
    integer = key.dtype == "int"
    counted = [0]

    def walk(v, depth, p):
        want = resolve_token(key.shape[depth], ctx)
        if not isinstance(v, list):
            ctx.expected(p, key.expected(ctx) if depth == 0 else
                         f"an array of {want if want is not None else 'N'} items", v)
            raise _Bad
        if want is not None and len(v) != want:
            ctx.add(p, f"expected {want} item{'s' if want != 1 else ''}, found {len(v)}"
                    + (f" (the whole value must be {key.expected(ctx)})" if depth == 0 else ""))
            raise _Bad
        if depth == 0 and len(v) < key.min_items:
            ctx.add(p, f"expected at least {key.min_items} item(s), found {len(v)}")
            raise _Bad
        if depth == 0:  # refuse a huge array before walking it
            inner = [resolve_token(t, ctx) or 1 for t in key.shape[1:]]
            if len(v) * math.prod(inner) > key.max_items:
                ctx.add(path, f"expected at most {key.max_items} numbers, found more")
                raise _Bad
        if depth == len(key.shape) - 1:
            counted[0] += len(v)
            if counted[0] > key.max_items:
                ctx.add(path, f"expected at most {key.max_items} numbers, found more")
                raise _Bad
            out = [_number_or_none(e, key, integer) for e in v]
            if None in out:
                i = out.index(None)
                _check_number(v[i], key, p + [i], ctx, integer)  # reports the problem
                raise _Bad
            return out
        if len(v) > key.max_items:
            ctx.add(path, f"expected at most {key.max_items} numbers, found more")
            raise _Bad
        return [walk(e, depth + 1, p + [i]) for i, e in enumerate(v)]

    try:
        return walk(value, 0, path)
    except _Bad:
        return _INVALID


def check_value(value, key: Key, path, ctx: Context):
    """Validate one value against ``key``; returns the normalised value or ``_INVALID``."""
    t = key.type
    if t in ("float", "int"):
        return _check_number(value, key, path, ctx, t == "int")
    if t == "bool":
        if not isinstance(value, bool):
            ctx.expected(path, "true or false", value)
            return _INVALID
        return value
    if t in ("str", "path"):
        if not isinstance(value, str) or (t == "path" and not value.strip()):
            ctx.expected(path, key.expected(ctx), value)
            return _INVALID
        if key.choices and value not in key.choices:
            ctx.add(path, f"expected {key.expected(ctx)}, found {describe(value)}",
                    did_you_mean(value, key.choices))
            return _INVALID
        if t == "path":
            if "\x00" in value:
                ctx.expected(path, key.expected(ctx), value)
                return _INVALID
            if key.suffixes and not value.lower().endswith(key.suffixes):
                ctx.expected(path, key.expected(ctx), value)
                return _INVALID
            if ctx.path_fn is not None:
                value = ctx.path_fn(value)
        return value
    if t == "strings":
        if not isinstance(value, list):
            ctx.expected(path, key.expected(ctx), value)
            return _INVALID
        out = []
        for i, item in enumerate(value):
            if not isinstance(item, str) or (key.choices and item not in key.choices):
                hint = did_you_mean(item, key.choices or ()) if isinstance(item, str) else None
                ctx.add(path + [i], f"expected one of {', '.join(map(repr, key.choices or ()))}, "
                        f"found {describe(item)}", hint)
                return _INVALID
            if item in out:
                ctx.add(path + [i], f"duplicate entry {item!r}")
                return _INVALID
            out.append(item)
        return out
    if t == "array":
        return _check_array(value, key, path, ctx)
    raise TypeError(f"unknown key type {t!r}")  # a schema bug, not user input


def default_value(key: Key, ctx: Context):
    if isinstance(key.default, Computed):
        return key.default.fn(ctx)
    return copy.deepcopy(key.default)


# ----------------------------------------------------------------------------- tables


def validate_table(data, table: Table, path, ctx: Context) -> dict | None:
    """Validate a TOML table; returns the normalised dict (``None`` if not a table)."""
    if not isinstance(data, dict):
        ctx.expected(path, f"a table [{key_path(path)}]", data)
        return None
    before = len(ctx.issues)
    for name in data:
        if name not in table.keys:
            ctx.add(path + [name], f"unknown key (valid keys: {', '.join(table.keys)})",
                    did_you_mean(name, table.keys))
    out = {}
    for name, key in table.keys.items():
        if name in data:
            value = check_value(data[name], key, path + [name], ctx)
            if value is not _INVALID:
                out[name] = value
        elif key.default is REQUIRED:
            ctx.add(path + [name], f"missing required key: {key.doc} ({key.expected(ctx)})")
        elif key.default is not OPTIONAL:
            out[name] = default_value(key, ctx)
    if table.check is not None and len(ctx.issues) == before:
        table.check(out, path, ctx)
    return out


def validate_variants(data, variants: dict[str, Table], path, ctx: Context,
                      min_items: int = 0, max_items: int = 100_000) -> list:
    """An array of tables whose ``type`` key picks the table (``[[bodies]]``)."""
    name = key_path(path)
    if not isinstance(data, list) or any(not isinstance(d, dict) for d in data):
        ctx.expected(path, f"an array of tables ([[{name}]] with a 'type' key)", data)
        return []
    if len(data) < min_items:
        ctx.add(path, f"expected at least {min_items} [[{name}]] table(s), found {len(data)}")
    if len(data) > max_items:
        ctx.add(path, f"expected at most {max_items} [[{name}]] tables, found {len(data)}")
        return []
    out = []
    for i, item in enumerate(data):
        kind = item.get("type")
        if kind is None:
            ctx.add(path + [i, "type"], "missing required key: one of "
                    + ", ".join(repr(v) for v in variants))
        elif not isinstance(kind, str) or kind not in variants:
            ctx.add(path + [i, "type"], "expected one of " + ", ".join(repr(v) for v in variants)
                    + f", found {describe(kind)}",
                    did_you_mean(kind, variants) if isinstance(kind, str) else None)
        else:
            value = validate_table(item, variants[kind], path + [i], ctx)
            if value is not None:
                out.append(value)
    return out


def validate_named(data, table: Table, path, ctx: Context) -> dict:
    """A table of named tables (``[materials.steel]``)."""
    if not isinstance(data, dict) or any(not isinstance(v, dict) for v in data.values()):
        ctx.expected(path, f"named tables ([{key_path(path)}.NAME])", data)
        return {}
    out = {}
    for name, item in data.items():
        value = validate_table(item, table, path + [name], ctx)
        if value is not None:
            out[name] = value
    return out


def validate_array(data, table: Table, path, ctx: Context, max_items: int = 10_000) -> list:
    """An array of tables of one kind (``[[free]]``)."""
    name = key_path(path)
    if not isinstance(data, list) or any(not isinstance(d, dict) for d in data):
        ctx.expected(path, f"an array of tables ([[{name}]])", data)
        return []
    if len(data) > max_items:
        ctx.add(path, f"expected at most {max_items} [[{name}]] tables, found {len(data)}")
        return []
    out = []
    for i, item in enumerate(data):
        value = validate_table(item, table, path + [i], ctx)
        if value is not None:
            out.append(value)
    return out


def variant_table(type_name: str, keys: dict[str, Key], doc: str = "", check=None) -> Table:
    """A variant of a ``[[...]]`` array: ``keys`` plus the ``type`` key that selects it."""
    head = {"type": Key("str", f"selects this variant: {type_name!r}", REQUIRED,
                        choices=(type_name,))}
    return Table({**head, **keys}, doc, check)
