"""Fixtures for the client-check tests: the kit's server in a thread of the test process, real sockets.

`kit(scenarios, ...)` starts `KitServer` on a free loopback port and returns a `RunningKit`: `.endpoint`
for the scripted client, `.finish()` to stop it (if the client did not end the run), join it and get the
results by case ID. Every kit is stopped and closed when the test ends, whatever happened.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest

from stui_protocol_kit.conformance.case import CaseResult
from stui_protocol_kit.conformance.client_check.kit_server import KitServer
from stui_protocol_kit.conformance.client_check.scenarios import Settings


class RunningKit:
    def __init__(self, scenarios: Sequence[str], settings: Settings, **options: Any) -> None:
        self.events: list[dict[str, Any]] = []
        self.server = KitServer("tcp://127.0.0.1:0", list(scenarios), settings, on_event=self.events.append,
                                **options)
        self.endpoint = self.server.start()
        self.thread = threading.Thread(target=self.server.serve, name="kit", daemon=True)
        self.thread.start()
        self.results: dict[str, CaseResult] = {}

    def wait_end(self, timeout_s: float = 5.0) -> bool:
        """Whether the kit ended by itself (the client closed its session, or --duration) within the time."""
        self.thread.join(timeout_s)
        return not self.thread.is_alive()

    def finish(self) -> dict[str, CaseResult]:
        if self.thread.is_alive():
            self.server.request_stop("signal")
            self.thread.join(10)
        assert not self.thread.is_alive(), "the kit did not stop"
        self.results = {r.case.id: r for r in self.server.results()}
        return self.results

    def violations(self, requirement: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["kind"] == "violation" and e["requirement"] == requirement]

    def close(self) -> None:
        if self.thread.is_alive():
            self.server.request_stop("signal")
            self.thread.join(10)
        self.server.close()


@pytest.fixture
def kit() -> Iterator[Callable[..., RunningKit]]:
    started: list[RunningKit] = []

    def start(scenarios: Sequence[str] = (), *, reply_delay_s: float = 0.6, restart_pause_s: float = 0.1,
              **options: Any) -> RunningKit:
        running = RunningKit(scenarios, Settings(reply_delay_s=reply_delay_s, restart_pause_s=restart_pause_s),
                             **options)
        started.append(running)
        return running

    yield start
    for running in started:
        running.close()
