"""What nodes tell each other: the heartbeat and what it carries (pydantic models at the
edge: lenient, a newer peer may add fields)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class PeerMessage(BaseModel):
    """Peer messages: lenient (newer peers may add fields), never coerced into nonsense."""

    model_config = ConfigDict(extra="ignore")


class ExpectMsg(PeerMessage):
    """A global expect: the newest (stamp, then outcome set) wins cluster-wide."""

    value: str = Field(description="'' (none), started, stopped, placed, placed@<node>.")
    stamp: float = Field(description="When it was set (unix time): the newest wins.")
    origin: str = Field(description="The node where the operator asked.")
    outcome: Literal["", "reached", "failed"] = ""
    reason: str = ""
    action_id: str = ""


class InstanceMsg(PeerMessage):
    """A node's instance of a service, as that node reports it."""

    avail: str = "undef"
    overall: str = "undef"
    monitor: str = Field(default="idle", description="idle, ready, starting, stopping, ...")
    ready_since: float | None = None
    frozen: bool = False
    standby_down: bool = False
    checksum: str = Field(default="", description="sha256 of the configuration text.")
    boot_started: bool = False
    orchestrate: str = "no"
    last_activation: dict[str, Any] | None = None


class HeartbeatMsg(PeerMessage):
    """What a node sends its peers every hb_interval: its full state, or a patch."""

    node: str
    cluster: str
    boot: str = Field(description="Changes when the daemon restarts.")
    gen: int = Field(description="Increases by one with every message of one boot.")
    kind: Literal["full", "patch"] = Field(
        default="full",
        description="full: the whole state; patch: what changed since generation gen - 1 "
        "(instances and expects that changed, services removed; the node facts always).",
    )
    sent_at: float
    frozen: bool = False
    load: float = 0.0
    free_mem: float = 0.0
    score: float = 0.0
    instances: dict[str, InstanceMsg] = Field(default_factory=dict)
    base: int = Field(
        default=0,
        description="patch: the generation it applies on (0: gen - 1). A peer that was sent "
        "no beat for a while gets a patch from the last one it got.",
    )
    pongs: bool = Field(
        default=False,
        description="The sender reads the receiver's state in the answer (PongMsg): a node "
        "answered by it sends it no beat of its own while nothing changes.",
    )
    leaving: float = Field(
        default=0.0,
        description="Sent by a daemon that stops on SIGTERM: its services go on running, and "
        "for this many seconds its silence is not its death (restart_grace).",
    )
    digest: str = Field(
        default="",
        description="The sender's instances after this message, digested (see "
        "cluster/state.py: instances_digest): a receiver whose copy differs asks for a full "
        "message.",
    )
    removed: list[str] = Field(
        default_factory=list, description="patch: the services whose instance is gone."
    )
    expects: dict[str, ExpectMsg] = Field(default_factory=dict)
    sees: list[str] = Field(
        default_factory=list, description="The nodes the sender hears now (itself included)."
    )
    full_wanted: list[str] = Field(
        default_factory=list,
        description="The peers the sender needs a full message from (it missed a generation).",
    )


class PongMsg(PeerMessage):
    """What a node answers a heartbeat with: that it is alive, and its node facts. The
    sender hears it through this answer, so that between two nodes one beat a period
    goes, not two; its instances and expects still come in its own beats, on change."""

    node: str
    boot: str
    frozen: bool = False
    load: float = 0.0
    free_mem: float = 0.0
    score: float = 0.0
    sees: list[str] = Field(default_factory=list)
    full_wanted: list[str] = Field(default_factory=list)
