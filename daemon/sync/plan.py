"""Pure decisions of replication: targets, who may send, and what the stamps say.

Plain functions over plain data (no I/O), tested with tables.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from daemon.config.scoping import Membership
from daemon.resources.status import Status
from daemon.sync.stamps import Stamp

# sync action -> the target pools it covers
ACTION_POOLS: dict[str, tuple[str, ...]] = {
    "all": ("nodes", "drpnodes"),
    "update": ("nodes", "drpnodes"),
    "full": ("nodes", "drpnodes"),
    "nodes": ("nodes",),
    "drp": ("drpnodes",),
}


def targets(
    members: Membership, pools: Sequence[str], local: str, action: str = "all"
) -> list[str]:
    """Target nodes for an action: the resource's pools the action covers, never the local node.

    Pools are read from the sender's site: on the primary site ``nodes`` is its own site
    and ``drpnodes`` the DR site; when the service runs on the DR site (after a DR
    activation) they swap, so that ``target = drpnodes`` sends back to the primary site.
    Order: own site first, then the other (what 'sync all' does).
    """
    on_drp = local in members.drpnodes and local not in members.nodes
    sites = {
        "nodes": members.drpnodes if on_drp else members.nodes,
        "drpnodes": members.nodes if on_drp else members.drpnodes,
    }
    out: list[str] = []
    for pool in ("nodes", "drpnodes"):
        if pool in pools and pool in ACTION_POOLS[action]:
            out += [n for n in sites[pool] if n != local and n not in out]
    return out


def same_site(members: Membership, a: str, b: str) -> bool:
    """Are nodes a and b on one site (both primary nodes, or both DR nodes)?

    Nodes of one site may share a disk: a receive mount there could mount a filesystem
    that the sender has mounted, from another machine (see daemon/sync/receive.py)."""
    return (a in members.nodes and b in members.nodes) or (
        a in members.drpnodes and b in members.drpnodes
    )


def sender_refusal(members: Membership, topology: str, local: str, local_up: bool) -> str:
    """Why this node must not send, or '' when it may.

    Only the node where the service is up sends; for flex, only the flex primary
    (or the DRP flex primary when the service runs on the DRP site).
    """
    if not local_up:
        return f"the service is not up on {local}: only the node running it sends"
    if topology == "flex":
        primaries = {members.flex_primary, members.drp_flex_primary} - {""}
        if local not in primaries:
            return (
                f"{local} is not the flex primary ({members.flex_primary}): "
                "only the flex primary sends"
            )
    return ""


def target_refusal(target_resources: Mapping[str, Mapping[str, object]] | None) -> str:
    """The split-brain guard: never write into a node where the service runs, even partly,
    or whose state is unknown. ``target_resources`` is the target instance's resources
    (rid -> {status, standby, ...}), None when unknown. Standby resources being up is
    normal on a target: that is how it receives."""
    if target_resources is None:
        return "the target's state is unknown: refusing to overwrite its data"
    active = sorted(
        rid
        for rid, res in target_resources.items()
        if not rid.startswith("sync#")
        and not res.get("standby")
        and res.get("status") in (Status.UP, Status.WARN, Status.UNDEF)
    )
    if active:
        return (
            f"the service is up on the target ({', '.join(active)}): refusing to overwrite its data"
        )
    return ""


def late_targets(stamps: Mapping[str, Stamp | None], now: float, max_delay: float) -> list[str]:
    return [t for t, s in stamps.items() if s is None or now - s.started > max_delay]


def sender_status(
    stamps: Mapping[str, Stamp | None], now: float, max_delay: float
) -> tuple[Status, list[str]]:
    """up when every target's last success is younger than max_delay, else down naming them."""
    if not stamps:
        return Status.NA, ["info: no target"]
    late = late_targets(stamps, now, max_delay)
    log = [f"info: {t}: last sync {age_text(now, s)}" for t, s in stamps.items()]
    if late:
        return Status.DOWN, [f"warn: late: {', '.join(late)}", *log]
    return Status.UP, log


def receiver_status(stamp: Stamp | None, now: float, max_delay: float) -> tuple[Status, list[str]]:
    """On a target: warn when its own data is older than max_delay, else up."""
    if stamp is None:
        return Status.WARN, ["warn: no data received yet"]
    if now - stamp.started > max_delay:
        return Status.WARN, [f"warn: data from {stamp.source} is {age_text(now, stamp)}"]
    return Status.UP, [f"info: data from {stamp.source} is {age_text(now, stamp)}"]


def age_text(now: float, stamp: Stamp | None) -> str:
    if stamp is None:
        return "never"
    return f"{seconds_text(now - stamp.started)} old"


def seconds_text(seconds: float) -> str:
    """A duration as Ferry prints ages: 42s, 5m, 3h12m, 2d."""
    age = max(0, int(seconds))
    if age < 120:
        return f"{age}s"
    if age < 7200:
        return f"{age // 60}m"
    if age < 172800:
        return f"{age // 3600}h{(age % 3600) // 60:02d}m"
    return f"{age // 86400}d"
