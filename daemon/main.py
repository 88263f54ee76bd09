"""``ferryd``: the node daemon's entry point.

``ferryd [--config-dir DIR] [--var-dir DIR] [--listen ADDR:PORT] [--node-config FILE]``.
With no node.conf it runs a single-node cluster named ``default``, listening on
the unix socket ``<var dir>/ferryd.sock`` and on https://127.0.0.1:7443.
Logs go to stderr, one structured line per event (JSON by default).
Exit codes: 0 after a clean stop, 1 on a runtime failure, 2 on a usage or
configuration error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path

from daemon.config.errors import ConfigError
from daemon.config.store import DEFAULT_CONFIG_DIR
from daemon.daemon import Daemon, DaemonError
from daemon.node.config import NodeConfig, load_node_config

DEFAULT_VAR_DIR = "/var/lib/ferry"
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
_RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, and any extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, object] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _RESERVED and not key.startswith("_"):
                data[key] = value
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str)


class KeyValueFormatter(logging.Formatter):
    """``ts=... level=info logger=ferry.daemon msg="..."``: logfmt."""

    @staticmethod
    def _quote(value: object) -> str:
        text = str(value)
        if text and not any(c in text for c in ' "=\n\t'):
            return text
        return json.dumps(text)

    def format(self, record: logging.LogRecord) -> str:
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        parts = [
            f"ts={ts}.{int(record.msecs):03d}Z",
            f"level={record.levelname.lower()}",
            f"logger={record.name}",
            f"msg={self._quote(record.getMessage())}",
        ]
        if record.exc_info:
            parts.append(f"exc={self._quote(self.formatException(record.exc_info))}")
        return " ".join(parts)


def setup_logging(fmt: str = "json", level: str = "info") -> None:
    """Structured log lines on stderr, replacing any previous handler of ours."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(KeyValueFormatter() if fmt == "kv" else JsonFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_ferryd", False):
            root.removeHandler(old)
    handler._ferryd = True  # type: ignore[attr-defined]
    handler.setLevel(getattr(logging, level.upper(), logging.INFO))
    root.addHandler(handler)
    root.setLevel(handler.level)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ferryd", description="Ferry node daemon.")
    parser.add_argument(
        "--config-dir",
        help=f"service configurations and node.conf (default {DEFAULT_CONFIG_DIR}, "
        "or FERRY_CONFIG_DIR)",
    )
    parser.add_argument(
        "--var-dir", help=f"state directory (default {DEFAULT_VAR_DIR}, or FERRY_VAR_DIR)"
    )
    parser.add_argument(
        "--node-config", metavar="FILE", help="node configuration (default <config dir>/node.conf)"
    )
    parser.add_argument(
        "--listen", metavar="ADDR:PORT", help="TCP listener, overriding node.conf's listen_*"
    )
    parser.add_argument("--no-tcp", action="store_true", help="serve the unix socket only")
    parser.add_argument(
        "--no-cluster",
        action="store_true",
        help="run without the cluster layer (no heartbeat, no monitor)",
    )
    parser.add_argument(
        "--arbitrator",
        action="store_true",
        help="run as a quorum arbitrator: plain HTTP /api/health on --listen (default :7450)",
    )
    return parser


class UsageError(Exception):
    pass


def parse_listen(text: str) -> tuple[str, int]:
    """``127.0.0.1:7443``, ``[::1]:7443`` or ``:7443`` (all addresses)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise UsageError(f"--listen {text!r}: write ADDR:PORT, e.g. 127.0.0.1:7443")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port)


def _config(args: argparse.Namespace) -> tuple[NodeConfig, Path, Path]:
    config_dir = Path(args.config_dir or os.environ.get("FERRY_CONFIG_DIR") or DEFAULT_CONFIG_DIR)
    var_dir = Path(args.var_dir or os.environ.get("FERRY_VAR_DIR") or DEFAULT_VAR_DIR)
    node_path = Path(args.node_config) if args.node_config else config_dir / "node.conf"
    config = load_node_config(node_path)
    if args.listen:
        config = config.with_listen(*parse_listen(args.listen))
    return config, config_dir, var_dir


def run(argv: Sequence[str]) -> int:
    """Parse argv, run the daemon until it is told to stop; returns the exit code."""
    args = _parser().parse_args(list(argv))
    try:
        config, config_dir, var_dir = _config(args)
    except ConfigError as exc:
        for issue in exc.issues:
            print(f"ferryd: {issue.render()}", file=sys.stderr)
        return EXIT_USAGE
    except UsageError as exc:
        print(f"ferryd: usage: {exc}", file=sys.stderr)
        return EXIT_USAGE
    setup_logging(config.node.log_format, config.node.log_level)
    log = logging.getLogger("ferry.daemon")
    for notice in config.notices:
        log.warning("%s", notice.render())
    if args.arbitrator:
        from daemon.api.context import VERSION
        from daemon.cluster.quorum import run_arbitrator

        host, port = parse_listen(args.listen) if args.listen else ("0.0.0.0", 7450)
        asyncio.run(run_arbitrator(config.node.name, host, port, VERSION))
        return EXIT_OK
    daemon = Daemon(config, config_dir, var_dir, tcp=not args.no_tcp, cluster=not args.no_cluster)
    try:
        asyncio.run(daemon.run())
    except DaemonError as exc:
        log.error("cannot start: %s", exc)
        return EXIT_FAILED
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point; never a traceback unless FERRY_DEBUG is set."""
    try:
        code = run(sys.argv[1:] if argv is None else argv)
    except KeyboardInterrupt:
        code = EXIT_OK
    except Exception as exc:
        if os.environ.get("FERRY_DEBUG"):
            traceback.print_exc()
        logging.getLogger("ferry.daemon").critical(
            "ferryd failed: %s: %s (set FERRY_DEBUG=1 for details)", type(exc).__name__, exc
        )
        print(f"ferryd: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        code = EXIT_FAILED
    sys.exit(code)


if __name__ == "__main__":
    main()
