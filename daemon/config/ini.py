"""INI documents that remember where every value came from, and edit in place.

Sections are ``[name]``; entries are ``key = value`` or ``key: value`` (the
first ``=`` or ``:`` of the line ends the key, as OpenSVC's parser reads it); an
indented line after an entry continues its value; lines whose first non-blank
character is ``#`` or ``;`` are comments. ``#`` inside a value is literal (``netns = container#0``).
Edits (set, unset) change only the lines of the entry concerned, so comments
and order survive.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from daemon.config.errors import ConfigError, ConfigIssue

MAX_BYTES = 1024 * 1024
_SECTION_RE = re.compile(r"^\[(?P<name>[^\[\]]*)\]\s*$")
# The key ends at the first '=' or ':' of the line, as in Python's configparser (and so
# OpenSVC's): 'src = svc1:data' is src, 'src: svc1=data' is src too.
_KEY_RE = re.compile(r"^(?P<key>[^=:\s\[][^=:]*?)\s*[=:]\s?(?P<value>.*)$")
# Lines end at \n, \r\n or \r only (str.splitlines also ends them at \v, \f, \x1c-\x1e,
# \x85, U+2028, U+2029: a value could then inject a section). Those, and every other
# control character but the tab, are refused wherever they appear.
_LINE_RE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$")
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")


@dataclass
class Entry:
    """A ``key = value`` line (and its continuation lines)."""

    key: str
    value: str
    line: int
    end_line: int


@dataclass
class Section:
    name: str
    line: int
    entries: dict[str, Entry] = field(default_factory=dict)

    @property
    def end_line(self) -> int:
        if not self.entries:
            return self.line
        return max(entry.end_line for entry in self.entries.values())


@dataclass
class Document:
    """A parsed configuration file: its sections and its original lines."""

    path: str
    lines: list[str]
    sections: dict[str, Section]

    def text(self) -> str:
        return "".join(self.lines)

    def get(self, section: str, key: str) -> Entry | None:
        sec = self.sections.get(section)
        return sec.entries.get(key) if sec else None


def _decode(data: bytes, path: str) -> str:
    def fail(message: str, line: int = 0, hint: str = "") -> ConfigError:
        return ConfigError([ConfigIssue(message, file=path, line=line, hint=hint)])

    if len(data) > MAX_BYTES:
        raise fail(
            f"file is {len(data)} bytes, more than the {MAX_BYTES} a service configuration may be",
            hint="is this really a Ferry configuration?",
        )
    if not data.strip():
        raise fail("file is empty", hint="a service needs at least a [DEFAULT] section with nodes")
    nul = data.find(b"\x00")
    if nul >= 0:
        raise fail("binary data (NUL byte)", line=data.count(b"\n", 0, nul) + 1)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise fail(
            "not UTF-8 text", line=data.count(b"\n", 0, exc.start) + 1, hint="save it as UTF-8"
        ) from None
    return text.removeprefix("\ufeff")


def split_lines(text: str) -> list[str]:
    """text's lines with their endings; a line ends at \\n, \\r\\n or \\r, nothing else."""
    return _LINE_RE.findall(text)


