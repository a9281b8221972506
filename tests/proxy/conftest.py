"""Fixtures for the proxy tests: the proxy in a thread of the test process, the reference server (or a
deliberately faulty one) as a real process behind it, and a scripted upstream for exact byte-level faults.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import zmq

from stui_protocol_kit.conformance.proxy import Proxy
from stui_protocol_kit.protocol.server_process import ServerProcess
from stui_protocol_kit.protocol.traffic_checks import Finding

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "client_check"))
REFERENCE = [sys.executable, "-m", "stui_protocol_kit.reference_server.cli"]
FAULTY = [sys.executable, str(REPO / "tests" / "faulty" / "server.py")]


@pytest.fixture
def server(tmp_path) -> Iterator[Callable[..., str]]:
    started: list[ServerProcess] = []

    def start(fault: str | None = None) -> str:
        argv = [*(FAULTY + ["--fault", fault] if fault else REFERENCE), "--bind", "tcp://127.0.0.1:0",
                "--data-dir", str(tmp_path / f"data{len(started)}"), "--log-level", "warning"]
        process = ServerProcess(argv, name=fault or "reference")
        started.append(process)
        return process.start()

    yield start
    for process in started:
        process.stop()


class RunningProxy:
    def __init__(self, upstream: str, **options: Any) -> None:
        self.findings: list[Finding] = []
        self.events: list[dict[str, Any]] = []
        self.proxy = Proxy("tcp://127.0.0.1:0", upstream, on_finding=self.findings.append,
                           on_event=self.events.append, **options)
        self.endpoint = self.proxy.start()
        self.thread = threading.Thread(target=self.proxy.serve, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.proxy.request_stop("test")
        self.thread.join(10)
        assert not self.thread.is_alive()
        self.proxy.close()

    def requirements(self) -> list[str]:
        return [f.problem.requirement for f in self.findings]


@pytest.fixture
def proxy() -> Iterator[Callable[..., RunningProxy]]:
    started: list[RunningProxy] = []

    def start(upstream: str, **options: Any) -> RunningProxy:
        started.append(RunningProxy(upstream, **options))
        return started[-1]

    yield start
    for running in started:
        if running.thread.is_alive():
            running.stop()


class ScriptedServer:
    """A ROUTER that records every message as received and answers with `answer(frames) -> list of replies`,
    each reply a list of frames after the routing id (so a test can send exact bytes, several replies, none)."""

    def __init__(self, answer: Callable[[list[bytes]], list[list[bytes]]]) -> None:
        self.context = zmq.Context()
        self.socket = self.context.socket(zmq.ROUTER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.endpoint = f"tcp://127.0.0.1:{self.socket.bind_to_random_port('tcp://127.0.0.1')}"
        self.answer = answer
        self.received: list[list[bytes]] = []
        self._stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self._stop:
            if not self.socket.poll(20):
                continue
            frames = self.socket.recv_multipart()
            self.received.append(frames)
            for reply in self.answer(frames[1:]):
                self.socket.send_multipart([frames[0], *reply])

    def close(self) -> None:
        self._stop = True
        self.thread.join(5)
        self.socket.close(0)
        self.context.term()


@pytest.fixture
def scripted() -> Iterator[Callable[..., ScriptedServer]]:
    started: list[ScriptedServer] = []

    def start(answer: Callable[[list[bytes]], list[list[bytes]]]) -> ScriptedServer:
        started.append(ScriptedServer(answer))
        return started[-1]

    yield start
    for server in started:
        server.close()


def hello_reply(request_frames: list[bytes], **changes: Any) -> list[bytes]:
    """A correct hello success for the request in `request_frames` (REQ framing kept), with `changes`."""
    delimiter = request_frames[:-1]
    request = json.loads(request_frames[-1])
    reply = {"id": request.get("id"), "version": "1.0", "command": "hello", "status": "success",
             "result": {"protocol_versions": ["1.0"], "server": {"name": "scripted", "version": "0"},
                        "capabilities": [], "limits": {"max_message_bytes": 65536, "max_nesting_depth": 32,
                                                       "idle_timeout_s": 60, "absolute_timeout_s": 600,
                                                       "max_sessions_per_client": 4, "retry_window_s": 60,
                                                       "tombstone_retention_s": 60}},
             "timestamp": "2026-12-02T10:00:00.000Z"}
    reply.update(changes)
    return [*delimiter, json.dumps(reply).encode()]
