"""Check a configuration text in one call: parse, validate, evaluate; the result is plain data.

This is the CPU-heavy work the API does on request data; the daemon runs it in a worker
process (:mod:`daemon.api.checker`), so its arguments and result are picklable.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from daemon.config import ini
from daemon.config.errors import ConfigError, ConfigIssue
from daemon.service.config import EvalContext, ServiceConfig
from daemon.service.evaluate import evaluated_config
from daemon.service.validate import has_errors, validate

MAX_SECTIONS = 1000  # a service of a thousand resources is already far past any real one
MAX_LINES = 20000
_HEADER_RE = re.compile(r"(?:^|[\r\n])[ \t]*\[")


def count_sections(text: str) -> int:
    """How many lines start with '[' (an upper bound of the sections): cheap, in C."""
    return len(_HEADER_RE.findall(text))


def sections_problem(text: str) -> str | None:
    """Why text is too big to check (sections, lines), or None; cheap, on the event loop."""
    lines = text.count("\n") + text.count("\r")
    if lines > MAX_LINES:
        return f"the configuration has {lines} lines; a service may have at most {MAX_LINES}"
    count = count_sections(text)
    if count > MAX_SECTIONS:
        return f"the configuration has {count} sections; a service may have at most {MAX_SECTIONS}"
    return None


@dataclass
class CheckResult:
    """What checking a text found: issues, and for a parsable text its nodes and evaluation."""

    parsed: bool
    issues: list[ConfigIssue]
    all_nodes: list[str] = field(default_factory=list)
    evaluated: dict[str, dict[str, Any]] | None = None

    @property
    def valid(self) -> bool:
        return self.parsed and not has_errors(self.issues)


def check_text(
    text: str, path: str, name: str, context: EvalContext, evaluate: bool = False
) -> CheckResult:
    """Parse and validate text (as path, service name); evaluate it for the context's node."""
    problem = sections_problem(text)
    if problem:
        return CheckResult(False, [ConfigIssue(problem, file=path)])
    try:
        svc = ServiceConfig(ini.load_bytes(text.encode(), path), name=name, context=context)
    except ConfigError as exc:
        return CheckResult(False, exc.issues)
    result = CheckResult(True, validate(svc), list(svc.members.all_nodes))
    if evaluate and result.valid:
        try:
            result.evaluated = evaluated_config(svc, context.nodename)
        except ConfigError as exc:
            result.issues = result.issues + exc.issues
    return result
