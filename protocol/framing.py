"""ZeroMQ framing of spec/01-transport.md as one pure function: a ROUTER's frames -> envelope + body.

A ROUTER socket receives `[routing_id, *rest]`:
- `rest == [b"", body, ...]` (a REQ socket, or a DEALER emulating REQ): the reply goes back as
  `[routing_id, b"", reply]`;
- otherwise (a plain DEALER): `[routing_id, reply]`. A lone empty frame is a DEALER body of zero
  bytes (answered InvalidRequest `json` by the engine), not a delimiter.
Whatever the body frames are (none, one, several), judging them is the engine's job (`frames`).

Used by the reference server's transport and by the deliberately faulty servers, so they frame
alike. This module must never do I/O or look inside a body.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Envelope:
    """The routing part of a received message and its body frames."""

    prefix: tuple[bytes, ...]  # the frames a reply starts with: (routing_id,) or (routing_id, b"")
    body_frames: tuple[bytes, ...]

    @property
    def routing_id(self) -> bytes:
        return self.prefix[0]

    def reply_frames(self, reply: bytes) -> list[bytes]:
        """The frames that send `reply` back the way the request came."""
        return [*self.prefix, reply]


def split_envelope(frames: list[bytes]) -> Envelope:
    """Split `[routing_id, *rest]` as a ROUTER received it (raises ValueError on an empty list)."""
    if not frames:
        raise ValueError("a ROUTER message has at least the routing id frame")
    routing_id, rest = frames[0], frames[1:]
    if len(rest) > 1 and rest[0] == b"":
        return Envelope((routing_id, b""), tuple(rest[1:]))
    return Envelope((routing_id,), tuple(rest))
