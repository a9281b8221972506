"""Helpers for the reference server tests: a fake clock, an engine on the in-memory store (or on a
real SQLite store where durability on disk is the point), request builders, an in-process server on
a real ROUTER socket, and the reference server as a subprocess (through the kit's one ServerProcess)."""

from __future__ import annotations

import itertools
import json
import secrets
import sys
import threading
from pathlib import Path
from typing import Any

import zmq

from stui_protocol_kit.protocol.client import ProtocolClient, SocketKind
from stui_protocol_kit.protocol.facts import PROTOCOL_VERSION
from stui_protocol_kit.protocol.server_process import ServerProcess
from stui_protocol_kit.reference_server.config import ServerConfig
from stui_protocol_kit.reference_server.engine import Engine
from stui_protocol_kit.reference_server.memory_store import MemoryStore
from stui_protocol_kit.reference_server.sqlite_store import SqliteStore
from stui_protocol_kit.reference_server.store import SessionStore
from stui_protocol_kit.reference_server.transport import RouterTransport, TransportSettings

REPO = Path(__file__).resolve().parents[2]
T0 = 1_800_000_000.0
SERVER = [sys.executable, "-m", "stui_protocol_kit.reference_server.cli"]


class FakeClock:
    def __init__(self, start: float = T0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def request(command: str, parameters: dict[str, Any] | None = None, rid: str | None = None) -> dict[str, Any]:
    return {"id": rid or f"r{next(_ids)}", "version": PROTOCOL_VERSION, "command": command,
            "parameters": parameters or {}}


_ids = itertools.count(1)


class EngineHarness:
    """An engine with a fake clock on the in-memory store (`data_dir=None`) or on a real SQLite store in
    `data_dir`; `call` sends one request and decodes the reply."""

    def __init__(self, data_dir: Path | None, config: ServerConfig, clock: FakeClock,
                 engine_class: type[Engine] = Engine) -> None:
        self.data_dir, self.config, self.clock, self.engine_class = data_dir, config, clock, engine_class
        self.store: SessionStore = self._open(None)
        self.engine = self._engine()

    def _open(self, previous: SessionStore | None) -> SessionStore:
        if self.data_dir is not None:
            return SqliteStore(self.data_dir, max_revisions_kept=self.config.max_revisions_kept)
        if isinstance(previous, MemoryStore):
            return previous.reopen(max_revisions_kept=self.config.max_revisions_kept)
        return MemoryStore(max_revisions_kept=self.config.max_revisions_kept)

    def _engine(self) -> Engine:
        return self.engine_class(self.config, self.store, clock=self.clock, random_source=secrets.token_urlsafe)

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

    def stored_status(self, session_id: str) -> str | None:
        """The session's status as the store has it (None once purged)."""
        row = self.store.load_session(session_id)
        return row.status if row is not None else None

    def restart(self, config: ServerConfig | None = None) -> None:
        """A clean restart: flush, close, reopen on the same store (the fake clock keeps going)."""
        self.engine.close()
        self.config = config or self.config
        self.store = self._open(self.store)
        self.engine = self._engine()

    def crash_restart(self) -> None:
        """Lose everything in memory without a final flush, then reopen."""
        self.store.close()
        self.store = self._open(self.store)
        self.engine = self._engine()


def error_code(reply: dict[str, Any]) -> str | None:
    return reply["error"]["code"] if reply["status"] == "error" else None


class ThreadServer:
    """The real transport on a real ROUTER socket (tcp, random port) and a real SQLite store, served
    from a thread."""

    def __init__(self, data_dir: Path, config: ServerConfig, settings: TransportSettings | None = None) -> None:
        import time

        self.context = zmq.Context()
        self.store = SqliteStore(data_dir, max_revisions_kept=config.max_revisions_kept)
        self.engine = Engine(config, self.store, clock=time.time, random_source=secrets.token_urlsafe)
        self.transport = RouterTransport(self.engine, "tcp://127.0.0.1:0", context=self.context, poll_ms=20,
                                         settings=settings)
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


def client(endpoint: str, kind: SocketKind = "dealer", timeout_s: float = 5.0,
           context: zmq.Context | None = None) -> ProtocolClient:
    """The kit's ProtocolClient (the tests use the same client as the suite and the benchmarks)."""
    return ProtocolClient(endpoint, kind, timeout_s, context)


def call(c: ProtocolClient, command: str, parameters: dict[str, Any] | None = None,
         rid: str | None = None) -> dict[str, Any]:
    """One request; the decoded reply (asserted to be a JSON object)."""
    reply = c.call(command, parameters or {}, request_id=rid).reply
    assert isinstance(reply, dict), reply
    return reply


def server_process(data_dir: Path, *extra: str, env: dict[str, str] | None = None,
                   log_level: str = "warning") -> ServerProcess:
    """`python -m stui_protocol_kit.reference_server.cli` on a free port, started (ready line seen)."""
    process = ServerProcess(
        [*SERVER, "--bind", "tcp://127.0.0.1:0", "--data-dir", str(data_dir), "--log-level", log_level, *extra],
        env=env, cwd=REPO, ready_timeout_s=30, name="reference server",
    )
    process.start()
    return process
