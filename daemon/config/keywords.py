"""Keyword declarations.

A driver (or the service model, for ``[DEFAULT]``) declares each keyword once:
its converter, default, whether it is required or scopable, its candidates,
deprecated aliases, where it inherits from and a one-line help text. Parsing,
validation, ``print config``, ``ferry doc`` and driver arguments all read these
declarations; there is no second list of keywords.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from daemon.config import converters
from daemon.config.converters import Converter


class Inherit(StrEnum):
    """Where a keyword's value may come from."""

    SECTION = "section"  # only the keyword's own section
    DEFAULT = "default"  # only [DEFAULT]
    SECTION_THEN_DEFAULT = "section then default"


@dataclass(frozen=True)
class Keyword:
    """One keyword of a section."""

    name: str
    help: str
    converter: Converter = converters.STRING
    default: Any = None
    default_text: str = ""  # for defaults computed from other keywords
    required: bool = False
    scopable: bool = False
    candidates: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()  # deprecated spellings, loaded with a notice
    also: tuple[str, ...] = ()  # other names, as good as the first (OpenSVC's spelling)
    inherit: Inherit = Inherit.SECTION
    default_keyword: str = ""  # name in [DEFAULT] when it differs (schedule -> sync_schedule)
    example: str = ""

    @property
    def fallback_name(self) -> str:
        return self.default_keyword or self.name

    def convert(self, text: str) -> Any:
        """Convert and check the candidates; ValueError says what is wrong."""
        value = self.converter(text)
        if self.candidates:
            items = value if isinstance(value, list) else [value]
            for item in items:
                if item not in self.candidates:
                    raise ValueError(f"{item!r} is not one of: {', '.join(self.candidates)}")
        return value

    def render(self, value: Any) -> str:
        return self.converter.render(value)

    def default_description(self) -> str:
        if self.default_text:
            return self.default_text
        if self.default is None:
            return ""
        return self.render(self.default)


@dataclass(frozen=True)
class Manifest:
    """The keywords of one section kind: ``[DEFAULT]`` or a driver (group + type)."""

    group: str
    type: str
    help: str
    keywords: tuple[Keyword, ...] = field(default=())

    @property
    def label(self) -> str:
        return f"{self.group}.{self.type}" if self.type else self.group

    def by_name(self) -> dict[str, Keyword]:
        table: dict[str, Keyword] = {}
        for kw in self.keywords:
            table[kw.name] = kw
        return table

    def resolve(self, name: str) -> tuple[Keyword | None, bool]:
        """Find a keyword by name or deprecated alias; the bool says 'alias used'."""
        for kw in self.keywords:
            if kw.name == name:
                return kw, False
        for kw in self.keywords:
            if name in kw.also:
                return kw, False
        for kw in self.keywords:
            if name in kw.aliases:
                return kw, True
        return None, False

    def names(self) -> list[str]:
        return [kw.name for kw in self.keywords]


def merge(*groups: tuple[Keyword, ...]) -> tuple[Keyword, ...]:
    """Concatenate keyword tuples; a later declaration of a name replaces an earlier one."""
    table: dict[str, Keyword] = {}
    for group in groups:
        for kw in group:
            table[kw.name] = kw
    return tuple(table.values())
