"""A ZeroMQ client for the STUI protocol: DEALER or REQ, per-request timeouts, raw frames, transcripts.

Used by the conformance suite, the tests, and later by the proxy and client-check tools. It speaks
bytes and JSON, knows the framing rules of spec/01-transport.md, and records every exchange in a
transcript with secrets redacted. It never validates (callers do) and never retries on its own: a
conformance suite must see exactly what the target did.
"""

from __future__ import annotations

import itertools
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

import zmq

from stui_protocol_kit.protocol.codec import FrameError, decode_body, encode
from stui_protocol_kit.protocol.curve import ClientCurve
from stui_protocol_kit.protocol.facts import PROTOCOL_VERSION
from stui_protocol_kit.protocol.redaction import redact

SocketKind = Literal["dealer", "req"]


class ReplyTimeout(TimeoutError):
    """No reply within the timeout."""


@dataclass
class Exchange:
    """One request and what came back. `reply` is the decoded JSON value (any JSON, not only an
    object) or None when the reply was not JSON; `reply_bytes` is the raw body."""

    request: Any
    request_bytes: list[bytes]
    reply: Any = None
    reply_bytes: bytes | None = None
    reply_has_float: bool = False
    elapsed_s: float = 0.0
    decode_error: str | None = None
    # Local monotonic times: the request left, the reply arrived. Their difference bounds from above how
    # long the server took, and any interval it measured between two requests lies within such bounds.
    sent_at: float = 0.0
    received_at: float = 0.0
    # What the caller learned about this exchange beyond the bytes (e.g. the conformance context marks
    # a SessionExpired that arrived after the session's reported deadline, which a case must not blame).
    notes: dict[str, Any] = field(default_factory=dict)


@dataclass
class Transcript:
    """Exchanges as they happened, secrets redacted at the moment of recording."""

    entries: list[dict[str, Any]] = field(default_factory=list)

    def record(self, direction: str, payload: Any) -> None:
        if isinstance(payload, (bytes, bytearray)):
            try:
                payload = redact(json.loads(payload))
            except (ValueError, UnicodeDecodeError):
                payload = {"raw_bytes": len(payload)}
        else:
            payload = redact(payload)
        self.entries.append({"direction": direction, "at": time.time(), "message": payload})


class ProtocolClient:
    """One connection to a target. Not thread-safe; use one per simulated client."""

    _ids = itertools.count(1)

    def __init__(
        self,
        endpoint: str,
        socket_kind: SocketKind = "dealer",
        timeout_s: float = 5.0,
        context: zmq.Context | None = None,
        transcript: Transcript | None = None,
        curve: ClientCurve | None = None,
        routing_id: bytes | None = None,
    ) -> None:
        """`curve`: talk CurveZMQ to a server with these keys (protocol/curve.py); None: plain ZeroMQ."""
        self.endpoint = endpoint
        self.curve = curve
        self.routing_id = routing_id  # chosen by the peer (ZMQ_ROUTING_ID), as any peer may (spec 6.3)
        self.socket_kind = socket_kind
        self.timeout_s = timeout_s
        self._own_context = context is None
        self.context = context or zmq.Context()
        self.transcript = transcript if transcript is not None else Transcript()
        self._prefix = uuid.uuid4().hex[:8]
        try:
            self.socket: zmq.Socket = self._connect()
        except zmq.ZMQError:
            if self._own_context:
                self.context.term()
            raise

    def _connect(self) -> zmq.Socket:
        sock = self.context.socket(zmq.DEALER if self.socket_kind == "dealer" else zmq.REQ)
        sock.setsockopt(zmq.LINGER, 0)
        if self.routing_id is not None:
            sock.setsockopt(zmq.ROUTING_ID, self.routing_id)
        if self.socket_kind == "req":
            # A REQ socket that timed out would otherwise refuse to send again. Not REQ_CORRELATE: it
            # prefixes every request with a request-id frame, which breaks the REQ framing of
            # spec/01-transport.md (the server sees three frames and must answer `frames`).
            sock.setsockopt(zmq.REQ_RELAXED, 1)
        if self.curve is not None:
            self.curve.apply(sock)
        try:
            sock.connect(self.endpoint)
        except zmq.ZMQError:
            # A socket left open here would make the context's term() block forever (a typo in an
            # endpoint hung the CLI): close it before the error goes up.
            sock.close(0)
            raise
        return sock

    def reconnect(self) -> None:
        """A new socket (a new ZeroMQ routing id): to the server, a different connection."""
        self.socket.close(0)
        self.socket = self._connect()

    def close(self) -> None:
        self.socket.close(0)
        if self._own_context:
            self.context.term()

    def __enter__(self) -> ProtocolClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- building requests ------------------------------------------------------------------------

    def next_id(self) -> str:
        return f"{self._prefix}-{next(self._ids)}"

    @staticmethod
    def message(command: str, parameters: dict[str, Any], request_id: str,
                version: str = PROTOCOL_VERSION) -> dict[str, Any]:
        return {"id": request_id, "version": version, "command": command, "parameters": parameters}

    # -- sending ------------------------------------------------------------------------------------

    def send_frames(self, frames: list[bytes]) -> None:
        """Send body frames as they are (REQ adds its empty delimiter itself)."""
        self.socket.send_multipart(frames)

    def receive_frames(self, timeout_s: float | None = None) -> list[bytes]:
        """Every frame of the next reply (a DEALER that sent a REQ-style delimiter gets it echoed)."""
        timeout = self.timeout_s if timeout_s is None else timeout_s
        if not self.socket.poll(int(timeout * 1000)):
            raise ReplyTimeout(f"no reply from {self.endpoint} within {timeout:.1f}s")
        return self.socket.recv_multipart()

    def receive(self, timeout_s: float | None = None) -> bytes:
        """The body of the next reply (its last frame)."""
        return self.receive_frames(timeout_s)[-1]

    def exchange_frames(self, frames: list[bytes], request: Any = None, timeout_s: float | None = None) -> Exchange:
        """Send raw frames, wait for one reply, decode it if it is JSON."""
        self.transcript.record("request", request if request is not None else {"raw_frames": [len(f) for f in frames]})
        started = time.monotonic()
        self.send_frames(frames)
        try:
            body = self.receive(timeout_s)
        except ReplyTimeout:
            self.transcript.record("timeout", {"after_s": time.monotonic() - started})
            raise
        arrived = time.monotonic()
        result = Exchange(request, frames, reply_bytes=body, elapsed_s=arrived - started, sent_at=started,
                          received_at=arrived)
        try:
            decoded = decode_body(body, max_bytes=len(body) + 1, max_depth=10_000, require_object=False)
            result.reply, result.reply_has_float = decoded.message, decoded.has_float
        except FrameError as exc:
            result.decode_error = exc.message
        self.transcript.record("reply", result.reply if result.decode_error is None else body)
        return result

    def send(self, message: Any, timeout_s: float | None = None) -> Exchange:
        """Send one JSON message (any value, valid or not) and wait for its reply."""
        return self.exchange_frames([encode(message)], request=message, timeout_s=timeout_s)

    def call(self, command: str, parameters: dict[str, Any] | None = None, *, request_id: str | None = None,
             timeout_s: float | None = None) -> Exchange:
        """A well-formed request for `command`."""
        message = self.message(command, parameters or {}, request_id or self.next_id())
        return self.send(message, timeout_s=timeout_s)
