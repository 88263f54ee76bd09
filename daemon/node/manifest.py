"""Keywords of ``node.conf``: the ``[node]`` and ``[cluster]`` sections.

Declared with the same :class:`~daemon.config.keywords.Keyword` machinery as the
service keywords, so that converters, candidates, aliases and help texts have
one source. Node keywords are not scopable: the file belongs to one node.
"""

from __future__ import annotations

from daemon.config import converters as c
from daemon.config.converters import Converter
from daemon.config.keywords import Keyword, Manifest

DEFAULT_PORT = 7443
LOG_FORMATS = ("json", "kv")
LOG_LEVELS = ("debug", "info", "warning", "error")
SPLIT_ACTIONS = ("stop", "freeze")


def _port(text: str) -> int:
    value = c.INTEGER(text)
    if not 1 <= value <= 65535:
        raise ValueError(f"{value} is not a TCP port (1-65535)")
    return int(value)


def _positive(text: str) -> int:
    value = c.INTEGER(text)
    if value < 1:
        raise ValueError(f"{value} is not a positive integer")
    return int(value)


def _peer_words(text: str) -> list[str]:
    """``n2 n3=10.0.0.3 n4=n4.example:7444``: a name, optionally with its address."""
    peers = []
    for word in text.split():
        name, _, addr = word.partition("=")
        if not name or not name[0].isalnum() or not all(ch.isalnum() or ch in "-_." for ch in name):
            raise ValueError(f"{word!r}: a peer is <node>[=<host>[:<port>]]")
        if "=" in word and not addr:
            raise ValueError(f"{word!r}: empty address after '='")
        peers.append(f"{name.lower()}={addr}" if addr else name.lower())
    return peers


def _positive_size(text: str) -> int:
    value = c.SIZE(text)
    if value < 1:
        raise ValueError(f"{text.strip()!r} is not a positive size")
    return int(value)


PORT = Converter("TCP port", _port)
SIZE_POSITIVE = Converter("size", _positive_size)
POSITIVE = Converter("positive integer", _positive)
PEERS = Converter("peer list (<node>[=<host>[:<port>]] ...)", _peer_words, c.LIST.render)

NODE = Manifest(
    group="node",
    type="",
    help="This node: its name, where the daemon listens, how many actions it runs at once.",
    keywords=(
        Keyword(
            "name",
            "This node's name in the cluster.",
            c.LOWER,
            default_text="FERRY_NODENAME, else the short host name, lower case",
        ),
        Keyword(
            "listen_addr",
            "Address of the TCP listener (peers and remote clients). "
            "Loopback by default: set the cluster address to let peers in.",
            c.STRING,
            default="127.0.0.1",
            example="listen_addr = 0.0.0.0",
        ),
        Keyword("listen_port", "Port of the TCP listener.", PORT, default=DEFAULT_PORT),
        Keyword(
            "tls",
            "Serve TCP with TLS (cluster CA, node certificate). "
            "false is accepted only on a loopback address.",
            c.BOOLEAN,
            default=True,
        ),
        Keyword(
            "max_actions",
            "How many service actions run at once; the others wait in the queue. A node that "
            "dies hands its services to the others at once: each starts its share in waves "
            "of this many.",
            POSITIVE,
            default=16,
        ),
        Keyword(
            "status_interval",
            "How often the monitor evaluates anew the status of an instance that has no "
            "monitored resource (monitor = true: every round, hb_interval). Each evaluation "
            "runs the resources' checks: hundreds of services each second cost a core.",
            c.DURATION,
            default=10,
        ),
        Keyword(
            "action_timeout",
            "Time limit of one service action, queue time excluded.",
            c.DURATION,
            default=3600,
        ),
        Keyword(
            "stop_grace",
            "On SIGTERM, how long running actions may go on before they are cancelled.",
            c.DURATION,
            default=30,
        ),
        Keyword(
            "actions_kept",
            "How many finished action records are kept in the var dir.",
            POSITIVE,
            default=1000,
        ),
        Keyword(
            "header_timeout",
            "A client must send a complete request head (request line and headers) within "
            "this time after connecting or starting a request; else the connection is closed "
            "(408). It is also the TLS handshake's time limit.",
            c.DURATION,
            default=10,
        ),
        Keyword(
            "body_timeout",
            "Grace time for a request body: the body may take this long plus its size "
            "divided by body_min_rate; a slower one is answered 408 and the connection closed.",
            c.DURATION,
            default=10,
        ),
        Keyword(
            "body_min_rate",
            "Lowest average rate, in bytes per second, at which a request body must arrive "
            "once body_timeout has passed.",
            SIZE_POSITIVE,
            default=64 * 1024,
            default_text="64k",
        ),
        Keyword(
            "max_connections",
            "Open TCP connections the API accepts in all; past it a new one is answered 503 "
            "and closed (the unix socket is not counted).",
            POSITIVE,
            default=2048,
        ),
        Keyword(
            "max_client_connections",
            "Open TCP connections the API accepts from one client address; past it a new one "
            "is answered 503 and closed.",
            POSITIVE,
            default=128,
        ),
        Keyword(
            "check_workers",
            "Worker processes that parse and validate configuration texts sent to the API, "
            "off the event loop.",
            POSITIVE,
            default=1,
        ),
        Keyword(
            "check_queue",
            "Configuration checks that may wait for a worker; past it a check is answered 503.",
            POSITIVE,
            default=8,
        ),
        Keyword(
            "check_timeout",
            "Time limit of one configuration check in a worker; past it the worker is "
            "replaced and the request answered 422.",
            c.DURATION,
            default=20,
        ),
        Keyword(
            "log_format",
            "Daemon log lines on stderr: json (one object per line) or kv (key=value).",
            c.LOWER,
            default="json",
            candidates=LOG_FORMATS,
        ),
        Keyword(
            "log_level", "Lowest level logged.", c.LOWER, default="info", candidates=LOG_LEVELS
        ),
    ),
)

