"""Targets: the server under test, reached over ZeroMQ, and how to restart it.

Two kinds:
- `EmbeddedServer`: a server process the suite starts itself (by default the reference server,
  `python -m stui_protocol_kit.reference_server.cli`, as a subprocess: the suite never imports the
  reference server) on `tcp://127.0.0.1:0` in a temporary data dir with short timeouts. It starts
  through the kit's one `ServerProcess` (waits for the "listening on ENDPOINT" line, with a timeout),
  and restarts by SIGKILL plus a new process on the same port and data dir (a restart as the spec
  defines it). The faulty-server tests use it with another command line.
- `RemoteTarget`: `--target ADDR`, optionally with `--restart-command CMD` (run through the shell; it
  must return once the restart has been initiated; the suite then waits until `hello` answers).

`probe_hello` reads the target's hello, which the run adapts to (capabilities, limits).

This module must never interpret replies beyond "did hello succeed": verdicts belong to cases.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

import zmq

from stui_protocol_kit.protocol.client import ProtocolClient, ReplyTimeout
from stui_protocol_kit.protocol.curve import ClientCurve
from stui_protocol_kit.protocol.server_process import ServerProcess, ServerStartError

REFERENCE_SERVER = [sys.executable, "-m", "stui_protocol_kit.reference_server.cli"]
# The reference server's `--corrupt-newest-revision-command` (the session id is appended); it fits every
# embedded server that keeps the reference server's store (the faulty servers of the tests too).
REFERENCE_CORRUPTER = [sys.executable, "-m", "stui_protocol_kit.reference_server.corrupt"]

# Settings for the embedded reference server: timeouts short enough for the expiry cases to run in
# seconds, limits small enough for the limit cases to be cheap. The main server keeps sessions alive
# for the whole run; a second one with 2 s idle timeout serves only the expiry cases.
MAIN_SETTINGS: dict[str, Any] = {
    "idle-timeout": 120, "absolute-timeout": 600, "max-sessions-per-client": 4,
    "max-message-bytes": 65536, "retry-window": 60, "tombstone-retention": 60,
    "retry-cache-bytes": 1048576, "max-sessions": 200, "cleanup-interval": 0.5, "log-level": "warning",
}
EXPIRY_SETTINGS: dict[str, Any] = {
    "idle-timeout": 2, "absolute-timeout": 4, "max-sessions-per-client": 8,
    "max-message-bytes": 65536, "retry-window": 60, "tombstone-retention": 4,
    "cleanup-interval": 0.5, "log-level": "warning",
}


class TargetUnavailable(RuntimeError):
    """The target cannot be reached or started (exit code 2)."""


def probe_hello(endpoint: str, timeout_s: float = 5.0, context: zmq.Context | None = None,
                curve: ClientCurve | None = None) -> dict[str, Any]:
    """The hello result of the target, or TargetUnavailable."""
    try:
        client = ProtocolClient(endpoint, "dealer", timeout_s, context, curve=curve)
    except zmq.ZMQError as exc:  # the endpoint itself was refused (callers check its form first)
        raise TargetUnavailable(f"{endpoint}: {exc}") from exc
    try:
        exchange = client.call("hello", {})
    except ReplyTimeout as exc:
        hint = "" if curve is None else " (CURVE: a server that does not list this client's public key never answers)"
        raise TargetUnavailable(f"{endpoint}: no reply to hello within {timeout_s:g}s{hint}") from exc
    except zmq.ZMQError as exc:
        raise TargetUnavailable(f"{endpoint}: {exc}") from exc
    finally:
        client.close()
    reply = exchange.reply
    if not isinstance(reply, dict) or reply.get("status") != "success" or not isinstance(reply.get("result"), dict):
        raise TargetUnavailable(f"{endpoint}: hello did not succeed: {str(reply)[:300]}")
    return reply["result"]


def wait_for_hello(endpoint: str, deadline_s: float, context: zmq.Context | None = None,
                   curve: ClientCurve | None = None) -> dict[str, Any]:
    """Poll hello (short timeouts, a fresh socket each time) until it answers or the deadline passes."""
    deadline = time.monotonic() + deadline_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            return probe_hello(endpoint, min(2.0, max(0.2, deadline - time.monotonic())), context, curve)
        except TargetUnavailable as exc:
            last = exc
    raise TargetUnavailable(f"{endpoint} did not answer hello within {deadline_s:g}s ({last})")


class EmbeddedServer:
    """A server subprocess on a loopback port with its own temporary data dir; restartable."""

    def __init__(self, settings: dict[str, Any] | None = None, argv: list[str] | None = None,
                 extra_args: list[str] | None = None, ready_timeout_s: float = 30.0, name: str = "embedded") -> None:
        self.settings = dict(MAIN_SETTINGS if settings is None else settings)
        self.argv = list(argv or REFERENCE_SERVER)
        self.extra_args = list(extra_args or [])
        self.ready_timeout_s = ready_timeout_s
        self.name = name
        self.data_dir = tempfile.mkdtemp(prefix=f"stui-conformance-{name}-")
        self.bind = "tcp://127.0.0.1:0"
        self.endpoint: str | None = None
        self.server: ServerProcess | None = None
        # After cleanup() nothing starts again: a case still running on a background thread when the run
        # is interrupted must not restart a server nobody will stop.
        self._lock = threading.Lock()
        self._closed = False

    @property
    def process(self) -> subprocess.Popen[str] | None:
        return self.server.process if self.server is not None else None

    def command_line(self) -> list[str]:
        args = [*self.argv, "--bind", self.bind, "--data-dir", self.data_dir]
        for key, value in self.settings.items():
            args += [f"--{key}", str(value)]
        return args + self.extra_args

    def start(self) -> str:
        with self._lock:
            if self._closed:
                raise TargetUnavailable(f"{self.name} server: the run is over, it is not started again")
            server = self.server = ServerProcess(self.command_line(), ready_timeout_s=self.ready_timeout_s,
                                                 name=f"{self.name} server")
        try:
            self.endpoint = server.start()
        except ServerStartError as exc:
            raise TargetUnavailable(f"{self.name} server did not start: {exc}") from exc
        with self._lock:
            if self._closed:  # cleanup() ran while it was starting (an interrupt during start-up)
                server.kill()
                shutil.rmtree(self.data_dir, ignore_errors=True)
                raise TargetUnavailable(f"{self.name} server: the run is over, it is not started again")
        # Restarts bind the same port so that connected clients and the endpoint stay valid.
        self.bind = self.endpoint
        return self.endpoint

    @property
    def corrupt_command(self) -> str:
        """The shell command that damages a session's newest revision in this server's store."""
        return shlex.join([*REFERENCE_CORRUPTER, "--data-dir", self.data_dir])

    def restart(self) -> str:
        """SIGKILL and start again on the same port and data dir (nothing gets a chance to flush)."""
        self.kill()
        return self.start()

    def kill(self) -> None:
        if self.server is not None:
            self.server.kill()

    def stop(self) -> None:
        """Graceful stop (SIGTERM), then SIGKILL if it hangs."""
        if self.server is not None:
            self.server.stop(grace_s=10)

    def cleanup(self) -> None:
        """Stop for good and remove the data directory (also while start() runs on another thread)."""
        with self._lock:
            self._closed = True
        self.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> EmbeddedServer:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.cleanup()


class CommandRestarter:
    """Restarts a remote target with a shell command, then waits until it answers hello."""

    def __init__(self, endpoint: str, command: str, timeout_s: float = 60.0, curve: ClientCurve | None = None) -> None:
        self.endpoint = endpoint
        self.curve = curve
        self.command = command
        self.timeout_s = timeout_s

    def restart(self) -> str:
        try:
            done = subprocess.run(self.command, shell=True, timeout=self.timeout_s, capture_output=True, text=True)
        except subprocess.TimeoutExpired as exc:
            raise TargetUnavailable(f"restart command did not return within {self.timeout_s:g}s") from exc
        if done.returncode != 0:
            raise TargetUnavailable(f"restart command exited {done.returncode}: {done.stderr.strip()[:300]}")
        wait_for_hello(self.endpoint, self.timeout_s, curve=self.curve)
        return self.endpoint


class CommandCorrupter:
    """Runs `--corrupt-newest-revision-command` with a session id appended (shell-quoted)."""

    def __init__(self, command: str, timeout_s: float = 60.0) -> None:
        self.command = command
        self.timeout_s = timeout_s

    def __call__(self, session_id: str) -> None:
        line = f"{self.command} {shlex.quote(session_id)}"
        try:
            done = subprocess.run(line, shell=True, timeout=self.timeout_s, capture_output=True, text=True)
        except subprocess.TimeoutExpired as exc:
            raise TargetUnavailable(f"corrupt command did not return within {self.timeout_s:g}s") from exc
        if done.returncode != 0:
            raise TargetUnavailable(f"corrupt command exited {done.returncode}: {done.stderr.strip()[:300]}")
