"""Converters: from a keyword's text value to the typed value drivers use.

Each converter raises ValueError with a short, user-facing reason.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Converter:
    """A named conversion; the name appears in documentation."""

    name: str
    convert: Callable[[str], Any]
    render: Callable[[Any], str] = str
    numeric: bool = False  # a float from a $(...) expression is truncated first, as OpenSVC does

    def __call__(self, text: str) -> Any:
        return self.convert(text)


def _string(text: str) -> str:
    return text.strip()


def _lower(text: str) -> str:
    return text.strip().lower()


# OpenSVC's words, exactly (utilities/converters convert_boolean): 'on' and 'off' are not
# booleans there, and an empty value is false.
TRUE_WORDS = ("true", "yes", "t", "y", "1")
FALSE_WORDS = ("false", "no", "f", "n", "0", "0.0", "", "none", "[]", "{}")


def _boolean(text: str) -> bool:
    word = text.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ValueError(f"{text.strip()!r} is not a boolean (use true or false)")


def _render_bool(value: Any) -> str:
    return "true" if value else "false"


def _integer(text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise ValueError(f"{text.strip()!r} is not an integer") from None


def _words(text: str) -> list[str]:
    return text.split()


def _render_words(value: Any) -> str:
    return " ".join(str(v) for v in value)


def _shell_words(text: str) -> list[str]:
    try:
        return shlex.split(text)
    except ValueError as exc:
        raise ValueError(f"cannot split into shell words: {exc}") from None


def _render_shell_words(value: Any) -> str:
    return shlex.join(value)


_DURATION_UNITS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
_DURATION_RE = re.compile(r"(\d+)([wdhms])")


def parse_duration(text: str, bare_unit: str = "s") -> int:
    """Parse ``1d3h``, ``90m``, ``2h30m``, ``10s`` into seconds.

    A bare integer is read in ``bare_unit`` (``m`` for keywords documented in minutes).
    """
    word = text.strip().lower()
    if not word:
        raise ValueError("empty duration")
    if word.isdigit():
        return int(word) * _DURATION_UNITS[bare_unit]
    pos = 0
    total = 0
    for match in _DURATION_RE.finditer(word):
        if match.start() != pos:
            break
        total += int(match.group(1)) * _DURATION_UNITS[match.group(2)]
        pos = match.end()
    if pos != len(word):
        raise ValueError(f"{text.strip()!r} is not a duration (examples: 1d3h, 90m, 2h30m, 10s)")
    return total


def render_duration(seconds: Any) -> str:
    seconds = int(seconds)
    if seconds == 0:
        return "0s"
    out = ""
    for unit in ("d", "h", "m", "s"):
        size = _DURATION_UNITS[unit]
        if seconds >= size:
            out += f"{seconds // size}{unit}"
            seconds %= size
    return out


def duration(bare_unit: str = "s") -> Converter:
    """A duration converter; ``bare_unit`` says how a bare integer is read."""
    name = "duration" if bare_unit == "s" else "duration (bare number: minutes)"
    return Converter(
        name, lambda text: parse_duration(text, bare_unit), render_duration, numeric=True
    )


_SIZE_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
_SIZE_RE = re.compile(r"^(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?$")


def _size(text: str) -> int:
    word = text.strip().lower()
    match = _SIZE_RE.match(word)
    if not match:
        raise ValueError(f"{text.strip()!r} is not a size (examples: 512k, 10m, 4g)")
    return int(float(match.group(1)) * _SIZE_UNITS[match.group(2)])


STRING = Converter("string", _string)
LOWER = Converter("lower-case string", _lower)
BOOLEAN = Converter("boolean", _boolean, _render_bool)
INTEGER = Converter("integer", _integer, numeric=True)
LIST = Converter("list", _words, _render_words)
SHELL_WORDS = Converter("shell words", _shell_words, _render_shell_words)
NODE_LIST = Converter("node list", lambda text: [w.lower() for w in text.split()], _render_words)
DURATION = duration("s")
DURATION_MINUTES = duration("m")
SIZE = Converter("size", _size, numeric=True)
