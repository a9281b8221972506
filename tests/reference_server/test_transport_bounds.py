"""What a connection can cost the reference server, on real sockets (issue 10, items 4 and 5).

A frame beyond the frame bound (4 x max_message_bytes) drops its sender without a reply and without
being buffered; a frame within it is answered PayloadTooLarge. A peer that never finishes its ZeroMQ
handshake, or stops answering heartbeats, is dropped; a live idle client is not. Connections beyond
the cap are refused during their handshake and never reach the engine; a freed slot admits the next.
The start-up check of the descriptor limit lowers the cap with a warning, or refuses to start."""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import zmq
from rs_harness import REPO, SERVER, ThreadServer, call, client, error_code, server_process
from zmq.utils.monitor import recv_monitor_message

from stui_protocol_kit.protocol.client import ReplyTimeout
from stui_protocol_kit.protocol.server_process import ServerProcess, ServerStartError
from stui_protocol_kit.reference_server.cli import RESERVED_DESCRIPTORS, is_local_endpoint
from stui_protocol_kit.reference_server.config import ServerConfig
from stui_protocol_kit.reference_server.transport import FRAME_BOUND_FACTOR, TransportSettings

LIMIT = 65536


def _config() -> ServerConfig:
    return ServerConfig(max_message_bytes=LIMIT, cleanup_interval_s=0.2, strict=True)


def _events_until(monitor: zmq.Socket, wanted: int, timeout_s: float) -> list[int]:
    """Monitor events until `wanted` is seen or the timeout passes; every event read."""
    seen: list[int] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and wanted not in seen:
        if monitor.poll(50):
            seen.append(int(recv_monitor_message(monitor)["event"]))
    return seen


def _peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM in /proc status")


# -- item 4: oversize frames ----------------------------------------------------------------------


def test_frame_within_the_bound_is_answered_payload_too_large(tmp_path: Path) -> None:
    s = ThreadServer(tmp_path / "data", _config())
    try:
        with client(s.endpoint) as c:
            c.send_frames([b" " * (FRAME_BOUND_FACTOR * LIMIT)])
            reply = json.loads(c.receive())
            assert error_code(reply) == "PayloadTooLarge"
            assert reply["error"]["details"]["max_message_bytes"] == LIMIT
    finally:
        s.stop()


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="peak RSS is read from /proc")
def test_absurd_frames_drop_their_senders_unread_and_the_server_keeps_serving(tmp_path: Path) -> None:
    big = 32 * 1024 * 1024  # 512 x the limit; a server that reads it whole grows by at least this much
    with server_process(tmp_path, "--max-message-bytes", str(LIMIT)) as proc, client(proc.endpoint) as other:
        assert proc.pid is not None
        assert call(other, "hello")["status"] == "success"
        before = _peak_rss_kib(proc.pid)
        context = zmq.Context()
        try:
            attackers = []
            for _ in range(2):
                sock = context.socket(zmq.DEALER)
                sock.setsockopt(zmq.LINGER, 0)
                sock.setsockopt(zmq.RECONNECT_IVL, 60_000)  # one attempt each: a dropped peer stays away
                monitor = sock.get_monitor_socket(zmq.EVENT_DISCONNECTED | zmq.EVENT_HANDSHAKE_SUCCEEDED)
                sock.connect(proc.endpoint)
                attackers.append((sock, monitor))
            for sock, _ in attackers:
                sock.send(bytes(big), copy=False)
            for sock, monitor in attackers:
                assert zmq.EVENT_DISCONNECTED in _events_until(monitor, zmq.EVENT_DISCONNECTED, 20), \
                    "the server kept a peer that sent a frame beyond the bound"
                assert not sock.poll(200), "an absurd frame got a reply"
                sock.disable_monitor()
                monitor.close(0)
                sock.close(0)
        finally:
            context.destroy(linger=0)
        assert call(other, "hello")["status"] == "success"
        grown_kib = _peak_rss_kib(proc.pid) - before
        assert grown_kib < 8 * 1024, f"peak RSS grew by {grown_kib} KiB for frames it should never buffer"


# -- item 5: handshakes, heartbeats, the connection cap -------------------------------------------


def _host_port(endpoint: str) -> tuple[str, int]:
    host, port = endpoint.removeprefix("tcp://").rsplit(":", 1)
    return host, int(port)


