"""Who may hold a connection to the reference server: the ZAP handler (connection cap, CURVE allow-list).

Theory of operation: ZeroMQ asks a ZAP handler (RFC 27, an inproc REP socket bound at
`inproc://zeromq.zap.01` in the server's context) about every connection once its handshake reaches
the security step - with the NULL mechanism too, because the ROUTER sets a ZAP domain. The gate
answers 200 (let in) or 400 (refused: ZeroMQ sends the peer an ERROR command and closes the
connection, so its descriptor is freed at once). It refuses:

1. every CURVE client whose public key is not on the allow-list (there is no allow-any mode: a CURVE
   server is given the list of client keys it accepts);
2. any connection while `max_connections` connections are admitted (handshake done, not yet
   disconnected). Connections still in their handshake do not count here - a burst of connects must
   not lock out its own first members - but they are bounded by the handshake timeout;
3. any connection from an address that already has more than `max_per_address` connections open
   (counted from ACCEPTED to DISCONNECTED, handshakes included): one address cannot take every slot.

The gate runs on a thread of its own, so a handshake never waits for a request being served. It also
owns the ROUTER's socket monitor (one socket has one monitor). libzmq reports every accepted
connection's handshake exactly once, as HANDSHAKE_SUCCEEDED or a HANDSHAKE_FAILED_* event, before its
DISCONNECTED, and gives handshake events no descriptor; so the admitted connections number
succeeded + failed - disconnected, plus the admissions just granted whose success has not been read.
The ACCEPTED and DISCONNECTED events are passed on, in order, to the serving loop through `events`
(the loop maps descriptors to routing ids for the engine's disconnect tracking).

This module decides admission only: it must never read a message body or touch a session.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import socket
import threading
import time
from collections import Counter, deque

import zmq
from zmq.utils import z85
from zmq.utils.monitor import recv_monitor_message

log = logging.getLogger("stui.reference_server")

ZAP_ENDPOINT = "inproc://zeromq.zap.01"
ZAP_DOMAIN = b"stui"
HANDSHAKE_FAILED = (zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL, zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL,
                    zmq.EVENT_HANDSHAKE_FAILED_AUTH)
MONITORED = zmq.EVENT_ACCEPTED | zmq.EVENT_DISCONNECTED | zmq.EVENT_HANDSHAKE_SUCCEEDED
for _event in HANDSHAKE_FAILED:
    MONITORED |= _event
PASSED_ON = (zmq.EVENT_ACCEPTED, zmq.EVENT_DISCONNECTED)


class ConnectionGate:
    """The ZAP handler and monitor reader of one ROUTER socket; start() before the socket binds."""

    def __init__(self, context: zmq.Context, *, max_connections: int,
                 allowed_client_keys: frozenset[bytes] | None = None, handshake_timeout_s: float = 10.0,
                 max_per_address: int | None = None) -> None:
        """`allowed_client_keys`: Z85 public keys (40 bytes) admitted when the socket is a CURVE server;
        None when it is not (a CURVE handshake then never reaches the gate)."""
        if max_connections < 1:
            raise ValueError(f"max_connections must be at least 1, got {max_connections}")
        self.context = context
        self.max_connections = max_connections
        self.max_per_address = max_per_address  # None: no limit per address beyond the total
        self.refused_address = 0
        self._fd_host: dict[int, str] = {}
        self._per_host: Counter[str] = Counter()
        self.allowed_client_keys = allowed_client_keys
        # (zmq event, fd, peer address as getpeername() gives it, or None)
        self.events: queue.SimpleQueue[tuple[int, int, object | None]] = queue.SimpleQueue()
        self.refused_cap = 0
        self.refused_key = 0
        self._succeeded = self._failed = self._disconnected = 0
        # Monotonic times of admissions granted whose HANDSHAKE_SUCCEEDED has not been seen yet; one
        # that never reports (the peer left at that instant) stops counting after the handshake timeout.
        self._granted: deque[float] = deque()
        self._grant_ttl_s = 2 * handshake_timeout_s
        self._stop = threading.Event()
        self._zap = context.socket(zmq.REP)
        self._zap.setsockopt(zmq.LINGER, 0)
        try:
            self._zap.bind(ZAP_ENDPOINT)
        except zmq.ZMQError:
            self._zap.close(0)
            raise
        self._monitor: zmq.Socket | None = None
        self._thread: threading.Thread | None = None

    def watch(self, router: zmq.Socket) -> None:
        """Take the router's monitor and start answering ZAP requests and reading events."""
        self._monitor = router.get_monitor_socket(MONITORED)
        self._thread = threading.Thread(target=self._run, name="stui-zap-gate", daemon=True)
        self._thread.start()

    @property
    def admitted_connections(self) -> int:
        return max(0, self._succeeded + self._failed - self._disconnected)

    def _run(self) -> None:
        assert self._monitor is not None
        poller = zmq.Poller()
        poller.register(self._zap, zmq.POLLIN)
        poller.register(self._monitor, zmq.POLLIN)
        while not self._stop.is_set():
            ready = dict(poller.poll(100))
            # Events first: a connection's ACCEPTED is counted before its own ZAP request is answered.
            if self._monitor in ready:
                self._drain_monitor()
            if self._zap in ready:
                self._drain_monitor()
                self._answer(self._zap.recv_multipart())

    def _drain_monitor(self) -> None:
        assert self._monitor is not None
        while True:
            try:
                event = recv_monitor_message(self._monitor, zmq.NOBLOCK)
            except zmq.Again:
                return
            kind, fd = int(event["event"]), int(event["value"])
            if kind == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                self._succeeded += 1
                if self._granted:
                    self._granted.popleft()
            elif kind in HANDSHAKE_FAILED:
                self._failed += 1
            elif kind == zmq.EVENT_DISCONNECTED:
                self._disconnected += 1
            address = None
            if kind in PASSED_ON:
                self._release_host(fd)
            if kind == zmq.EVENT_ACCEPTED:
                address = peer_address(fd)
                host = _host(address)
                self._fd_host[fd] = host
                self._per_host[host] += 1
            if kind in PASSED_ON:
                self.events.put((kind, fd, address))

    def _release_host(self, fd: int) -> None:
        host = self._fd_host.pop(fd, None)
        if host is not None:
            self._per_host[host] -= 1
            if self._per_host[host] <= 0:
                del self._per_host[host]

    def _in_use(self) -> int:
        now = time.monotonic()
        while self._granted and now - self._granted[0] > self._grant_ttl_s:
            self._granted.popleft()
        return self.admitted_connections + len(self._granted)

    def _answer(self, request: list[bytes]) -> None:
        # RFC 27: version, request id, domain, address, identity, mechanism, credentials...
        if len(request) < 6:
            return  # not a ZAP request; a REP socket must still answer something
        version, request_id, _domain, address, _identity, mechanism = request[:6]
        status, text = b"200", b"OK"
        if mechanism == b"CURVE":
            key = z85.encode(request[6]) if len(request) > 6 else b""
            if self.allowed_client_keys is None or key not in self.allowed_client_keys:
                status, text = b"400", b"client key not allowed"
                self.refused_key += 1
                log.warning("refused CURVE client from %s: public key %s is not on the allow-list",
                            address.decode(errors="replace"), key.decode(errors="replace"))
        host = address.decode(errors="replace")
        if (status == b"200" and self.max_per_address is not None
                and self._per_host.get(host, 0) > self.max_per_address):
            status, text = b"400", b"connection limit per address reached"
            self.refused_address += 1
            log.warning("refused a connection from %s: %d connections open from it, the cap per address "
                        "(--max-connections-per-address) is %d", host, self._per_host[host], self.max_per_address)
        if status == b"200":
            if self._in_use() >= self.max_connections:
                status, text = b"400", b"connection limit reached"
                self.refused_cap += 1
                log.warning("refused a connection from %s: the connection cap (--max-connections %d) is reached",
                            address.decode(errors="replace"), self.max_connections)
            else:
                self._granted.append(time.monotonic())
        self._zap.send_multipart([version, request_id, status, text, b"", b""])

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        if self._monitor is not None:
            self._monitor.close(0)
        self._zap.close(0)


def peer_address(fd: int) -> object | None:
    """getpeername() of a descriptor libzmq owns, read through a duplicate (never closing the original)."""
    try:
        with socket.socket(fileno=os.dup(fd)) as dup:
            return dup.getpeername()
    except OSError:
        return None  # out of descriptors, or already closed


def _host(address: object | None) -> str:
    """The host part as ZAP gives it (an IP address without port); '' for unknown and local sockets."""
    if isinstance(address, tuple) and address:
        return str(address[0])
    return ""


def apply_gate(router: zmq.Socket) -> None:
    """Make the router consult the ZAP handler for every connection, NULL mechanism included."""
    router.setsockopt(zmq.ZAP_DOMAIN, ZAP_DOMAIN)
    with contextlib.suppress(AttributeError, zmq.ZMQError):
        router.setsockopt(zmq.ZAP_ENFORCE_DOMAIN, 1)
