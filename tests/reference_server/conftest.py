"""Fixtures for the reference server tests (helpers live in rs_harness.py).

`harness` is the engine on the in-memory store (the engine's unit tests: fast, no file); `disk` is
the engine on a real SQLite store, for what only a file can show (durability on disk, file modes,
corruption, at-rest secrets)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from rs_harness import EngineHarness, FakeClock, ThreadServer

from stui_protocol_kit.reference_server.config import ServerConfig


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def config() -> ServerConfig:
    return ServerConfig(
        idle_timeout_s=60, absolute_timeout_s=600, max_sessions_per_client=3, retry_window_s=30,
        tombstone_retention_s=120, max_revisions_kept=3, strict=True,
    )


def _harness(data_dir: Path | None, config: ServerConfig, clock: FakeClock) -> Iterator[EngineHarness]:
    h = EngineHarness(data_dir, config, clock)
    yield h
    h.engine.close()
    assert h.engine.strict_violations == 0, "the engine produced a schema-invalid reply"


@pytest.fixture
def harness(config: ServerConfig, clock: FakeClock) -> Iterator[EngineHarness]:
    yield from _harness(None, config, clock)


@pytest.fixture
def disk(tmp_path: Path, config: ServerConfig, clock: FakeClock) -> Iterator[EngineHarness]:
    yield from _harness(tmp_path / "data", config, clock)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ThreadServer]:
    config = ServerConfig(
        idle_timeout_s=60, absolute_timeout_s=600, max_sessions_per_client=50, retry_window_s=30,
        max_message_bytes=65536, cleanup_interval_s=0.2, strict=True,
    )
    s = ThreadServer(tmp_path / "data", config)
    yield s
    s.stop()
    assert s.engine.strict_violations == 0
