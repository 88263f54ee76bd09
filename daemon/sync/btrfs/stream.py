"""The size of a btrfs send, estimated from a ``btrfs send --no-data`` of the same snapshot.

A no-data send walks the same trees as the real one (metadata only: cheap next to the
transfer) and, where the real send would carry file data in ``write`` commands, emits
``update_extent`` commands naming the range. The stream's own size plus the lengths of
those ranges is what the real stream carries, less the few bytes of each write's header
(within a fraction of a percent on the testbed). Holes punched into an existing file,
which an incremental send fills with zeros, are not counted: an estimate, for the ETA.

Stream format (btrfs-progs ``send.h``): a header ``btrfs-stream\\0`` and a le32 version,
then commands, each a le32 payload length, le16 command, le32 crc, then the payload as
attributes (le16 type, le16 length, value).
"""

from __future__ import annotations

import struct

MAGIC = b"btrfs-stream\0"
HEADER = len(MAGIC) + 4
CMD_HEADER = struct.Struct("<IHI")
ATTR_HEADER = struct.Struct("<HH")
CMD_UPDATE_EXTENT = 22
ATTR_SIZE = 4


class SendSize:
    """Fed the chunks of a no-data send stream; ``total`` estimates the real stream's size."""

    def __init__(self) -> None:
        self._pending = bytearray()
        self._header_seen = False
        self.stream = 0  # bytes of the no-data stream
        self.data = 0  # file data the real stream carries instead of the update_extents

    @property
    def total(self) -> int:
        return self.stream + self.data

    def feed(self, chunk: bytes) -> None:
        """Take the next bytes of the stream; ValueError when it is not a send stream."""
        self.stream += len(chunk)
        self._pending += chunk
        if not self._header_seen:
            if len(self._pending) < HEADER:
                return
            if not self._pending.startswith(MAGIC):
                raise ValueError("not a btrfs send stream")
            del self._pending[:HEADER]
            self._header_seen = True
        offset = 0
        while len(self._pending) - offset >= CMD_HEADER.size:
            length, command, _ = CMD_HEADER.unpack_from(self._pending, offset)
            end = offset + CMD_HEADER.size + length
            if end > len(self._pending):
                break
            if command == CMD_UPDATE_EXTENT:
                self.data += _size_attr(bytes(self._pending[offset + CMD_HEADER.size : end]))
            offset = end
        del self._pending[:offset]


def _size_attr(payload: bytes) -> int:
    at = 0
    while at + ATTR_HEADER.size <= len(payload):
        kind, length = ATTR_HEADER.unpack_from(payload, at)
        at += ATTR_HEADER.size
        if kind == ATTR_SIZE and length == 8:
            return int(struct.unpack_from("<Q", payload, at)[0])
        at += length
    return 0
