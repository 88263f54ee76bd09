"""Request and response bodies of the REST API: the pydantic models the OpenAPI document is made of.

Requests are strict (no type coercion, no unknown fields) so that wrong input is
refused with the field named, rather than guessed at.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema

from daemon.cluster.messages import ExpectMsg, InstanceMsg, PeerMessage, PongMsg
from daemon.config.ini import MAX_BYTES

NODE_NAME_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,63}$"
RID_PATTERN = r"^[a-z][a-z0-9_]*#[A-Za-z0-9_.:-]+$"
ACTION_ID_PATTERN = r"^[0-9a-f]{32}$"

StatusName = Literal["up", "down", "warn", "n/a", "undef", "stdby up", "stdby down"]
ActionName = Literal[
    "start",
    "stop",
    "startstandby",
    "freeze",
    "thaw",
    "clear",
    "switch",
    "takeover",
    "giveback",
    "sync",
    "drill",
    "drill-stop",
]
ActionStateName = Literal["queued", "running", "succeeded", "failed"]
Rid = Annotated[str, Field(pattern=RID_PATTERN, max_length=128)]
NodeName = Annotated[str, Field(pattern=NODE_NAME_PATTERN, max_length=64)]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class _Response(BaseModel):
    model_config = ConfigDict(extra="ignore")


# ---------------------------------------------------------------------------- errors


class FieldProblem(_Response):
    field: str = Field(description="Dotted path of the offending field.")
    message: str


class Issue(_Response):
    """A located configuration problem."""

    severity: Literal["error", "notice"]
    file: str
    line: int
    section: str
    keyword: str
    node: str
    message: str
    hint: str


class ErrorBody(_Response):
    """Every 4xx and 5xx answer."""

    error: str = Field(description="What went wrong, for a human.")
    field: str | None = Field(default=None, description="The request field at fault, when one is.")
    problems: list[FieldProblem] = Field(default_factory=list)
    issues: list[Issue] = Field(default_factory=list)


# ---------------------------------------------------------------------------- node, cluster


class Health(_Response):
    status: Literal["ok", "stopping"]
    node: str
    version: str


class ActionCounts(_Response):
    running: int
    queued: int
    max_concurrent: int


class NodeStatus(_Response):
    name: str
    cluster: str
    version: str
    pid: int
    started_at: float
    uptime: float
    listen: list[str]
    tls: bool
    actions: ActionCounts
    services: int
    event_subscribers: int
    config_dir: str = Field(description="Where the daemon reads and installs configurations.")


class ClusterNode(_Response):
    name: str
    local: bool
    state: Literal["up", "down", "unknown"]
    address: str | None = None
    frozen: bool = False
    load: float = 0.0
    free_mem: float = 0.0
    score: float = 0.0
    last_seen: float | None = Field(default=None, description="Last heartbeat (unix time).")
    gen: int = Field(default=0, description="Last heartbeat generation received.")


class ClusterStatus(_Response):
    name: str
    node: str
    nodes: list[ClusterNode]
    hb_interval: float
    hb_timeout: float
    quorum: bool = Field(default=True, description="This node sees enough votes to act.")
    votes: list[int] = Field(default_factory=list, description="[seen, total]")
    rejoined: bool = Field(default=True, description="The rejoin grace period is over.")
    services: dict[str, ClusterServiceView] = Field(default_factory=dict)


# ---------------------------------------------------------------------------- services


class ResourceStatus(_Response):
    status: StatusName
    label: str
    standby: bool
    optional: bool
    disabled: bool
    monitor: bool
    log: list[str]


class InstanceStatus(_Response):
    """What the instance reports: avail, overall, and each resource."""

    service: str
    node: str
    avail: StatusName
    overall: StatusName
    resources: dict[str, ResourceStatus]
    updated_at: float
    frozen: bool | None = Field(default=None, description="This instance is frozen.")
    monitor: str | None = Field(default=None, description="The monitor state (cluster layer).")
    last_activation: dict[str, Any] | None = Field(
        default=None,
        description="The last start from replicated data: time, data_age, rpo_seconds.",
    )
    last_drill: dict[str, Any] | None = Field(
        default=None,
        description="The last drill's report on this node (result pass or fail, rto_seconds, "
        "data_age, step, error).",
    )


class ServiceSummary(_Response):
    name: str
    node: str
    avail: StatusName | None = None
    overall: StatusName | None = None
    updated_at: float | None = None
    error: str | None = Field(
        default=None, description="Why there is no status (config errors...)."
    )


class ServiceList(_Response):
    services: list[ServiceSummary]


class ConfigText(_Request):
    """A whole service configuration file."""

    text: str = Field(
        min_length=1,
        max_length=MAX_BYTES,
        pattern=r"\S",
        description="An INI service configuration. An empty or blank text is no configuration "
        "(422); a text with configuration errors is reported (validate) or refused (422); more "
        "than 1000 sections or 20000 lines is refused (413).",
    )


class ConfigView(_Response):
    service: str
    path: str
    text: str
    node: str = Field(description="The node the configuration is evaluated for.")
    valid: bool
    evaluated: dict[str, dict[str, Any]] | None = Field(
        default=None,
        description="Keywords set for the node, converted; null when there are errors.",
    )
    issues: list[Issue]


class ValidationReport(_Response):
    service: str
    valid: bool
    issues: list[Issue]
    distributed: dict[str, str] | None = Field(
        default=None,
        description="Config distribution: per peer node, 'installed' or why not.",
    )


# ---------------------------------------------------------------------------- actions


class ActionRequest(_Request):
    """An action on the service's instance on this node."""

    action: ActionName
    rids: list[Rid] | None = Field(
        default=None, max_length=256, description="Only these resources."
    )
    force: bool = Field(default=False, description="stop: also the standby resources.")
    to: NodeName | None = Field(default=None, description="switch: the destination node.")
    target: list[Literal["nodes", "drpnodes"]] | None = Field(default=None, max_length=2)
    mode: Literal["all", "nodes", "drp", "update", "full"] | None = Field(
        default=None, description="sync: which targets, or a full transfer."
    )
    check: str | None = Field(
        default=None,
        max_length=4096,
        description="drill: the check command run in the bubble (default: drill_check).",
    )
    node: NodeName | None = Field(
        default=None,
        description="drill, drill-stop: the node that rehearses (default: this node); "
        "another node is reached through its ferryd.",
    )
    keep: bool | None = Field(
        default=None,
        description="drill: leave the bubble up after the check (drill-stop ends it).",
    )
    at: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="takeover, drill: start from this restore point (its name, or an ISO 8601 "
        "time: the newest point not newer than it).",
    )
    confirm: str | None = Field(
        default=None,
        max_length=255,
        description="When given, must be the service's name, or the action is refused (422): "
        "the console's typed confirmation, checked here.",
    )


