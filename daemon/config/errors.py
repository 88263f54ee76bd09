"""Located configuration problems.

Every problem Ferry reports about a configuration points at the place it comes
from: file, line, section, keyword and, when it only concerns one node, that
node. One problem renders as one line: ``file:line [section] keyword: message (hint)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Severity(StrEnum):
    ERROR = "error"
    NOTICE = "notice"


@dataclass(frozen=True)
class ConfigIssue:
    """One problem (or notice) found in a configuration file."""

    message: str
    file: str = ""
    line: int = 0
    section: str = ""
    keyword: str = ""
    hint: str = ""
    node: str = ""
    severity: Severity = Severity.ERROR

    def render(self) -> str:
        where = self.file or "<config>"
        where += f":{self.line}" if self.line else ":"
        parts = [where]
        if self.section:
            parts.append(f"[{self.section}]")
        head = " ".join(parts)
        what = f"{self.keyword}: " if self.keyword else ""
        hint = f" ({self.hint})" if self.hint else ""
        prefix = "notice: " if self.severity is Severity.NOTICE else ""
        return f"{prefix}{head} {what}{self.message}{hint}"

    def as_dict(self) -> dict[str, object]:
        return {
            "severity": str(self.severity),
            "file": self.file,
            "line": self.line,
            "section": self.section,
            "keyword": self.keyword,
            "node": self.node,
            "message": self.message,
            "hint": self.hint,
        }


class ConfigError(Exception):
    """Raised when a configuration cannot be used; carries every problem found."""

    def __init__(self, issues: list[ConfigIssue]) -> None:
        self.issues = issues
        super().__init__("\n".join(issue.render() for issue in issues))


def closest(word: str, known: list[str] | tuple[str, ...] | set[str]) -> str:
    """A 'did you mean' hint for a misspelt word, or an empty string."""
    import difflib

    matches = difflib.get_close_matches(word, sorted(known), n=1, cutoff=0.7)
    return f"did you mean {matches[0]!r}?" if matches else ""