def parse(text: str, path: str) -> Document:
    """Parse text; raise ConfigError listing every syntax problem found."""
    lines = split_lines(text)
    sections: dict[str, Section] = {}
    issues: list[ConfigIssue] = []
    current: Section | None = None
    last: Entry | None = None
    skipping = False  # after a broken section header: its keywords are not reported again
    for number, raw in enumerate(lines, start=1):
        line = raw.rstrip("\r\n")
        control = _CONTROL_RE.search(line)
        if control:
            issues.append(
                ConfigIssue(
                    f"control character U+{ord(control.group()):04X} at column "
                    f"{control.start() + 1}",
                    file=path,
                    line=number,
                    hint="only printable text and tabs belong in a configuration",
                )
            )
            last = None
            continue
        stripped = line.strip()
        if not stripped:
            last = None
            continue
        if stripped[0] in "#;":
            continue
        if line[0] in " \t" and last is not None:
            last.value = f"{last.value}\n{stripped}" if last.value else stripped
            last.end_line = number
            continue
        match = _SECTION_RE.match(stripped)
        if match:
            name = match.group("name").strip()
            last = None
            skipping = True
            if not name:
                issues.append(ConfigIssue("empty section name", file=path, line=number))
                current = None
                continue
            if name in sections:
                issues.append(
                    ConfigIssue(
                        f"duplicate section (first at line {sections[name].line})",
                        file=path,
                        line=number,
                        section=name,
                        hint="merge the two sections",
                    )
                )
                current = None
                continue
            current = Section(name, number)
            sections[name] = current
            skipping = False
            continue
        if stripped.startswith("["):
            issues.append(
                ConfigIssue(
                    f"malformed section header {stripped[:60]!r}",
                    file=path,
                    line=number,
                    hint="write [group#name]",
                )
            )
            current, last, skipping = None, None, True
            continue
        if skipping:
            continue
        match = _KEY_RE.match(stripped)
        if not match:
            issues.append(
                ConfigIssue(
                    f"expected 'keyword = value', got {stripped[:60]!r}",
                    file=path,
                    line=number,
                    section=current.name if current else "",
                )
            )
            last = None
            continue
        key, value = match.group("key").strip(), match.group("value").strip()
        if current is None:
            if not issues or issues[-1].line != number:
                issues.append(
                    ConfigIssue(
                        "keyword outside of any section",
                        file=path,
                        line=number,
                        keyword=key,
                        hint="put it under [DEFAULT] or a resource section",
                    )
                )
            last = None
            continue
        if " " in key or "\t" in key:
            issues.append(
                ConfigIssue(
                    "a keyword has no blank inside",
                    file=path,
                    line=number,
                    section=current.name,
                    keyword=key,
                )
            )
            last = None
            continue
        if key in current.entries:
            issues.append(
                ConfigIssue(
                    f"set twice in this section (first at line {current.entries[key].line})",
                    file=path,
                    line=number,
                    section=current.name,
                    keyword=key,
                )
            )
            last = None
            continue
        last = Entry(key, value, number, number)
        current.entries[key] = last
    if issues:
        raise ConfigError(issues)
    if not sections:
        raise ConfigError(
            [ConfigIssue("no section in file", file=path, hint="start with [DEFAULT]")]
        )
    return Document(path, lines, sections)


def load_bytes(data: bytes, path: str) -> Document:
    return parse(_decode(data, path), path)


def load(path: Path | str) -> Document:
    """Read and parse a file; an unreadable file is a ConfigError too."""
    name = str(path)
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise ConfigError([ConfigIssue("no such file", file=name)]) from None
    except OSError as exc:
        raise ConfigError([ConfigIssue(f"cannot read: {exc.strerror}", file=name)]) from None
    return load_bytes(data, name)


def _value_lines(key: str, value: str) -> list[str]:
    first, *rest = value.split("\n")
    out = [f"{key} = {first}\n"]
    out += [f"    {line}\n" for line in rest]
    return out


def with_value(doc: Document, section: str, key: str, value: str) -> str:
    """The document's text with ``section.key`` set to value; other lines unchanged."""
    lines = list(doc.lines)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    new = _value_lines(key, value)
    entry = doc.get(section, key)
    if entry is not None:
        lines[entry.line - 1 : entry.end_line] = new
    elif section in doc.sections:
        at = doc.sections[section].end_line
        lines[at:at] = new
    else:
        if lines and lines[-1].strip():
            lines.append("\n")
        lines += [f"[{section}]\n", *new]
    return "".join(lines)


def without_value(doc: Document, section: str, key: str) -> str:
    """The document's text with ``section.key`` removed; other lines unchanged."""
    entry = doc.get(section, key)
    if entry is None:
        return doc.text()
    lines = list(doc.lines)
    del lines[entry.line - 1 : entry.end_line]
    return "".join(lines)