def _closed_by_peer(sock: socket.socket, timeout_s: float) -> bool:
    """Read (and ignore: PINGs, the greeting) until the server closes the connection or time runs out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        sock.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            if sock.recv(4096) == b"":
                return True
        except TimeoutError:
            return False
        except ConnectionResetError:
            return True
    return False


def _zmtp_null_dealer_handshake(sock: socket.socket) -> None:
    """A ZMTP 3.0 greeting and READY as a DEALER with the NULL mechanism, sent by hand: after it, this
    peer never answers anything, as a wedged client would."""
    greeting = b"\xff" + b"\x00" * 8 + b"\x7f" + b"\x03\x00" + b"NULL".ljust(20, b"\x00") + b"\x00" + b"\x00" * 31
    body = b"\x05READY" + b"\x0bSocket-Type" + struct.pack(">I", 6) + b"DEALER"
    sock.sendall(greeting + b"\x04" + bytes([len(body)]) + body)


def test_a_peer_that_never_finishes_its_handshake_is_dropped(tmp_path: Path) -> None:
    s = ThreadServer(tmp_path / "data", _config(), TransportSettings(handshake_timeout_s=0.5))
    try:
        with socket.create_connection(_host_port(s.endpoint), timeout=5) as raw:
            assert _closed_by_peer(raw, 10), "a silent connection outlived the handshake timeout"
        with client(s.endpoint) as c:
            assert call(c, "hello")["status"] == "success"
    finally:
        s.stop()


def test_a_peer_that_stops_answering_heartbeats_is_dropped_and_a_live_idle_one_is_not(tmp_path: Path) -> None:
    settings = TransportSettings(heartbeat_interval_s=0.2, heartbeat_timeout_s=0.6)
    s = ThreadServer(tmp_path / "data", _config(), settings)
    context = zmq.Context()
    try:
        live = context.socket(zmq.DEALER)
        live.setsockopt(zmq.LINGER, 0)
        monitor = live.get_monitor_socket(zmq.EVENT_DISCONNECTED)
        live.connect(s.endpoint)
        live.send(json.dumps({"id": "a", "version": "1.0", "command": "hello", "parameters": {}}).encode())
        assert live.poll(5000) and json.loads(live.recv())["status"] == "success"
        with socket.create_connection(_host_port(s.endpoint), timeout=5) as raw:
            _zmtp_null_dealer_handshake(raw)
            assert _closed_by_peer(raw, 10), "a peer deaf to heartbeats was kept"
        # The live client was idle all along (its libzmq answers the PINGs): never dropped.
        assert zmq.EVENT_DISCONNECTED not in _events_until(monitor, zmq.EVENT_DISCONNECTED, 0.3)
        live.send(json.dumps({"id": "b", "version": "1.0", "command": "hello", "parameters": {}}).encode())
        assert live.poll(5000) and json.loads(live.recv())["id"] == "b"
        live.disable_monitor()
        monitor.close(0)
        live.close(0)
    finally:
        context.destroy(linger=0)
        s.stop()


def test_connections_beyond_the_cap_are_refused_at_handshake_and_a_freed_slot_admits_the_next(
        tmp_path: Path) -> None:
    s = ThreadServer(tmp_path / "data", _config(), TransportSettings(max_connections=3))
    context = zmq.Context()
    try:
        admitted = [client(s.endpoint, timeout_s=5, context=context) for _ in range(3)]
        for c in admitted:
            assert call(c, "hello")["status"] == "success"
        extra = context.socket(zmq.DEALER)
        extra.setsockopt(zmq.LINGER, 0)
        monitor = extra.get_monitor_socket(zmq.EVENT_HANDSHAKE_FAILED_AUTH | zmq.EVENT_HANDSHAKE_SUCCEEDED)
        extra.connect(s.endpoint)
        # NOBLOCK: once its handshake is refused the DEALER may have no pipe to queue in, and a blocking
        # send would then wait for ever (seen under load); queued or not, it must not be served.
        with contextlib.suppress(zmq.Again):
            extra.send(json.dumps({"id": "x", "version": "1.0", "command": "hello", "parameters": {}}).encode(),
                       zmq.NOBLOCK)
        events = _events_until(monitor, zmq.EVENT_HANDSHAKE_FAILED_AUTH, 5)
        assert zmq.EVENT_HANDSHAKE_FAILED_AUTH in events and zmq.EVENT_HANDSHAKE_SUCCEEDED not in events
        assert not extra.poll(300), "a connection beyond the cap was served"
        assert s.transport.gate.refused_cap >= 1
        for c in admitted:  # the admitted ones are untouched
            assert call(c, "hello")["status"] == "success"
        admitted.pop().close()
        deadline = time.monotonic() + 10
        while True:  # the slot frees when the server reads the DISCONNECTED event
            newcomer = client(s.endpoint, timeout_s=0.5, context=context)
            try:
                assert call(newcomer, "hello")["status"] == "success"
                break
            except ReplyTimeout:
                newcomer.close()
                assert time.monotonic() < deadline, "a freed slot never admitted a new client"
        newcomer.close()
        extra.disable_monitor()
        monitor.close(0)
        extra.close(0)
        for c in admitted:
            c.close()
    finally:
        context.destroy(linger=0)
        s.stop()


def test_a_burst_of_connects_up_to_the_cap_is_admitted_whole(tmp_path: Path) -> None:
    """Connections still in their handshake do not count against the cap: N clients that connect at
    once under a cap of N all get in (counting accepted sockets would refuse the first of them)."""
    s = ThreadServer(tmp_path / "data", _config(), TransportSettings(max_connections=8))
    context = zmq.Context()
    try:
        clients = [client(s.endpoint, timeout_s=5, context=context) for _ in range(8)]
        errors: list[str] = []

        def hello(c: object) -> None:
            try:
                assert call(c, "hello")["status"] == "success"  # type: ignore[arg-type]
            except (AssertionError, ReplyTimeout) as exc:
                errors.append(repr(exc))

        threads = [threading.Thread(target=hello, args=(c,)) for c in clients]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        assert errors == []
        for c in clients:
            c.close()
    finally:
        context.destroy(linger=0)
        s.stop()


# -- start-up: the descriptor limit --------------------------------------------------------------


def _with_nofile(limit: int) -> list[str]:
    """The server command, run under RLIMIT_NOFILE soft = hard = `limit`."""
    launcher = (f"import resource, runpy, sys; resource.setrlimit(resource.RLIMIT_NOFILE, ({limit}, {limit})); "
                "sys.argv = ['stui-reference-server', *sys.argv[1:]]; "
                "runpy.run_module('stui_protocol_kit.reference_server.cli', run_name='__main__')")
    return [sys.executable, "-c", launcher]


def test_a_cap_above_the_descriptor_limit_is_lowered_with_a_warning(tmp_path: Path) -> None:
    proc = ServerProcess([*_with_nofile(200), "--bind", "tcp://127.0.0.1:0", "--data-dir", str(tmp_path),
                          "--max-connections", "1000"], cwd=REPO, name="reference server")
    with proc, client(proc.endpoint) as c:
        assert call(c, "hello")["status"] == "success"
    lowered = 200 - RESERVED_DESCRIPTORS
    assert any(f"--max-connections 1000 lowered to {lowered}" in line for line in proc.stderr_lines()), \
        proc.stderr_tail()


def test_no_room_for_any_connection_refuses_to_start(tmp_path: Path) -> None:
    proc = ServerProcess([*_with_nofile(RESERVED_DESCRIPTORS), "--bind", "tcp://127.0.0.1:0", "--data-dir",
                          str(tmp_path)], cwd=REPO, name="reference server", ready_timeout_s=30)
    with pytest.raises(ServerStartError) as raised:
        proc.start()
    assert raised.value.returncode == 2
    assert "RLIMIT_NOFILE" in raised.value.stderr_tail


# -- start-up: binding beyond loopback -----------------------------------------------------------


@pytest.mark.parametrize(("endpoint", "local"), [
    ("tcp://127.0.0.1:5555", True), ("tcp://[::1]:5555", True), ("ipc:///tmp/x", True),
    ("tcp://localhost:1", True), ("tcp://0.0.0.0:5555", False), ("tcp://[::]:5555", False),
    ("tcp://192.168.1.4:5555", False), ("tcp://eth0:5555", False),
])
def test_local_endpoints(endpoint: str, local: bool) -> None:
    assert is_local_endpoint(endpoint) is local


def test_binding_every_interface_without_curve_logs_a_loud_warning(tmp_path: Path) -> None:
    proc = ServerProcess([*SERVER, "--bind", "tcp://0.0.0.0:0", "--data-dir", str(tmp_path / "a")], cwd=REPO,
                         name="reference server")
    with proc:
        pass
    assert any("CURVE is off" in line and "WARNING" in line for line in proc.stderr_lines()), proc.stderr_tail()
    quiet = server_process(tmp_path / "b", log_level="info")
    with quiet:
        pass
    assert not any("CURVE is off" in line for line in quiet.stderr_lines())


def test_server_help_documents_the_connection_bounds() -> None:
    out = subprocess.run([*SERVER, "--help"], capture_output=True, text=True, cwd=REPO, timeout=30).stdout
    for option in ("--max-connections", "--handshake-timeout", "--heartbeat-interval", "--heartbeat-timeout",
                   "--connection-idle-timeout", "--curve-secret-key", "--curve-allow"):
        assert option in out


@pytest.mark.parametrize(("option", "value", "says"), [
    ("--max-connections", "0", "--max-connections must be at least 1"),
    ("--handshake-timeout", "0", "handshake_timeout_s must be positive"),
    ("--heartbeat-timeout", "99999", "heartbeat_timeout_s must be at most"),
    ("--curve-allow", "/nonexistent.pub", "--curve-allow needs --curve-secret-key"),
])
def test_refused_transport_settings_say_why(tmp_path: Path, capsys, option: str, value: str,  # type: ignore[no-untyped-def]
                                           says: str) -> None:
    from stui_protocol_kit.reference_server.cli import main

    assert main(["--bind", "tcp://127.0.0.1:0", "--data-dir", str(tmp_path), option, value]) == 2
    assert says in capsys.readouterr().err


def test_a_connection_silent_past_the_idle_timeout_is_closed_and_its_client_reconnects(tmp_path: Path) -> None:
    """The issue's lock-out: idle connections held forever. An idle one is now closed by the server (the
    client's monitor sees the disconnect) while a busy one is kept; a libzmq client that sends again
    reconnects by itself and is served."""
    config = ServerConfig(max_message_bytes=LIMIT, cleanup_interval_s=0.1, strict=True)
    s = ThreadServer(tmp_path / "data", config, TransportSettings(connection_idle_timeout_s=0.6))
    context = zmq.Context()
    try:
        def dealer() -> tuple[zmq.Socket, zmq.Socket]:
            sock = context.socket(zmq.DEALER)
            sock.setsockopt(zmq.LINGER, 0)
            monitor = sock.get_monitor_socket(zmq.EVENT_DISCONNECTED)
            sock.connect(s.endpoint)
            return sock, monitor

        def hello(sock: zmq.Socket, rid: str) -> None:
            sock.send(json.dumps({"id": rid, "version": "1.0", "command": "hello", "parameters": {}}).encode())
            assert sock.poll(5000), f"no reply to {rid}"
            assert json.loads(sock.recv())["id"] == rid

        idle, idle_monitor = dealer()
        busy, busy_monitor = dealer()
        hello(idle, "i1")
        hello(busy, "b1")
        deadline = time.monotonic() + 2.0
        n = 0
        while time.monotonic() < deadline:  # busy keeps talking; idle says nothing
            n += 1
            hello(busy, f"b{n + 1}")
            time.sleep(0.1)
        assert zmq.EVENT_DISCONNECTED in _events_until(idle_monitor, zmq.EVENT_DISCONNECTED, 3), \
            "an idle connection was kept past the idle timeout"
        assert zmq.EVENT_DISCONNECTED not in _events_until(busy_monitor, zmq.EVENT_DISCONNECTED, 0.1)
        hello(idle, "i2")  # the same socket: libzmq reconnected, the server serves it
        for sock, monitor in ((idle, idle_monitor), (busy, busy_monitor)):
            sock.disable_monitor()
            monitor.close(0)
            sock.close(0)
    finally:
        context.destroy(linger=0)
        s.stop()


def test_one_address_cannot_take_every_slot(tmp_path: Path) -> None:
    """Per-address cap 2 (of 6): a third connection from 127.0.0.1 is refused at its handshake while one
    from 127.0.0.2 (another loopback source address) is admitted."""
    s = ThreadServer(tmp_path / "data", _config(), TransportSettings(max_connections=6, max_connections_per_address=2))
    context = zmq.Context()
    port = s.endpoint.rsplit(":", 1)[1]
    try:
        first = [client(s.endpoint, timeout_s=5, context=context) for _ in range(2)]
        for c in first:
            assert call(c, "hello")["status"] == "success"
        extra = context.socket(zmq.DEALER)
        extra.setsockopt(zmq.LINGER, 0)
        monitor = extra.get_monitor_socket(zmq.EVENT_HANDSHAKE_FAILED_AUTH | zmq.EVENT_HANDSHAKE_SUCCEEDED)
        extra.connect(s.endpoint)
        assert zmq.EVENT_HANDSHAKE_FAILED_AUTH in _events_until(monitor, zmq.EVENT_HANDSHAKE_FAILED_AUTH, 5)
        assert s.transport.gate.refused_address >= 1
        other = client(f"tcp://127.0.0.2:0;127.0.0.1:{port}", timeout_s=5, context=context)
        assert call(other, "hello")["status"] == "success"
        other.close()
        extra.disable_monitor()
        monitor.close(0)
        extra.close(0)
        for c in first:
            c.close()
    finally:
        context.destroy(linger=0)
        s.stop()
