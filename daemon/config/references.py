"""OpenSVC's reference vocabulary beyond SPEC 2.4: case modifiers and the references
Ferry refuses.

The references Ferry evaluates live in :mod:`daemon.service.config`; this module says
what the others mean to an OpenSVC user, so that a file carried over gets an error
naming the reason instead of a value that silently means something else.
docs/opensvc-compat.md has the full table.
"""

from __future__ import annotations

from collections.abc import Callable


def _uri_ip(text: str) -> str:
    return f"[{text}]" if ":" in text else text


# {upper:svcname} and the like: applied to the referenced text, after {#..} and [i].
MODIFIERS: dict[str, Callable[[str], str]] = {
    "upper": str.upper,
    "lower": str.lower,
    "capitalize": str.capitalize,
    "title": str.title,
    "swapcase": str.swapcase,
    "uri_ip": _uri_ip,  # an IPv6 address bracketed for a URI
}

_NO_DNS = "Ferry has no cluster DNS"
_NO_COLLECTOR = "Ferry has no collector"

# OpenSVC references with no Ferry meaning: name -> why.
REFUSED: dict[str, str] = {
    "id": "Ferry services have no id; use {svcname}",
    "clusterid": "Ferry clusters have no id; use {clustername}",
    "scaler_name": "Ferry has no scaler services",
    "scaler_svcname": "Ferry has no scaler services",
    "scaler_short_name": "Ferry has no scaler services",
    "scaler_short_svcname": "Ferry has no scaler services",
    "clusternodes": "services do not see the cluster's node list; use {nodes} {drpnodes}",
    "clusterdrpnodes": "services do not see the cluster's node list; use {drpnodes}",
    "dns": _NO_DNS,
    "dnsnodes": _NO_DNS,
    "dnsuxsock": _NO_DNS,
    "dnsuxsockd": _NO_DNS,
    "dns_janitor_major": _NO_DNS,
    "fqdn": _NO_DNS,
    "domain": _NO_DNS,
    "collector_api": _NO_COLLECTOR,
    "svcmgr": "Ferry's command is ferry; write its path",
    "nodemgr": "Ferry's command is ferry; write its path",
    "etc": "write the configuration directory's path",
    "initd": "Ferry has no init.d scripts directory",
}


def split_modifier(ref: str) -> tuple[Callable[[str], str], str] | None:
    """``'upper:svcname'`` -> (str.upper, ``'svcname'``); None without a known modifier."""
    head, colon, rest = ref.partition(":")
    if colon and head in MODIFIERS and rest:
        return MODIFIERS[head], rest
    return None


def refusal(ref: str) -> str | None:
    """Why Ferry does not evaluate the OpenSVC reference ref, or None."""
    if ref in REFUSED:
        return REFUSED[ref]
    if ref.startswith("safe://"):
        return "Ferry has no secret store: write the value, or keep it in a file"
    if ref.startswith("node."):
        return "services do not read node.conf keywords"
    return None
