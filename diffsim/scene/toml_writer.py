"""A small TOML writer (the standard library only reads TOML).

:func:`dumps` writes a dict of TOML data (str, int, float, bool, dates and times, lists,
dicts) so that ``tomllib.loads(dumps(d)) == d``. Layout: at every level plain values
first, then sub-tables ``[a.b]``, then arrays of tables ``[[a.c]]`` (TOML requires a
table's own keys before any header). A list of numbers is written inline, a list of lists
one row per line when it is long, which keeps ``positions`` arrays readable.
"""

from __future__ import annotations

import datetime
import math
import re

_BARE = re.compile(r"[A-Za-z0-9_-]+")
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f",
            "\r": "\\r"}
_LINE = 96  # inline arrays longer than this are split one item per line


def _key(k) -> str:
    if not isinstance(k, str):
        raise TypeError(f"TOML keys must be strings, got {type(k).__name__} {k!r}")
    return k if _BARE.fullmatch(k) else _string(k)


def _string(s: str) -> str:
    out = []
    for ch in s:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _float(x: float) -> str:
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return repr(x)  # "1e-05", "1.5", "3.0": shortest round-trip text, valid TOML


def _is_table_array(v) -> bool:
    return isinstance(v, list) and len(v) > 0 and all(isinstance(i, dict) for i in v)


def _value(v, indent: str = "", oneline: bool = False) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        if not -(2**63) <= v < 2**63:
            raise ValueError(f"integer {v} does not fit TOML's 64-bit integers")
        return str(v)
    if isinstance(v, float):
        return _float(v)
    if isinstance(v, str):
        return _string(v)
    if isinstance(v, (datetime.datetime, datetime.date, datetime.time)):
        return v.isoformat()
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_key(k)} = {_value(x, oneline=True)}" for k, x in v.items()) + "}" \
            if v else "{}"
    if isinstance(v, (list, tuple)):
        items = [_value(x, indent + "    ", oneline) for x in v]
        inline = "[" + ", ".join(items) + "]"
        # inline tables must stay on one line (TOML 1.0), so only split lists of lists/scalars
        nested = any(isinstance(x, (list, tuple)) for x in v)
        if not oneline and nested and len(inline) + len(indent) > _LINE:
            body = "".join(f"{indent}    {i},\n" for i in items)
            return "[\n" + body + indent + "]"
        return inline
    raise TypeError(f"cannot write {type(v).__name__} {v!r} as TOML")


def _has_plain(d: dict) -> bool:
    return any(not isinstance(v, dict) and not _is_table_array(v) for v in d.values())


def _table(d: dict, prefix: list[str], lines: list[str]) -> None:
    plain = [(k, v) for k, v in d.items() if not isinstance(v, dict) and not _is_table_array(v)]
    tables = [(k, v) for k, v in d.items() if isinstance(v, dict)]
    arrays = [(k, v) for k, v in d.items() if _is_table_array(v)]
    for k, v in plain:
        lines.append(f"{_key(k)} = {_value(v)}")
    for k, v in tables:
        path = prefix + [_key(k)]
        if _has_plain(v) or not v:  # a header of only sub-tables would be noise
            if lines:
                lines.append("")
            lines.append(f"[{'.'.join(path)}]")
        _table(v, path, lines)
    for k, v in arrays:
        path = prefix + [_key(k)]
        for item in v:
            if lines:
                lines.append("")
            lines.append(f"[[{'.'.join(path)}]]")
            _table(item, path, lines)


def dumps(doc: dict) -> str:
    """TOML text for ``doc`` (a dict with string keys); ``tomllib.loads`` reads it back equal.

    Raises:
        TypeError: a key is not a string or a value has no TOML type.
        ValueError: an integer outside the 64-bit range.
    """
    if not isinstance(doc, dict):
        raise TypeError(f"a TOML document is a dict, got {type(doc).__name__}")
    lines: list[str] = []
    _table(doc, [], lines)
    return "\n".join(lines) + "\n"
