"""Userspace netem: forward frames between two interfaces with delay and loss.

This kernel has no ``sch_netem`` (nor tbf, fq, u32...), so an impaired link is
emulated here. Run inside the switch namespace as a plain script
(``python3 -I -S netem_forward.py IF_A IF_B DELAY JITTER LOSS RATE``, seconds,
fraction and bits/s; 0 disables each): every frame read on one interface is
sent out of the other after the delay, unless dropped, in order, each
direction on its own. The virtio-net header (PACKET_VNET_HDR) carries GSO and
checksum offload through unchanged, so large TCP segments pass as they are.
"""

from __future__ import annotations

import heapq
import random
import select
import signal
import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP = 1
PACKET_MR_PROMISC = 1
PACKET_VNET_HDR = 15
PACKET_OUTGOING = 4
QUEUE_LIMIT = 1000  # frames in flight per direction, as netem's default limit
BATCH = 64


def open_port(ifname: str) -> socket.socket:
    """A raw packet socket on ``ifname``, promiscuous, with vnet headers."""
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sock.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)
    sock.bind((ifname, ETH_P_ALL))
    mreq = struct.pack("iHH8s", socket.if_nametoindex(ifname), PACKET_MR_PROMISC, 0, b"")
    sock.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, mreq)
    sock.setblocking(False)
    return sock


class Direction:
    """Frames read on ``src`` waiting for their time to leave on ``dst``."""

    def __init__(self, src: socket.socket, dst: socket.socket) -> None:
        self.src, self.dst = src, dst
        self.last_due = 0.0  # departures stay in order
        self.link_free = 0.0  # when the emulated wire finishes the previous frame
        self.queued = 0


def due_time(way: Direction, now: float, size: int, params: list[float]) -> float:
    """When a frame of ``size`` bytes arriving ``now`` leaves."""
    delay, jitter, _loss, rate = params
    start = now
    if rate > 0:
        way.link_free = max(way.link_free, now) + size * 8 / rate
        start = way.link_free
    due = start + max(0.0, delay + random.uniform(-jitter, jitter))
    way.last_due = max(way.last_due, due)
    return way.last_due


def forward(if_a: str, if_b: str, params: list[float]) -> None:
    """Forward between the two interfaces until killed."""
    a, b = open_port(if_a), open_port(if_b)
    ways = {a.fileno(): Direction(a, b), b.fileno(): Direction(b, a)}
    pending: list[tuple[float, int, Direction, bytes]] = []
    seq = 0
    print("ready", flush=True)
    while True:
        timeout = max(0.0, pending[0][0] - time.monotonic()) if pending else 1.0
        readable, _, _ = select.select([a, b], [], [], timeout)
        for sock in readable:
            way = ways[sock.fileno()]
            for _ in range(BATCH):
                try:
                    frame, addr = sock.recvfrom(70000)
                except BlockingIOError:
                    break
                if addr[2] == PACKET_OUTGOING or way.queued >= QUEUE_LIMIT:
                    continue
                if random.random() < params[2]:
                    continue
                seq += 1
                due = due_time(way, time.monotonic(), len(frame), params)
                heapq.heappush(pending, (due, seq, way, frame))
                way.queued += 1
        now = time.monotonic()
        while pending and pending[0][0] <= now:
            _, _, way, frame = heapq.heappop(pending)
            way.queued -= 1
            try:
                way.dst.send(frame)
            except OSError:
                pass  # link down (cut) or a transient error: the frame is lost


def main(argv: list[str]) -> int:
    """``IF_A IF_B DELAY JITTER LOSS RATE``."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    if_a, if_b, *numbers = argv
    forward(if_a, if_b, [float(x) for x in numbers])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