class ActionAccepted(_Response):
    action_id: str
    state: ActionStateName
    href: str


class LogLineOut(_Response):
    time: float
    level: str
    message: str


class ActionOut(_Response):
    id: str
    service: str
    action: str
    params: dict[str, Any]
    requested_by: str
    state: ActionStateName
    created_at: float
    started_at: float | None
    ended_at: float | None
    result: dict[str, Any] | None = Field(
        description="What the action did: a sync's reports (per resource and target: ok, "
        "mode, bytes, wire_bytes, seconds, reason), failed or not; null when it did nothing."
    )
    error: str | None
    log: list[LogLineOut]


class ActionSummary(_Response):
    id: str
    service: str
    action: str
    state: ActionStateName
    created_at: float
    ended_at: float | None
    error: str | None


class ActionList(_Response):
    actions: list[ActionSummary]


class ActionLog(_Response):
    action_id: str
    state: ActionStateName
    lines: list[LogLineOut]


# ---------------------------------------------------------------------------- events


def _absent_when_none(schema: dict[str, Any]) -> None:
    schema.pop("default", None)  # not null: the frame has no such line


class EventData(_Response):
    """The JSON of an event frame's `data:` line (daemon/events.py Event.as_dict)."""

    seq: int = Field(ge=1, description="The event's number, also the frame's `id:`.")
    kind: str = Field(description="What changed, also the frame's `event:`.")
    time: float = Field(description="When (unix time).")
    data: dict[str, Any] = Field(description="The change; its fields depend on kind.")


