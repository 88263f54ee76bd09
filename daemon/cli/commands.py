"""Every command of ``ferry``: its words, its options, what it does, an example, the handler
it runs. ``ferry [global options] SVC <words> [options]`` acts on services (a name, a glob,
a comma list): SERVICE_COMMANDS; ``ferry <command> [<words>] [options]`` on the node:
NODE_COMMANDS. A command without a handler is a group (``print``, ``sync``): one of its
sub-commands is required. Options are declared once, in :mod:`daemon.cli.grammar`.
"""

from __future__ import annotations

from daemon.cli.grammar import Arg, Command, Handler

_DAEMON_OPTIONS = ("wait", "time", "server")
_SYNC_OPTIONS = ("local", "rid", "target", *_DAEMON_OPTIONS)
_POINT = Arg(
    "point", "POINT", "a restore point's name (from print restorepoints)", complete="point"
)


def _cmd(module: str, name: str, verb: str | None = None) -> Handler:
    return Handler(module, name, verb)


SERVICE_COMMANDS: tuple[Command, ...] = (
    Command(("validate",), "check a configuration"),
    Command(
        ("validate", "config"),
        "every problem, for every node of the service",
        _cmd("config_cmds", "validate_config"),
        description="Every problem of the configuration, for every node of the service, one "
        "line each: file:line [section] keyword: what is wrong (hint). Exit 2 when one is an "
        "error.",
        examples=("ferry svc1 validate config", "ferry 'svc*' validate config -o json"),
    ),
    Command(("print",), "show a configuration, a status, the schedule, drills, restore points"),
    Command(
        ("print", "config"),
        "the file, or what node N uses",
        _cmd("config_cmds", "print_config"),
        ("eval", "impersonate"),
        description="The configuration file as written; with --eval, what this node (or "
        "--impersonate N) uses: references resolved, scoped values chosen.",
        examples=("ferry svc1 print config --eval --impersonate n2",),
    ),
    Command(
        ("print", "status"),
        "this node's instance: avail, overall, resources, sync ages",
        _cmd("daemon_cmds", "print_status"),
        ("server",),
        description="This node's instance of the service: avail, overall, each resource, the "
        "age of the replicated data. With --server, that node's instance as its daemon sees "
        "it (no local configuration needed).",
        examples=("ferry svc1 print status -o json",),
    ),
    Command(
        ("print", "schedule"),
        "the scheduled jobs: schedule, last run, next run",
        _cmd("instance_cmds", "print_schedule"),
        examples=("ferry svc1 print schedule",),
    ),
    Command(
        ("print", "drills"),
        "the recent drills on this node: result, RTO, failing step",
        _cmd("drill_cmds", "print_drills"),
        ("server",),
        examples=("ferry svc1 print drills -o json",),
    ),
    Command(
        ("print", "restorepoints"),
        "the restore points kept on this node (or N): name, age, complete, size",
        _cmd("restore_cmds", "print_restorepoints"),
        ("node", "server"),
        description="The restore points kept on this node (or --node N): name, age, complete, "
        "size, resources; the pending point and the last restore.",
        option_help={"node": "the node whose points to list"},
        examples=("ferry svc1 print restorepoints --node n3",),
    ),
    Command(
        ("get",),
        "print one keyword's value, alone on stdout",
        _cmd("config_cmds", "get_keyword"),
        ("kw", "eval", "impersonate"),
        option_help={"kw": "the keyword to print (once)"},
        examples=("ferry svc1 get --kw DEFAULT.nodes", "ferry svc1 get --kw fs#0.dev --eval"),
    ),
    Command(
        ("set",),
        "set keywords: validated, written atomically, comments kept",
        _cmd("config_cmds", "set_keyword"),
        ("kw", "local"),
        description="Set keywords. The result is validated before it is written (atomically, "
        "comments kept); through the daemon it reaches the service's nodes, with --local only "
        "this node's file.",
        option_help={"kw": "SECTION.KW=VALUE to set (repeat for several)"},
        examples=("ferry svc1 set --kw DEFAULT.orchestrate=ha --kw app#web.check='test -e /x'",),
    ),
    Command(
        ("unset",),
        "remove keywords",
        _cmd("config_cmds", "unset_keyword"),
        ("kw", "local"),
        option_help={"kw": "SECTION.KW to remove (repeat for several)"},
        examples=("ferry svc1 unset --kw sync#1.sync_max_delay",),
    ),
    Command(
        ("create",),
        "install a new service from a file (through the daemon: reaches its nodes)",
        _cmd("config_cmds", "create"),
        ("config", "local"),
        examples=("ferry svc2 create --config /tmp/svc2.conf",),
    ),
    Command(
        ("start",),
        "start the resources in order; roll back on failure",
        _cmd("instance_cmds", "start"),
        ("local", "rid", "lock_wait", *_DAEMON_OPTIONS, "at"),
        description="Start the resources in order, rolling back on failure. With --local --at "
        "POINT, from a restore point (the DR activation by hand, without a daemon).",
        option_help={"at": "with --local: start from this restore point (name or ISO 8601 time)"},
        examples=("ferry svc1 start --wait", "ferry svc1 start --local --rid fs#0,fs#1"),
    ),
    Command(
        ("stop",),
        "stop the resources in reverse order; standby ones stay up unless --force",
        _cmd("instance_cmds", "stop"),
        ("local", "rid", "force", "lock_wait", *_DAEMON_OPTIONS),
        option_help={"force": "also stop the standby resources"},
        examples=("ferry svc1 stop --local --force",),
    ),
    Command(
        ("startstandby",),
        "start only the standby resources",
        _cmd("instance_cmds", "startstandby"),
        ("local", "rid", "lock_wait", *_DAEMON_OPTIONS),
        examples=("ferry svc1 startstandby --local",),
    ),
    Command(
        ("switch",),
        "move the service to --to NODE (DR activation when NODE is a drpnode)",
        _cmd("daemon_cmds", "activation", "switch"),
        ("to", "yes", *_DAEMON_OPTIONS),
        description="Move the service to --to NODE (a DR activation when NODE is a drpnode). "
        "First shows where it runs now, whether that node is alive, the age of the data on "
        "NODE for every sync resource and what will start, then asks for confirmation; "
        "followed to its end.",
        examples=("ferry svc1 switch --to n3 --yes",),
    ),
    Command(
        ("takeover",),
        "activate the service on this node (the DR command)",
        _cmd("daemon_cmds", "activation", "takeover"),
        ("yes", *_DAEMON_OPTIONS, "at"),
        description="Activate the service on this node, the DR command: the same pre-flight "
        "summary and confirmation as switch. With --at POINT, from a restore point (the "
        "pre-flight shows its age and the newer data left aside).",
        examples=("ferry svc1 takeover --yes", "ferry svc1 takeover --at 2024-05-01T10:00"),
    ),
    *(
        Command(
            (verb,),
            text,
            _cmd("daemon_cmds", "through_daemon", verb),
            _DAEMON_OPTIONS,
            examples=(f"ferry svc1 {verb} --wait",),
        )
        for verb, text in (
            ("giveback", "move the service back to its leader"),
            ("freeze", "stop automatic actions on this instance (persistent)"),
            ("thaw", "allow automatic actions again"),
            ("clear", "forget a failed state so the daemon tries again"),
        )
    ),
    Command(
        ("drill",),
        "rehearse a takeover in an isolated bubble (production goes on); prints the report",
        _cmd("drill_cmds", "drill"),
        ("node", "check", "keep", "yes", *_DAEMON_OPTIONS, "local", "at"),
        description="Rehearse a takeover in an isolated bubble on NODE (default: this node if "
        "a drpnode, else the first drpnode): pre-flight, then the report (PASS/FAIL, failing "
        "step, RTO, data age, the check's output). Exit 0 pass, 1 fail, 2 refused.",
        option_help={"node": "the node that rehearses", "at": "rehearse from this restore point"},
        examples=("ferry svc1 drill --yes", "ferry svc1 drill --node n3 --keep --yes"),
    ),
    Command(
        ("drill", "stop"),
        "end a drill kept with --keep",
        _cmd("drill_cmds", "drill_stop"),
        ("node", "local", "time", "server"),
        option_help={"node": "the node of the drill"},
        examples=("ferry svc1 drill stop --node n3",),
    ),
    Command(
        ("drill", "bubble-up"),
        "start the resources inside a drill's bubble",
        _cmd("drill_cmds", "bubble_up"),
        internal=True,
    ),
    Command(
        ("drill", "bubble-down"),
        "stop the resources inside a drill's bubble",
        _cmd("drill_cmds", "bubble_down"),
        internal=True,
    ),
    Command(("restorepoint",), "manage restore points"),
    Command(
        ("restorepoint", "delete"),
        "delete one restore point (refused for the newest)",
        _cmd("restore_cmds", "delete_restorepoint"),
        ("node", "server"),
        args=(_POINT,),
        option_help={"node": "delete it there"},
        examples=("ferry svc1 restorepoint delete 2024-05-01T10:00:00Z --node n3",),
    ),
    Command(
        ("docker",),
        "the docker CLI against the service's engine (its arguments after '--')",
        _cmd("instance_cmds", "docker_passthrough"),
        args=(Arg("docker_args", "ARG", "docker's own arguments (after '--')", nargs="*"),),
        passthrough=True,
        examples=("ferry svc1 docker -- ps -a",),
    ),
    Command(
        ("sync",),
        "replicate the data to the targets a verb covers",
        options=_SYNC_OPTIONS,
        description="Replicate the data of the sync resources to the targets the verb covers. "
        "Progress on a terminal; -o json per resource and target: bytes, seconds, mode, "
        "reason.",
        examples=("ferry svc1 sync all --wait", "ferry svc1 sync full --local --rid sync#1"),
    ),
    *(
        Command(
            ("sync", verb),
            f"to {targets}",
            _cmd("sync_cmds", "sync"),
            _SYNC_OPTIONS,
            examples=(f"ferry svc1 sync {verb} --wait",),
        )
        for verb, targets in (  # daemon.sync.plan.ACTION_POOLS's (a test keeps them equal)
            ("all", "every target (the other nodes and the drpnodes)"),
            ("update", "every target (the same as all)"),
            ("full", "every target, a full transfer (not incremental)"),
            ("nodes", "the other nodes of the primary site"),
            ("drp", "the drpnodes"),
        )
    ),
    *(
        Command(
            ("sync", f"{kind}-peer"),
            f"the target side of a {kind} sync (over ssh)",
            _cmd("sync_cmds", f"{kind}_peer"),
            ("rid",),
            internal=True,
            passthrough=kind != "stamp",
        )
        for kind in ("docker", "rsync", "btrfs", "stamp")
    ),
)


