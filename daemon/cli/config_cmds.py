"""Configuration commands: validate, print, get, set, unset, doc."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from daemon.cli import client, docs
from daemon.cli.errors import EXIT_FAILED, EXIT_OK, EXIT_USAGE, ActionFailed, UsageError
from daemon.cli.local_instances import var_dir
from daemon.config import ini
from daemon.config.errors import ConfigError, ConfigIssue
from daemon.config.store import (
    config_dir,
    local_nodename,
    select,
    service_path,
    write_atomically,
)
from daemon.service.config import EvalContext, ServiceConfig
from daemon.service.evaluate import evaluated_config
from daemon.service.validate import has_errors, keyword_errors, validate


def _paths(args: argparse.Namespace, selector: str) -> list[Path]:
    directory = config_dir(args.config_dir)
    return [service_path(directory, name) for name in select(directory, selector)]


def _context(args: argparse.Namespace) -> EvalContext:
    return EvalContext(nodename=(args.impersonate or local_nodename()).lower())


def _load(path: Path, context: EvalContext) -> ServiceConfig:
    return ServiceConfig(ini.load(path), context=context)


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


def _issue_report(path: Path, issues: list[ConfigIssue]) -> dict[str, Any]:
    return {
        "service": path.stem,
        "file": str(path),
        "valid": not has_errors(issues),
        "issues": [i.as_dict() for i in issues],
    }


def validate_config(args: argparse.Namespace, selector: str) -> int:
    """Report every problem of each selected service; exit 2 when one has an error."""
    reports: list[dict[str, Any]] = []
    code = EXIT_OK
    for path in _paths(args, selector):
        try:
            issues = validate(_load(path, _context(args)))
        except ConfigError as exc:
            issues = exc.issues
        reports.append(_issue_report(path, issues))
        if has_errors(issues):
            code = EXIT_USAGE
        if args.output == "text":
            for issue in issues:
                print(issue.render())
            if not has_errors(issues):
                print(f"{path}: valid")
    if args.output == "json":
        _print_json(reports if len(reports) > 1 else reports[0])
    return code


def _one_path(args: argparse.Namespace, selector: str) -> Path:
    paths = _paths(args, selector)
    if len(paths) != 1:
        raise UsageError("this action takes exactly one service")
    return paths[0]


def print_config(args: argparse.Namespace, selector: str) -> int:
    path = _one_path(args, selector)
    context = _context(args)
    if args.impersonate and not args.eval:
        raise UsageError("--impersonate goes with --eval")
    svc = _load(path, context)
    if not args.eval:
        if args.output == "json":
            _print_json(
                {
                    name: {e.key: e.value for e in section.entries.values()}
                    for name, section in svc.doc.sections.items()
                }
            )
        else:
            print(svc.doc.text(), end="")
        return EXIT_OK
    _refuse_errors(svc)
    evaluated = evaluated_config(svc, context.nodename)
    if args.output == "json":
        _print_json(evaluated)
        return EXIT_OK
    for section, values in evaluated.items():
        print(f"[{section}]")
        for name, value in values.items():
            keyword = svc.keyword(section, name)
            text = keyword.render(value) if keyword and value is not None else str(value)
            print(f"{name} = {text}")
        print()
    return EXIT_OK


def _refuse_errors(svc: ServiceConfig) -> None:
    errors = [i for i in validate(svc) if i.severity.value == "error"]
    if errors:
        raise ConfigError(errors)


def _split_kw(text: str) -> tuple[str, str, str | None]:
    """``'fs#0.dev@n1=/dev/x'`` -> ``('fs#0', 'dev@n1', '/dev/x')``; no section means DEFAULT."""
    target, eq, value = text.partition("=")
    target = target.strip()
    if target.startswith(("DEFAULT.", "env.")):
        section, _, key = target.partition(".")
    elif "#" in target and "." in target.split("#", 1)[1]:
        head, tail = target.split("#", 1)
        name, _, key = tail.partition(".")
        section = f"{head}#{name}"
    else:
        section, key = "DEFAULT", target
    if not key:
        raise UsageError(f"--kw {text!r}: write SECTION.KEYWORD, e.g. fs#0.mnt or DEFAULT.nodes")
    return section, key, (value if eq else None)


def get_keyword(args: argparse.Namespace, selector: str) -> int:
    """Print one keyword's value alone: as written, or evaluated for a node with --eval."""
    if len(args.kw) != 1:
        raise UsageError("get takes one --kw SECTION.KEYWORD")
    if args.impersonate and not args.eval:
        raise UsageError("--impersonate goes with --eval")
    section, key, value = _split_kw(args.kw[0])
    if value is not None:
        raise UsageError("get takes no '=VALUE' (use set)")
    context = _context(args)
    svc = _load(_one_path(args, selector), context)
    if not args.eval:
        entry = svc.doc.get(section, key)
        if entry is None:
            raise ActionFailed(f"{section}.{key} is not set in {svc.doc.path}")
        print(entry.value)
        return EXIT_OK
    if "@" in key:
        raise UsageError("--eval takes a keyword without scope; use --impersonate NODE")
    if section not in svc.sections:
        raise ActionFailed(f"no section [{section}] in {svc.doc.path}")
    held = section == "DEFAULT" and key in svc.sections["DEFAULT"].variants
    if svc.keyword(section, key) is None and section != "env" and not held:
        raise UsageError(f"{key!r} is not a keyword of [{section}] (see 'ferry doc')")
    errors = keyword_errors(svc, section, key, context.nodename)
    if errors:  # what validate refuses, get does not print either
        raise ConfigError(errors)
    result = svc.value(section, key, context.nodename)
    if result is None:
        return EXIT_FAILED
    keyword = svc.keyword(section, key)
    print(keyword.render(result) if keyword else result)
    return EXIT_OK