CLUSTER = Manifest(
    group="cluster",
    type="",
    help="The cluster this node belongs to: its name, secret, peers and timings.",
    keywords=(
        Keyword(
            "name", "The cluster's name ({clustername} in services).", c.LOWER, default="default"
        ),
        Keyword(
            "secret",
            "Shared secret of the cluster's nodes (heartbeat messages).",
            c.STRING,
            default_text="generated on first start into <var dir>/cluster/secret",
        ),
        Keyword(
            "peers",
            "The other nodes: name, optionally =host[:port] (default: the name, listen_port).",
            PEERS,
            default=[],
            example="peers = n2=10.0.0.2 n3=10.0.1.3:7443",
        ),
        Keyword(
            "hb_interval", "How often this node sends its state to peers.", c.DURATION, default=5
        ),
        Keyword(
            "hb_timeout",
            "A peer silent for this long is dead (more than hb_interval).",
            c.DURATION,
            default=15,
        ),
        Keyword(
            "ready_period",
            "How long a leader stays 'ready' before an automatic start.",
            c.DURATION,
            default=5,
        ),
        Keyword(
            "restart_grace",
            "A daemon that stops on SIGTERM (a restart, an upgrade) tells its peers so in a "
            "last heartbeat: its services go on running, and for this long its silence is "
            "not taken for its death (no failover). A node that dies says nothing: "
            "hb_timeout holds.",
            c.DURATION,
            default=60,
        ),
        Keyword(
            "rejoin_grace",
            "After the daemon starts, how long it waits before any automatic start.",
            c.DURATION,
            default=90,
            aliases=("rejoin_grace_period",),
        ),
        Keyword(
            "quorum",
            "Take no automatic start without a strict majority of the votes "
            "(nodes plus arbitrators) in sight.",
            c.BOOLEAN,
            default=False,
        ),
        Keyword(
            "arbitrators",
            "URLs of arbitrators (``ferryd --arbitrator``), one vote each when they answer "
            "their /api/health route.",
            c.LIST,
            default=[],
            example="arbitrators = http://10.0.9.1:7450",
        ),
        Keyword(
            "split_action",
            "What a node that lost the quorum does with the failover instances it runs: "
            "stop them (the majority side takes them over), or freeze (keep them running, "
            "take no automatic action).",
            c.LOWER,
            default="stop",
            candidates=SPLIT_ACTIONS,
        ),
    ),
)

SECTIONS: dict[str, Manifest] = {"node": NODE, "cluster": CLUSTER}
