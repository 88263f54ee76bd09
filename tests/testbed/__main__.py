"""Command line: ``python -m tests.testbed up|down|status|exec|kill|...``."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from .cluster import Testbed
from .procs import TestbedError
from .state import Partition
from .topology import DISK_SIZE, describe, parse_nodes, parse_sites, parse_size


def _checked(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """``parse`` for argparse: its ValueError's message shown as the option's error."""

    def checked(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as err:
            raise argparse.ArgumentTypeError(str(err)) from None

    checked.__name__ = parse.__name__
    return checked


def _shared_group(text: str) -> tuple[str, ...]:
    """One ``--shared``: a group of nodes, or ``none`` (the empty group)."""
    return () if text == "none" else parse_nodes(text)


def _shared(groups: list[tuple[str, ...]] | None) -> list[tuple[str, ...]] | None:
    """Each ``--shared`` is one group; ``none`` (alone) is no shared disk at all."""
    if groups is None:
        return None
    if () in groups and len(groups) > 1:
        raise ValueError("--shared none excludes other --shared groups")
    return [group for group in groups if group]


def _up(tb: Testbed, args: argparse.Namespace) -> int:
    started = time.monotonic()
    tb.up(
        args.nodes,
        _shared(args.shared),
        sites=args.sites or (),
        pairs=args.pairs,
        light=args.light or (),
        disk_size=args.disk_size,
        reuse=args.reuse,
    )
    if args.ferryd:
        tb.start_ferryd()
    print(f"testbed up in {time.monotonic() - started:.1f}s ({tb.state_dir})")
    return 0


def _down(tb: Testbed, _args: argparse.Namespace) -> int:
    print(f"testbed down in {tb.down():.1f}s")
    return 0


def _status(tb: Testbed, args: argparse.Namespace) -> int:
    status = tb.status()
    if args.json:
        print(json.dumps(status, indent=2))
        return 0 if status["up"] else 1
    if "nodes" not in status:
        print(f"no testbed in {status['state_dir']}")
        return 1
    print(f"testbed in {status['state_dir']}: {'up' if status['up'] else 'INCOMPLETE'}")
    if status["sites"]:
        sites = (f"{k} = {describe(site)}" for k, site in enumerate(status["sites"], 1))
        print(f"  sites: {', '.join(sites)}")
    for name, info in status["nodes"].items():
        flags = [k for k in ("alive", "sshd", "dockerd") if info[k]] or ["DOWN"]
        flags += ["light"] if info["light"] else []
        extra = f" netem: {info['netem']}" if info["netem"] else ""
        site = f" site {info['site']}" if info["site"] else ""
        print(f"  {name} {info['ip']:<11} {' '.join(flags):<20} link {info['link']}{site}{extra}")
        others = [peer for peer in info["disk_group"] if peer != name]
        print(f"     {info['disk']}" + (f" (shared with {describe(others)})" if others else ""))
    for part in status["partitions"]:
        print(f"  partition: {Partition(**part).describe()}")
    return 0 if status["up"] else 1


def _exec(tb: Testbed, args: argparse.Namespace) -> int:
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if not cmd:
        raise TestbedError("exec NODE -- CMD...: no command given")
    argv = tb.command(args.node, *cmd, cwd=args.cwd)
    os.execve(argv[0], argv, tb.node_env())


def _partition(tb: Testbed, args: argparse.Namespace) -> int:
    tb.partition(
        parse_nodes(args.group_a), parse_nodes(args.group_b), oneway=args.oneway, port=args.port
    )
    return 0


def _netem(tb: Testbed, args: argparse.Namespace) -> int:
    tb.netem(args.node, *args.spec)
    return 0


def _on_node(
    method: Callable[[Testbed, str], None],
) -> Callable[[Testbed, argparse.Namespace], int]:
    def action(tb: Testbed, args: argparse.Namespace) -> int:
        method(tb, args.node)
        return 0

    return action


def _on_testbed(method: Callable[[Testbed], None]) -> Callable[[Testbed, argparse.Namespace], int]:
    def action(tb: Testbed, _args: argparse.Namespace) -> int:
        method(tb)
        return 0

    return action


def parser() -> argparse.ArgumentParser:
    """The CLI's argument parser."""
    top = argparse.ArgumentParser(prog="python -m tests.testbed", description=__doc__)
    sub = top.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="bring the testbed up (after cleaning any previous one)")
    up.add_argument(
        "--nodes",
        type=_checked(parse_nodes),
        default=None,
        help="n1,n2,n3 (default; ranges too: n1-n12), or the nodes of --sites",
    )
    up.add_argument(
        "--sites",
        type=_checked(parse_sites),
        default=None,
        help="sites, each a node, a range or several joined by +: n1-n6,n7-n12",
    )
    up.add_argument(
        "--shared",
        action="append",
        type=_checked(_shared_group),
        default=None,
        help="nodes seeing one disk: n1,n2 (default) or none; repeat for more groups",
    )
    up.add_argument(
        "--pairs",
        action="store_true",
        help="instead of --shared: consecutive nodes of each site share a disk two by two",
    )
    up.add_argument(
        "--light", type=_checked(parse_nodes), default=None, help="nodes without dockerd: n7-n12"
    )
    up.add_argument(
        "--disk-size",
        type=_checked(parse_size),
        default=DISK_SIZE,
        help="size of each sparse disk file (default 3G; btrfs needs 128M)",
    )
    up.add_argument("--reuse", action="store_true", help="keep an identical running testbed")
    up.add_argument(
        "--ferryd", action="store_true", help="start ferryd on every node, joined in one cluster"
    )
    up.set_defaults(func=_up)
    sub.add_parser("down", help="remove everything the testbed made").set_defaults(func=_down)
    status = sub.add_parser("status", help="nodes, daemons, links, partitions")
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=_status)
    run = sub.add_parser("exec", help="run a command in a node: exec NODE -- CMD...")
    run.add_argument("--cwd", default="/")
    run.add_argument("node")
    run.add_argument("cmd", nargs=argparse.REMAINDER)
    run.set_defaults(func=_exec)
    for name, method, text in (
        ("kill", Testbed.kill, "kill every process of a node"),
        ("revive", Testbed.revive, "start a killed node (or its dead daemons) again"),
        ("cut", Testbed.cut, "take a node's link down"),
        ("heal", Testbed.heal, "bring a node's link back up"),
    ):
        one = sub.add_parser(name, help=text)
        one.add_argument("node")
        one.set_defaults(func=_on_node(method))
    part = sub.add_parser("partition", help="drop traffic between two nodes (or n1,n2 n3)")
    part.add_argument("group_a")
    part.add_argument("group_b")
    part.add_argument(
        "--oneway", action="store_true", help="only from group_a to group_b (ARP still passes)"
    )
    part.add_argument(
        "--port", type=int, default=None, help="only TCP to/from this port (ferryd: 7443)"
    )
    part.set_defaults(func=_partition)
    heal_all = sub.add_parser("heal-partition", help="remove every partition")
    heal_all.set_defaults(func=_on_testbed(Testbed.heal_partition))
    net = sub.add_parser("netem", help="netem NODE delay 100ms [10ms] loss 5%% rate 10mbit | off")
    net.add_argument("node")
    net.add_argument("spec", nargs="+")
    net.set_defaults(func=_netem)
    reset = sub.add_parser("reset", help="heal links, partitions, netem; revive dead nodes")
    reset.set_defaults(func=_on_testbed(Testbed.reset))
    return top


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; exit status 0 on success, 1 on a testbed error."""
    args = parser().parse_args(argv)
    try:
        return int(args.func(Testbed(), args))
    except (TestbedError, ValueError) as err:
        print(f"testbed: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