def _edit(args: argparse.Namespace, selector: str, setting: bool) -> int:
    if not args.kw:
        raise UsageError("give at least one --kw")
    path = _one_path(args, selector)
    if not path.exists():
        raise ActionFailed(f"no such service: {path} does not exist")
    context = _context(args)
    doc = ini.load(path)
    for item in args.kw:
        section, key, value = _split_kw(item)
        if setting and value is None:
            raise UsageError(f"--kw {item!r}: set needs SECTION.KEYWORD=VALUE")
        if not setting and value is not None:
            raise UsageError(f"--kw {item!r}: unset takes no '=VALUE'")
        if not setting and doc.get(section, key) is None:
            raise ActionFailed(f"{section}.{key} is not set in {path}")
        text = (
            ini.with_value(doc, section, key, value or "")
            if setting
            else ini.without_value(doc, section, key)
        )
        doc = ini.parse(text, str(path))
    # A config with errors is never installed (SPEC 2.1), whether the errors are new or were
    # there before; an edit that repairs every error is accepted, so a broken file can be fixed.
    errors = [
        i for i in validate(ServiceConfig(doc, context=context)) if i.severity.value == "error"
    ]
    if errors:
        raise ConfigError(errors)
    install(args, path, doc.text())
    return EXIT_OK


def install(args: argparse.Namespace, path: Path, text: str) -> None:
    """Install a validated configuration: through the local daemon when it runs and serves
    this file's directory (it installs it and pushes it to the service's other nodes), else
    straight into the file. Never into another file than path."""
    ep = client.endpoint(var_dir=str(var_dir(args)))
    if getattr(args, "local", False) or ep.socket_path is None or not ep.socket_path.exists():
        write_atomically(path, text)
        return
    try:
        served = Path(client.request(ep, "GET", "/api/node")["config_dir"])
    except (client.ClientError, KeyError) as exc:
        raise ActionFailed(
            f"cannot ask the daemon which directory it serves ({exc}); nothing written "
            "(--local edits the file without the daemon)"
        ) from None
    if served.resolve() != path.parent.resolve():
        # --config-dir names another directory than the daemon's: edit that one, here.
        write_atomically(path, text)
        print(
            f"{path.stem}: written to {path} locally (the daemon serves {served}; "
            "nothing installed there nor pushed to other nodes)",
            file=sys.stderr,
        )
        return
    try:
        result = client.put_config(ep, path.stem, text)
    except client.ClientError as exc:
        raise ActionFailed(f"the daemon refused the configuration: {exc}") from None
    for node, outcome in sorted((result.get("distributed") or {}).items()):
        print(f"{path.stem}: {node}: {outcome}")


def create(args: argparse.Namespace, selector: str) -> int:
    """``ferry SVC create --config FILE``: install a new service (validated first)."""
    if not args.config:
        raise UsageError("create needs --config FILE (a service configuration)")
    names = [n for n in selector.split(",") if n]
    if len(names) != 1:
        raise UsageError("create takes exactly one service name")
    directory = config_dir(args.config_dir)
    path = service_path(directory, select(directory, names[0])[0])
    if path.exists():
        raise ActionFailed(f"{path} exists already: use set, or edit it")
    source = Path(args.config)
    doc = ini.load(source)
    doc = ini.parse(doc.text(), str(path))
    errors = [
        i
        for i in validate(ServiceConfig(doc, context=_context(args)))
        if i.severity.value == "error"
    ]
    if errors:
        raise ConfigError(errors)
    directory.mkdir(parents=True, exist_ok=True)
    install(args, path, doc.text())
    print(f"{path.stem}: installed")
    return EXIT_OK


def set_keyword(args: argparse.Namespace, selector: str) -> int:
    """Set keywords; refused, with nothing written, when the result has a configuration error."""
    return _edit(args, selector, setting=True)


def unset_keyword(args: argparse.Namespace, selector: str) -> int:
    """Remove keywords; refused, with nothing written, when the result has a configuration error."""
    return _edit(args, selector, setting=False)


def doc(args: argparse.Namespace) -> int:
    """``ferry doc [KEYWORD]``: help generated from the keyword declarations."""
    if args.markdown:
        print(docs.reference_markdown())
        return EXIT_OK
    if args.cli:
        from daemon.cli.reference import cli_markdown

        print(cli_markdown())
        return EXIT_OK
    if args.api or args.openapi:
        from daemon.api import reference

        print(reference.api_markdown() if args.api else reference.openapi_json(), end="")
        return EXIT_OK
    query = " ".join(args.words)
    if not query:
        for manifest in docs.manifests():
            print(f"{manifest.label}: {manifest.help}")
            print("    " + " ".join(manifest.names()))
        print("\nferry doc <keyword> (e.g. ferry doc fs.mnt, ferry doc sync.btrfs) for details")
        return EXIT_OK
    found = docs.lookup(query)
    if not found:
        known = sorted({kw.name for m in docs.manifests() for kw in m.keywords})
        from daemon.config.errors import closest

        hint = closest(query.split(".")[-1], known)
        raise UsageError(f"no keyword {query!r}" + (f": {hint}" if hint else ""))
    if args.output == "json":
        _print_json(
            [
                {
                    "section": m.label,
                    "keyword": k.name,
                    "help": k.help,
                    "converter": k.converter.name,
                    "default": k.default_description(),
                    "required": k.required,
                    "scopable": k.scopable,
                    "candidates": list(k.candidates),
                    "aliases": list(k.aliases),
                }
                for m, k in found
            ]
        )
        return EXIT_OK
    print("\n\n".join(docs.describe(m, k) for m, k in found))
    return EXIT_OK
