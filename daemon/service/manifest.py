"""Keywords of the [DEFAULT] section: the service as a whole."""

from __future__ import annotations

from daemon.config import converters as c
from daemon.config.keywords import Keyword, Manifest

TOPOLOGIES = ("failover", "flex")
ORCHESTRATE = ("no", "start", "ha")
PLACEMENTS = ("nodes order", "load avg", "spread", "score", "shift", "none")
MONITOR_ACTIONS = ("none", "freezestop", "switch", "reboot", "crash")

# Keywords whose presence makes a service without 'topology' a flex service.
FLEX_KEYWORDS = ("flex_primary", "drp_flex_primary", "flex_min", "flex_max", "flex_target")

# OpenSVC keywords of [DEFAULT] that OpenSVC loads with a warning and then ignores: Ferry
# loads them with a notice saying what replaced them, and ignores them too.
IGNORED_KEYWORDS = {
    "svcname": "the service is named after its file",
    "mode": "OpenSVC v2 dropped it (its only value was 'hosted')",
    "autostart_node": "write 'orchestrate = start': the service starts on the first of nodes",
}

MANIFEST = Manifest(
    group="DEFAULT",
    type="",
    help="The service as a whole: where it runs, how it is orchestrated, defaults for resources.",
    keywords=(
        Keyword(
            "nodes",
            "Primary-site nodes, in order of placement preference.",
            c.NODE_LIST,
            default_text="the local node",
            example="nodes = n1 n2",
        ),
        Keyword(
            "drpnodes",
            "Disaster-recovery nodes: receive replicated data, never started automatically.",
            c.NODE_LIST,
            default=[],
            example="drpnodes = n3",
        ),
        Keyword(
            "encapnodes",
            "Nodes running inside the service's containers (scope @encapnodes).",
            c.NODE_LIST,
            default=[],
        ),
        Keyword(
            "topology",
            "failover: one instance up at a time; flex: several instances up at once.",
            c.LOWER,
            candidates=TOPOLOGIES,
            aliases=("cluster_type",),
            default_text="failover (flex when a flex_* keyword is set)",
        ),
        Keyword(
            "orchestrate",
            "no: the daemon starts nothing; start: started once at cluster start; "
            "ha: automatic failover.",
            c.LOWER,
            default="no",
            candidates=ORCHESTRATE,
        ),
        Keyword(
            "placement",
            "How candidate nodes are ranked.",
            c.LOWER,
            default="nodes order",
            candidates=PLACEMENTS,
        ),
        Keyword(
            "flex_primary",
            "The flex node that sends the replication.",
            c.LOWER,
            default_text="the first of nodes",
        ),
        Keyword(
            "drp_flex_primary",
            "The DRP node that sends the replication when the service runs on the DRP site.",
            c.LOWER,
            default_text="the first of drpnodes",
        ),
        Keyword(
            "flex_min",
            "Fewest flex instances up before the service is in warn.",
            c.INTEGER,
            default=1,
            aliases=("flex_min_nodes",),
        ),
        Keyword(
            "flex_max",
            "Most flex instances up before the service is in warn (raised to flex_min if lower).",
            c.INTEGER,
            aliases=("flex_max_nodes",),
            default_text="the number of nodes",
        ),
        Keyword(
            "flex_target",
            "How many flex instances the orchestrator keeps up.",
            c.INTEGER,
            default_text="flex_min",
        ),
        Keyword(
            "docker_data_dir",
            "Data root of the service's private Docker engine (on a service filesystem).",
            scopable=True,
            also=("container_data_dir",),
            example="docker_data_dir = /srv/svc1/docker",
        ),
        Keyword(
            "sync_max_delay",
            "Default maximum age of replicated data (bare number: minutes).",
            c.DURATION_MINUTES,
            default=97200,
            scopable=True,
        ),
        Keyword(
            "sync_schedule",
            "Default schedule of the sync resources.",
            default="~04:00-06:00",
            scopable=True,
        ),
        Keyword(
            "drill_schedule",
            "Schedule of the drills, run on the first drpnode (same grammar as sync_schedule).",
            default="",
            default_text="none",
            scopable=True,
        ),
        Keyword(
            "drill_check",
            "Command a drill runs inside its bubble once every resource is up; exit 0 passes "
            "(it sees the cloned data and reaches the service's addresses).",
            scopable=True,
            example="drill_check = wget -qO- http://10.0.3.3/",
        ),
        Keyword(
            "drill_timeout",
            "Longest a drill may take, from its start to its check's end.",
            c.DURATION,
            default=300,
            scopable=True,
        ),
        Keyword(
            "status_schedule",
            "Schedule of the status refresh.",
            default="@10",
            scopable=True,
        ),
        Keyword(
            "priority",
            "Lower starts first when several services compete.",
            c.INTEGER,
            default=100,
        ),
        Keyword(
            "disable",
            "A disabled service is never acted upon.",
            c.BOOLEAN,
            default=False,
            scopable=True,
        ),
        Keyword(
            "monitor_action",
            "What to do when a monitored resource goes down and cannot be restarted.",
            c.LOWER,
            default="none",
            candidates=MONITOR_ACTIONS,
            scopable=True,
        ),
        Keyword(
            "rollback",
            "Stop what a failed start started.",
            c.BOOLEAN,
            default=True,
            scopable=True,
        ),
        Keyword("comment", "Free text for the humans reading this file."),
    ),
)
