"""Helpers for the reference server tests: a fake clock, an engine on a real SQLite store, request
builders, an in-process server on a real ROUTER socket, socket clients, and a subprocess server."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import zmq
from stui_protocol_kit.reference_server.config import ServerConfig
from stui_protocol_kit.reference_server.engine import Engine
from stui_protocol_kit.reference_server.storage import SessionStore
from stui_protocol_kit.reference_server.transport import RouterTransport

REPO = Path(__file__).resolve().parents[2]
T0 = 1_800_000_000.0


class FakeClock:
    def __init__(self, start: float = T0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def request(command: str, parameters: dict[str, Any] | None = None, rid: str | None = None) -> dict[str, Any]:
    return {"id": rid or f"r{next(_ids)}", "version": "1.0", "command": command, "parameters": parameters or {}}


_ids = itertools.count(1)


class EngineHarness:
    """An engine on a real store with a fake clock; `call` sends one request and decodes the reply."""

    def __init__(self, data_dir: Path, config: ServerConfig, clock: FakeClock) -> None:
        self.data_dir, self.config, self.clock = data_dir, config, clock
        self.store = SessionStore(data_dir, max_revisions_kept=config.max_revisions_kept)
        self.engine = Engine(config, self.store, clock)

    def raw(self, frames: list[bytes], peer: str = "peer-a") -> dict[str, Any]:
        return json.loads(self.engine.handle(frames, peer))

    def send(self, message: dict[str, Any], peer: str = "peer-a") -> dict[str, Any]:
        return self.raw([json.dumps(message).encode()], peer)

    def call(self, command: str, parameters: dict[str, Any] | None = None, *, rid: str | None = None,
             peer: str = "peer-a") -> dict[str, Any]:
        return self.send(request(command, parameters, rid), peer)

    def create(self, client_id: str = "client-1", peer: str = "peer-a") -> dict[str, str]:
        reply = self.call("session.create", {"client_id": client_id}, peer=peer)
        assert reply["status"] == "success", reply
        return {"session_id": reply["result"]["session_id"], "token": reply["result"]["token"]}

    def restart(self, config: ServerConfig | None = None) -> None:
        """A clean restart: flush, close, reopen on the same directory (the fake clock keeps going)."""
        self.engine.close()
        self.config = config or self.config
        self.store = SessionStore(self.data_dir, max_revisions_kept=self.config.max_revisions_kept)
        self.engine = Engine(self.config, self.store, self.clock)

    def crash_restart(self) -> None:
        """Lose everything in memory without a final flush, then reopen."""
        self.store.close()
        self.store = SessionStore(self.data_dir, max_revisions_kept=self.config.max_revisions_kept)
        self.engine = Engine(self.config, self.store, self.clock)


def error_code(reply: dict[str, Any]) -> str | None:
    return reply["error"]["code"] if reply["status"] == "error" else None


class ThreadServer:
    """The real transport on a real ROUTER socket (tcp, random port), served from a thread."""

    def __init__(self, data_dir: Path, config: ServerConfig) -> None:
        self.context = zmq.Context()
        self.store = SessionStore(data_dir, max_revisions_kept=config.max_revisions_kept)
        self.engine = Engine(config, self.store)
        self.transport = RouterTransport(self.engine, "tcp://127.0.0.1:0", context=self.context, poll_ms=20)
        self.endpoint = self.transport.endpoint
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.transport.serve()
        finally:
            self.transport.close()
            self.engine.close()

    def stop(self) -> None:
        self.transport.request_stop()
        self.thread.join(10)
        assert not self.thread.is_alive()
        self.context.term()


class Client:
    """A blocking client on a DEALER or REQ socket with a receive timeout."""

    def __init__(self, context: zmq.Context, endpoint: str, kind: int = zmq.DEALER, timeout_ms: int = 5000) -> None:
        self.kind = kind
        self.socket = context.socket(kind)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.setsockopt(zmq.RCVTIMEO, timeout_ms)
        self.socket.connect(endpoint)

    def send_frames(self, frames: list[bytes]) -> list[bytes]:
        if self.kind == zmq.DEALER:
            self.socket.send_multipart(frames)
        else:
            self.socket.send_multipart(frames)
        return self.socket.recv_multipart()

    def call(self, command: str, parameters: dict[str, Any] | None = None, rid: str | None = None) -> dict[str, Any]:
        frames = self.send_frames([json.dumps(request(command, parameters, rid)).encode()])
        assert len(frames) == 1
        return json.loads(frames[0])

    def close(self) -> None:
        self.socket.close(linger=0)


def start_server_process(
    data_dir: Path, *extra: str, env: dict[str, str] | None = None,
) -> tuple[subprocess.Popen, str]:
    """`python -m stui_protocol_kit.reference_server.cli` on a free port; returns once it printed 'listening on'."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "stui_protocol_kit.reference_server.cli", "--bind", "tcp://127.0.0.1:0",
         "--data-dir", str(data_dir),
         "--log-level", "warning", *extra],
        cwd=REPO, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
        env={**os.environ, **(env or {})},
    )
    assert proc.stderr is not None
    for line in proc.stderr:  # blocks until the server says it is ready (or exits)
        if line.startswith("listening on "):
            return proc, line.split("listening on ", 1)[1].strip()
    proc.wait(10)
    raise AssertionError(f"server exited with {proc.returncode} before listening")