class SseEvent(_Response):
    """One event of `GET /api/events`: a text/event-stream frame of lines `id: N`,
    `event: KIND`, `data: JSON` and a blank line. Lines starting with `:` are comments (the
    greeting, keepalives). Resume with `after` or the `Last-Event-ID` header. When the stream
    ends (daemon stopping, client too slow), a last frame `event: end` has no id and a text."""

    id: Annotated[int, Field(ge=1)] | SkipJsonSchema[None] = Field(
        default=None,
        description="The event's seq; absent (not null) on the `end` frame.",
        json_schema_extra=_absent_when_none,
    )
    event: str = Field(
        description="The event's kind, or `end`.",
        examples=["action", "instance", "config", "node", "drill", "expect", "end"],
    )
    data: EventData | str = Field(
        description="The event; on the `end` frame, a text saying why the stream ends."
    )


# ---------------------------------------------------------------------------- cluster (peers)


class HeartbeatAck(_Response):
    node: str
    gen: int = Field(description="The generation received.")
    state: PongMsg | None = Field(
        default=None,
        description="The receiver's own state (alive, its node facts): its sender hears it "
        "through this answer, and the receiver sends no beat back while nothing changes.",
    )


class ClusterServiceView(_Response):
    avail: StatusName = Field(
        default="undef",
        description="The service across the cluster (SPEC 3.2): failover up with exactly one "
        "instance up, warn when dual-active; flex warn outside [flex_min, flex_max]; down "
        "when none is up; undef when the service is not installed on this node.",
    )
    reason: str = ""
    expect: ExpectMsg | None = None
    instances: dict[str, InstanceMsg] = Field(
        default_factory=dict, description="Per alive node that has an instance."
    )


class PeerConfig(PeerMessage):
    """A service configuration pushed by a peer (config distribution)."""

    text: str = Field(min_length=1, max_length=MAX_BYTES, pattern=r"\S")  # blank: no config
    origin: str


class SyncStampMsg(PeerMessage):
    """A successful transfer's stamp, as the sender recorded it (daemon/sync/stamps.py)."""

    started: float = Field(description="When the transfer started (unix time): the data age.")
    ended: float
    bytes: int = Field(ge=0)
    seconds: float = Field(ge=0)
    mode: str
    source: NodeName
    target: NodeName


class SyncPeerCall(PeerMessage):
    """A sender's call to a sync target: its guard and what it holds (rsync prepare, docker
    have, btrfs list), the release of a receive mount, or a successful transfer's stamp."""

    rid: Rid
    verb: Literal[
        "prepare", "release", "stamp", "status", "have", "list",
        "receive-open", "receive-done", "receive-abort",
    ] = Field(
        description="rsync: prepare, release; docker: have, release; btrfs: list, "
        "receive-open, receive-done, receive-abort; any: status (the guard), stamp."
    )  # fmt: skip
    sender: NodeName
    stamp: SyncStampMsg | None = Field(default=None, description="stamp: what to record.")


class SyncPeerAnswer(_Response):
    """The target's answer, as its ``ferry SVC sync *-peer`` command prints it (for prepare
    and have: its instance status, the guard, and what it holds); empty for release and
    stamp."""

    answer: dict[str, Any] = Field(default_factory=dict)


class DrFacts(_Response):
    """What a DR activation on node ``to`` would do, and how old its data is."""

    service: str
    to: str
    running_on: list[str]
    running_node_alive: bool
    data_age: dict[str, dict[str, float | None]]
    will_start: list[str]
    rpo_seconds: float | None


class FreezeState(_Response):
    node: str
    frozen: bool


ClusterStatus.model_rebuild()