NODE_COMMANDS: tuple[Command, ...] = (
    Command(
        ("doc",),
        "help from the keyword declarations; the references",
        _cmd("config_cmds", "doc"),
        ("markdown", "cli", "api", "openapi"),
        args=(Arg("keyword", "KEYWORD", "a section, driver or keyword: fs.mnt, sync.btrfs", "*"),),
        description="Help generated from the keyword declarations (fs.mnt, sync.btrfs, "
        "nodes); --markdown the configuration reference, --cli the CLI reference, --api the "
        "API reference, --openapi the OpenAPI document.",
        examples=("ferry doc sync.btrfs", "ferry doc --markdown"),
    ),
    Command(("daemon",), "run ferryd in the foreground, ask it how it is, stop it"),
    Command(
        ("daemon", "run"),
        "run ferryd in the foreground",
        _cmd("daemon_cmds", "daemon_command"),
        examples=("ferry daemon run",),
    ),
    Command(
        ("daemon", "status"),
        "ask ferryd how it is",
        _cmd("daemon_cmds", "daemon_command"),
        ("server",),
        examples=("ferry daemon status -o json",),
    ),
    Command(
        ("daemon", "stop"),
        "stop ferryd (SIGTERM, by its pid)",
        _cmd("daemon_cmds", "daemon_command"),
        examples=("ferry daemon stop",),
    ),
    Command(("token",), "bearer tokens for the TCP API"),
    Command(
        ("token", "create"),
        "print a new bearer token for the TCP API",
        _cmd("daemon_cmds", "token_command"),
        ("role", "name"),
        option_help={"name": "the token's name (default ROLE-TIME)"},
        examples=("ferry token create --role operator --name ops",),
    ),
    Command(
        ("token", "list"),
        "the tokens: name, role, creation time",
        _cmd("daemon_cmds", "token_command"),
        examples=("ferry token list",),
    ),
    Command(
        ("token", "revoke"),
        "revoke a token",
        _cmd("daemon_cmds", "token_command"),
        ("name",),
        option_help={"name": "the token's name"},
        examples=("ferry token revoke --name ops",),
    ),
    Command(
        ("mon",),
        "the cluster as the daemon sees it, redrawn on every event",
        _cmd("daemon_cmds", "mon_command"),
        ("server",),
        args=(Arg("once", "once", "draw once and leave", "?", choices=("once",)),),
        description="The cluster as the daemon sees it, redrawn on every event: nodes, and per "
        "service its status across the cluster (failover: warn when dual-active; flex: warn "
        "outside [flex_min, flex_max]) and each node's instance.",
        examples=("ferry mon", "ferry mon once"),
    ),
    Command(("cluster",), "the cluster CA and node certificates, by hand"),
    Command(
        ("cluster", "init"),
        "on the first node: make the cluster CA and this node's certificate",
        _cmd("cluster_cmds", "cluster_command"),
        ("name", "force", "address"),
        option_help={"name": "the cluster's name", "force": "replace an existing CA"},
        examples=("ferry cluster init --name prod",),
    ),
    Command(
        ("cluster", "issue"),
        "on the node holding the CA: a join bundle for NODE (its certificate and key, ca.crt)",
        _cmd("cluster_cmds", "cluster_command"),
        ("out", "address", "force"),
        args=(Arg("node_name", "NODE", "the node that will join"),),
        option_help={"force": "overwrite an existing bundle"},
        examples=("ferry cluster issue n2 --out /tmp/n2",),
    ),
    Command(
        ("cluster", "join"),
        "on NODE: check the bundle and install it; ferryd uses it at its next start",
        _cmd("cluster_cmds", "cluster_command"),
        ("force",),
        args=(Arg("bundle", "BUNDLE", "the bundle made by cluster issue (a directory or .pem)"),),
        description="On NODE: check the bundle (signed by its CA, for this node, key matches) "
        "and install it; ferryd uses it at its next start.",
        option_help={"force": "replace installed files"},
        examples=("ferry cluster join /tmp/n2",),
    ),
    Command(
        ("completion",),
        "print the shell completion script (bash or zsh) to source",
        _cmd("completion", "print_script"),
        args=(Arg("shell", "SHELL", "the shell", choices=("bash", "zsh")),),
        examples=('eval "$(ferry completion bash)"',),
    ),
)
