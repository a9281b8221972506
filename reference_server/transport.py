"""The reference server's ZeroMQ side: one ROUTER socket, its admission gate, and the serving loop.

Theory of operation: the loop receives from the ROUTER (blocking, with a short timeout) and looks at
the socket events the gate passes on between messages. Each message is split into its routing envelope and body
frames by `stui_protocol_kit.protocol.framing.split_envelope` (REQ: `[id, b"", body]`, DEALER:
`[id, body]`), handed to the engine, and the reply goes back with the same envelope (`_send`).
Messages are handled one at a time, so a slow request delays others by its own processing only; the
engine's `tick()` runs between messages at the configured interval. The monitor's DISCONNECTED
events, matched to routing ids through the file descriptor each message arrived on, tell the engine
which clients left. The per-request log line (DEBUG) is written here, where the time is measured.

Bounds (spec/01-transport.md, 1.3): one frame may not exceed `FRAME_BOUND_FACTOR` times the
announced `max_message_bytes` (ZMQ_MAXMSGSIZE: libzmq drops the peer as the frame's size arrives, before
buffering it, and no reply is sent); a connection must finish its ZMTP handshake within
`handshake_timeout_s` and answer heartbeats (a PING every `heartbeat_interval_s`, dropped after
`heartbeat_timeout_s` of silence); a connection that sends no message for `connection_idle_timeout_s`
is closed (the serving loop shuts its TCP connection down through a duplicate of the descriptor the
socket monitor reported, after checking the peer address: libzmq has no call to drop one peer; a
libzmq client reconnects by itself); at most `max_connections` connections are
admitted (the ZAP gate, gate.py, refuses the rest during their handshake). CURVE, when configured,
is set up here as well.

Snapshots are the exception to one-at-a-time (group commit): the engine answers PENDING for a
snapshot whose write waits for the store's writer thread, and the loop goes on serving; the reply
goes out when the engine's commit descriptor wakes the loop and `finish_commits` hands it over, i.e.
once the write is durable. A request naming a session with a snapshot in flight comes back DEFERRED
and is kept here, per session in arrival order, and handed to the engine again right after that
snapshot's reply: one session's requests are answered in order, other sessions meanwhile.
The messages already waiting when one arrives are taken with it (up to BATCH) and the small ones
are handled first, each connection's in order (a connection's requests after a large one stay
behind it): a small request waits for the large one in hand, not for every large one queued.

This module owns every socket, the clock of the serving loop and the stop flag, and nothing else: it
must never interpret a body, touch storage or decide a reply. Signal handlers live in the CLI and
only call `request_stop()`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import socket
import time
from collections import deque
from dataclasses import dataclass

import zmq

from stui_protocol_kit.protocol.curve import ServerCurve
from stui_protocol_kit.protocol.framing import Envelope, split_envelope
from stui_protocol_kit.reference_server.engine import DEFERRED, PENDING, Engine, Reply
from stui_protocol_kit.reference_server.gate import ConnectionGate, apply_gate

log = logging.getLogger("stui.reference_server")
request_log = logging.getLogger("stui.reference_server.requests")
# Messages taken from the socket at once, and the size up to which one is served before larger ones
# that came with it (see RouterTransport._small_first).
BATCH = 64
SMALL_BYTES = 16 * 1024


# A frame larger than this many times max_message_bytes costs its sender the connection, without a
# reply (spec 01, TRN-15); anything up to it is read and answered PayloadTooLarge (TRN-6).
FRAME_BOUND_FACTOR = 4
MAX_HEARTBEAT_TTL_S = 6553


@dataclass(frozen=True)
class TransportSettings:
    """Connection-level bounds and security of the ROUTER socket (none of them is announced in hello;
    spec/01-transport.md 1.3 and the server's --help document them)."""

    max_connections: int = 512
    # Connections one address may hold open (None: max_connections); the CLI's default is half the cap.
    max_connections_per_address: int | None = None
    handshake_timeout_s: float = 10.0
    heartbeat_interval_s: float = 10.0
    heartbeat_timeout_s: float = 30.0
    connection_idle_timeout_s: float = 600.0
    curve: ServerCurve | None = None

    def __post_init__(self) -> None:
        if self.max_connections < 1:
            raise ValueError(f"max_connections must be at least 1, got {self.max_connections}")
        for name in ("handshake_timeout_s", "heartbeat_interval_s", "heartbeat_timeout_s",
                     "connection_idle_timeout_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)!r}")
        if self.heartbeat_timeout_s > MAX_HEARTBEAT_TTL_S:  # ZMTP carries the TTL in deciseconds, 16 bits
            raise ValueError(f"heartbeat_timeout_s must be at most {MAX_HEARTBEAT_TTL_S}, "
                             f"got {self.heartbeat_timeout_s}")


def frame_bound(max_message_bytes: int) -> int:
    """The largest frame the server reads (ZMQ_MAXMSGSIZE)."""
    return FRAME_BOUND_FACTOR * max_message_bytes


class RouterTransport:
    """Serves one Engine on one bound ROUTER socket."""

    def __init__(self, engine: Engine, bind: str, *, context: zmq.Context | None = None, poll_ms: int = 100,
                 settings: TransportSettings | None = None) -> None:
        self.engine = engine
        self.context = context or zmq.Context.instance()
        self.poll_ms = poll_ms
        self.settings = settings or TransportSettings()
        curve = self.settings.curve
        # The gate answers ZAP requests; it must listen before the socket can take a connection.
        self.gate = ConnectionGate(self.context, max_connections=self.settings.max_connections,
                                   allowed_client_keys=curve.allowed_clients if curve else None,
                                   handshake_timeout_s=self.settings.handshake_timeout_s,
                                   max_per_address=self.settings.max_connections_per_address)
        self.socket = self.context.socket(zmq.ROUTER)
        self.socket.setsockopt(zmq.LINGER, 1000)
        self.socket.setsockopt(zmq.MAXMSGSIZE, frame_bound(engine.config.max_message_bytes))
        self.socket.setsockopt(zmq.HANDSHAKE_IVL, int(self.settings.handshake_timeout_s * 1000))
        self.socket.setsockopt(zmq.HEARTBEAT_IVL, int(self.settings.heartbeat_interval_s * 1000))
        self.socket.setsockopt(zmq.HEARTBEAT_TIMEOUT, int(self.settings.heartbeat_timeout_s * 1000))
        # Sent in our PINGs: a client that hears nothing from us for this long drops the connection itself.
        self.socket.setsockopt(zmq.HEARTBEAT_TTL, int(self.settings.heartbeat_timeout_s * 1000))
        apply_gate(self.socket)
        if curve is not None:
            curve.apply(self.socket)
        try:
            self.socket.bind(bind)
        except zmq.ZMQError:
            self.socket.close(linger=0)
            self.gate.close()
            raise
        # The endpoint actually bound: differs from `bind` for port 0 or `*`.
        self.endpoint: str = self.socket.getsockopt(zmq.LAST_ENDPOINT).decode()
        self.gate.watch(self.socket)
        self._fd_peers: dict[int, set[str]] = {}
        self._peer_fd: dict[str, int] = {}
        # fd -> its connection: peer address (checked before a shutdown) and when it last sent a message
        self._connections: dict[int, _Connection] = {}
        self._stopping = False
        # Group commit (engine.PENDING/DEFERRED): replies owed once a snapshot is durable, by ticket,
        # and the requests of sessions with a snapshot in flight, in arrival order.
        self._owed: dict[int, tuple[Envelope, float]] = {}
        self._held: dict[str, deque[tuple[Envelope, list[bytes], str, float]]] = {}
        self._signal_fd = engine.commit_signal_fd
        self._poller: zmq.Poller | None = None
        if self._signal_fd is not None:
            self._poller = zmq.Poller()
            self._poller.register(self.socket, zmq.POLLIN)
            self._poller.register(self._signal_fd, zmq.POLLIN)

    def request_stop(self) -> None:
        """Finish the message in hand, then leave `serve()` (safe to call from a signal handler)."""
        self._stopping = True

    def serve(self) -> None:
        interval = self.engine.config.cleanup_interval_s
        next_tick = time.monotonic() + interval
        # A blocking receive with a short timeout wakes at once for a message; a Poller plus a
        # non-blocking receive (which raises zmq.Again on every wake-up) cost ~35 us per request here.
        # The timeout bounds how late the stop flag, the monitor and the tick are looked at.
        self.socket.setsockopt(zmq.RCVTIMEO, self.poll_ms)
        while not self._stopping:
            self._drain_monitor_if_ready()
            if self._owed and self._poller is not None:
                # A snapshot is being committed: wake for its report as well as for a message.
                ready = dict(self._poller.poll(self.poll_ms))
                if self._signal_fd in ready:
                    self._answer_commits()
                frames = None
                if self.socket in ready:
                    with contextlib.suppress(zmq.Again):
                        frames = self.socket.recv_multipart(zmq.NOBLOCK, copy=False)
            else:
                try:
                    frames = self.socket.recv_multipart(copy=False)
                except zmq.Again:
                    frames = None
            if frames is not None:
                # A connection's ACCEPTED event must be seen before its first message is tracked.
                self._drain_monitor_if_ready()
                self._serve_in_turns(self._small_first(self._with_waiting(frames)))
            if time.monotonic() >= next_tick:
                self.engine.tick()
                self._close_idle_connections()
                next_tick = time.monotonic() + interval
        self._answer_owed(deadline=time.monotonic() + 5.0)

    def _answer_owed(self, deadline: float) -> None:
        """On stop: the snapshots already being committed are answered (their writes finish anyway)."""
        while self._owed and self._poller is not None and time.monotonic() < deadline:
            if self._signal_fd in dict(self._poller.poll(100)):
                for reply in self.engine.finish_commits():
                    owed = self._owed.pop(reply.ticket or 0, None)
                    if owed is not None:
                        self._reply(owed[0], reply, owed[0].routing_id.hex(), owed[1])

    def _with_waiting(self, frames: list[zmq.Frame]) -> list[list[zmq.Frame]]:
        """`frames` and the messages already waiting behind it (up to BATCH), without blocking. Asked
        of the socket's EVENTS first: a receive that finds nothing costs far more than the question."""
        batch = [frames]
        while len(batch) < BATCH and self.socket.getsockopt(zmq.EVENTS) & zmq.POLLIN:
            try:
                batch.append(self.socket.recv_multipart(zmq.NOBLOCK, copy=False))
            except zmq.Again:
                break
        return batch

    def _serve_in_turns(self, batch: list[list[zmq.Frame]]) -> None:
        """Serve a batch one message per connection in turn, each connection's own in order (CON-1),
        taking in what arrives meanwhile: a client that sends one request behind another's batch of
        costly ones waits for the request in hand, not for the whole batch (issue 10, CPU fairness)."""
        queues: dict[bytes, deque[list[zmq.Frame]]] = {}
        turns: deque[bytes] = deque()

        def add(messages: list[list[zmq.Frame]]) -> None:
            for message in messages:
                peer = message[0].bytes
                waiting = queues.get(peer)
                if waiting is None:
                    queues[peer] = waiting = deque()
                    turns.append(peer)
                waiting.append(message)

        add(batch)
        while turns:
            peer = turns.popleft()
            waiting = queues[peer]
            self._serve_one(waiting.popleft())
            if waiting:
                turns.append(peer)
            else:
                del queues[peer]
            if turns and self.socket.getsockopt(zmq.EVENTS) & zmq.POLLIN:
                arrived: list[list[zmq.Frame]] = []
                while len(arrived) < BATCH and self.socket.getsockopt(zmq.EVENTS) & zmq.POLLIN:
                    try:
                        arrived.append(self.socket.recv_multipart(zmq.NOBLOCK, copy=False))
                    except zmq.Again:
                        break
                self._drain_monitor_if_ready()  # a new connection's ACCEPTED before its first message
                add(arrived)

    @staticmethod
    def _small_first(batch: list[list[zmq.Frame]]) -> list[list[zmq.Frame]]:
        """Small requests before large ones that arrived with them, each connection's own in order:
        an `evaluate` waits behind the large snapshot being handled, not behind every one queued."""
        if len(batch) == 1:
            return batch
        small: list[list[zmq.Frame]] = []
        large: list[list[zmq.Frame]] = []
        held_back: set[bytes] = set()  # connections with a large request held back: the rest follow it
        for message in batch:
            peer = message[0].bytes
            if peer in held_back or sum(len(frame) for frame in message[1:]) > SMALL_BYTES:
                held_back.add(peer)
                large.append(message)
            else:
                small.append(message)
        return small + large

    def _drain_monitor_if_ready(self) -> None:
        if not self.gate.events.empty():
            self._drain_monitor()

    def _serve_one(self, frames: list[zmq.Frame]) -> None:
        envelope = split_envelope([frame.bytes for frame in frames])
        peer = envelope.routing_id.hex()
        if peer not in self._peer_fd and len(frames) > 1:
            self._remember_fd(peer, frames[-1])
        connection = self._connections.get(self._peer_fd.get(peer, -1))
        if connection is not None:
            connection.last_message = time.monotonic()
        self._process(envelope, list(envelope.body_frames), peer, time.perf_counter())

    def _process(self, envelope: Envelope, body_frames: list[bytes], peer: str, started: float) -> str:
        """Process one request; answer it unless it waits for a commit. Returns the engine's outcome."""
        reply = self.engine.process(body_frames, peer)
        if reply.outcome == PENDING:
            assert reply.ticket is not None
            self._owed[reply.ticket] = (envelope, started)
        elif reply.outcome == DEFERRED:
            assert reply.session_id is not None
            self._held.setdefault(reply.session_id, deque()).append((envelope, body_frames, peer, started))
        else:
            self._reply(envelope, reply, peer, started)
        return reply.outcome

    def _reply(self, envelope: Envelope, reply: Reply, peer: str, started: float) -> None:
        # Per request: DEBUG. INFO is for connections, attach/detach, start/stop and failures.
        if request_log.isEnabledFor(logging.DEBUG):
            _log_request(reply, time.perf_counter() - started, peer)
        self._send(envelope, reply.body)

    def _answer_commits(self) -> None:
        """Send the replies of durable (or failed) snapshots, then serve the requests their sessions
        held back, in order, until one of them waits for a commit again."""
        for reply in self.engine.finish_commits():
            assert reply.ticket is not None
            owed = self._owed.pop(reply.ticket, None)
            if owed is None:
                continue
            envelope, started = owed
            self._reply(envelope, reply, envelope.routing_id.hex(), started)
            held = self._held.get(reply.session_id or "")
            while held:
                if self._process(*held.popleft()) == PENDING:
                    break  # the rest waits for this one's commit, still in order
            if held is not None and not held:
                self._held.pop(reply.session_id or "", None)

    def _send(self, envelope: Envelope, body: bytes) -> None:
        """Send a reply the way its request came."""
        self.socket.send_multipart(envelope.reply_frames(body))

    def _remember_fd(self, peer: str, frame: zmq.Frame) -> None:
        try:
            fd = int(frame.get(zmq.SRCFD))
        except (zmq.ZMQError, AttributeError, TypeError, ValueError):
            return  # no fd: this peer's disconnect is noticed by the idle window instead
        self._peer_fd[peer] = fd
        self._fd_peers.setdefault(fd, set()).add(peer)

    def _drain_monitor(self) -> None:
        """The socket events the gate read, in order (the gate owns the monitor socket)."""
        while True:
            try:
                kind, fd, address = self.gate.events.get_nowait()
            except queue.Empty:
                return
            if kind == zmq.EVENT_ACCEPTED:
                log.info("connect fd=%d", fd)
                # A reused descriptor belongs to a new connection: forget the old one's peers.
                self._forget_fd(fd)
                self._connections[fd] = _Connection(address, time.monotonic())
            elif kind == zmq.EVENT_DISCONNECTED:
                self._connections.pop(fd, None)
                peers = self._forget_fd(fd)
                log.info("disconnect fd=%d peers=%d", fd, len(peers))
                for peer in peers:
                    self.engine.peer_disconnected(peer)

    def _close_idle_connections(self) -> None:
        """Shut down every connection that sent no message for connection_idle_timeout_s (TRN-16)."""
        self._drain_monitor_if_ready()  # events first: a descriptor may have been closed and reused
        limit = time.monotonic() - self.settings.connection_idle_timeout_s
        for fd, connection in self._connections.items():
            if connection.last_message < limit and not connection.closing and connection.address is not None:
                connection.closing = True
                if _shutdown_if_same_peer(fd, connection.address):
                    log.info("closing idle connection fd=%d (no message for %gs)", fd,
                             self.settings.connection_idle_timeout_s)

    def _forget_fd(self, fd: int) -> set[str]:
        peers = self._fd_peers.pop(fd, set())
        for peer in peers:
            self._peer_fd.pop(peer, None)
        return peers

    def close(self) -> None:
        """Close the sockets; replies already queued get up to a second to leave."""
        with contextlib.suppress(zmq.ZMQError):
            self.socket.disable_monitor()
        self.gate.close()
        self.socket.close()


@dataclass
class _Connection:
    address: object | None  # getpeername() of the descriptor when it was accepted (None: unknown)
    last_message: float
    closing: bool = False


def _shutdown_if_same_peer(fd: int, address: object) -> bool:
    """Shut the TCP connection down (libzmq then sees it close) if fd still belongs to `address`."""
    try:
        with socket.socket(fileno=os.dup(fd)) as dup:
            if dup.getpeername() != address:
                return False  # closed and reused since: another connection
            dup.shutdown(socket.SHUT_RDWR)
            return True
    except OSError:
        return False


def _log_request(reply: Reply, duration_s: float, peer: str) -> None:
    """One `key=value` line per request (never a token; the session id's first 8 characters only)."""
    request_log.debug(
        "request command=%s session=%s outcome=%s duration_us=%d peer=%s",
        reply.command or "-", reply.session_id[:8] if reply.session_id else "-", reply.outcome,
        duration_s * 1e6, peer or "-",
    )
