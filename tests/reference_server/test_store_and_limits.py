"""Review regressions on the store and the settings: owner-only files, a foreign database left
byte-for-byte unchanged, a failed COMMIT not wedging the connection, limits below the spec's
minimums refused (also by the CLI, exit 2), the nesting cap, and tokens of any type never echoed."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from rs_harness import REPO, EngineHarness, FakeClock, error_code
from stui_protocol_kit.reference_server.config import MAX_NESTING_DEPTH_CAP, MINIMUMS, ServerConfig
from stui_protocol_kit.reference_server.storage import STORE_FILE, SessionStore, StoreError

# -- 7. owner-only files (SEC-11) --------------------------------------------------------------------


def test_store_directory_and_files_are_owner_only(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        harness = EngineHarness(tmp_path / "data", ServerConfig(), FakeClock())
        harness.create()
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "data").stat().st_mode) == 0o700
    files = [p for p in (tmp_path / "data").iterdir() if p.name.startswith(STORE_FILE)]
    assert {p.name for p in files} >= {STORE_FILE, STORE_FILE + "-wal"}
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name
    harness.engine.close()


# -- 8. a foreign database is refused and left unchanged (PER-12) ------------------------------------


def test_foreign_sqlite_database_is_left_byte_for_byte_unchanged(tmp_path: Path) -> None:
    path = tmp_path / STORE_FILE
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE unrelated (x)")
    db.execute("INSERT INTO unrelated VALUES ('precious')")
    db.commit()
    db.close()
    before = path.read_bytes()
    with pytest.raises(StoreError, match="not a STUI session store"):
        SessionStore(tmp_path)
    assert path.read_bytes() == before  # still in rollback-journal mode, nothing written
    assert not (tmp_path / (STORE_FILE + "-wal")).exists()


def test_store_whose_creation_was_interrupted_is_set_up(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / STORE_FILE)
    db.execute("PRAGMA journal_mode=WAL")  # what an interrupted first start leaves: a header, no tables
    db.close()
    store = SessionStore(tmp_path)
    assert store.session_count() == 0
    store.close()


def test_every_open_raises_the_object_id_epoch(tmp_path: Path) -> None:
    epochs = []
    for _ in range(3):
        store = SessionStore(tmp_path)
        epochs.append(store.epoch)
        store.close()
    assert epochs == sorted(set(epochs)) and len(epochs) == 3


# -- 9. a failed COMMIT does not leave the connection in a transaction -------------------------------


class _FailingCommit:
    """A connection whose next COMMIT fails (as SQLITE_BUSY or an I/O error would)."""

    def __init__(self, real: sqlite3.Connection) -> None:
        self.real, self.armed = real, True

    def __getattr__(self, name: str):
        return getattr(self.real, name)

    def execute(self, sql: str, *args):
        if sql == "COMMIT" and self.armed:
            self.armed = False
            raise sqlite3.OperationalError("database is locked")
        return self.real.execute(sql, *args)


def test_failed_commit_rolls_back_and_later_writes_succeed(harness: EngineHarness) -> None:
    auth = harness.create()
    real = harness.store._db
    assert real is not None
    harness.store._db = _FailingCommit(real)  # type: ignore[assignment]
    assert error_code(harness.call("session.snapshot", auth)) == "InternalError"
    assert not real.in_transaction
    assert harness.call("session.snapshot", auth)["result"]["revision"] == 1  # not 2: the first was undone
    assert harness.call("session.create", {"client_id": "next"})["status"] == "success"
    harness.store._db = real


# -- 5. limits: the spec's minimums, and the nesting cap ---------------------------------------------


@pytest.mark.parametrize(("name", "minimum"), sorted(MINIMUMS.items()))
def test_config_refuses_values_below_the_spec_minimum(name: str, minimum: int) -> None:
    ServerConfig(**{name: minimum})
    with pytest.raises(ValueError, match=f"{name} must be at least {minimum}"):
        ServerConfig(**{name: minimum - 1})


def test_config_refuses_nesting_deeper_than_the_decoder_handles() -> None:
    ServerConfig(max_nesting_depth=MAX_NESTING_DEPTH_CAP)
    with pytest.raises(ValueError, match="at most"):
        ServerConfig(max_nesting_depth=MAX_NESTING_DEPTH_CAP + 1)


@pytest.mark.parametrize(("option", "value"), [("--max-message-bytes", "65535"), ("--retry-window", "0"),
                                               ("--max-nesting-depth", "513"), ("--max-revisions", "1")])
def test_cli_refuses_a_limit_out_of_range_with_exit_2(tmp_path: Path, option: str, value: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "stui_protocol_kit.reference_server.cli", "--bind", "tcp://127.0.0.1:0", "--data-dir",
         str(tmp_path / "d"), option, value],
        cwd=REPO, capture_output=True, text=True, timeout=30,
    )
    assert done.returncode == 2
    assert option in done.stderr and "listening on" not in done.stderr
    assert not (tmp_path / "d").exists()  # refused before the store is touched


def test_body_nested_exactly_at_the_cap_is_accepted_stored_and_sent_back(tmp_path: Path) -> None:
    config = ServerConfig(max_nesting_depth=MAX_NESTING_DEPTH_CAP, strict=True)
    harness = EngineHarness(tmp_path / "data", config, FakeClock())
    auth = harness.create()
    inner = MAX_NESTING_DEPTH_CAP - 4  # message, parameters, state, preferences
    nested = "[" * inner + "]" * inner
    head = json.dumps({"id": "deep", "version": "1.0", "command": "session.snapshot",
                       "parameters": {**auth, "state": {"preferences": {"x": "HERE"}}}})
    body = head.replace('"HERE"', nested)
    assert harness.raw([body.encode()])["status"] == "success"
    too_deep = body.replace(nested, "[" + nested + "]")
    reply = harness.raw([too_deep.encode()])
    assert error_code(reply) == "InvalidRequest" and reply["error"]["details"] == {"reason": "nesting_depth"}
    harness.restart()
    result = harness.call("session.resume", auth)["result"]
    assert json.dumps(result["state"]["preferences"]["x"]).count("[") == inner
    harness.engine.close()
    assert harness.engine.strict_violations == 0


# -- 6. a token is never echoed, whatever its type (SEC-5) -------------------------------------------


@pytest.mark.parametrize("shape", ["list", "object", "number", "short", "short-list", "short-number", "long-invalid",
                                   "suffixed"])
def test_token_of_any_type_is_never_echoed_in_an_error(harness: EngineHarness, shape: str) -> None:
    auth = harness.create()
    token = auth["token"]
    sent, secret = {
        "list": ([token], token),
        "object": ({"value": token}, token),
        "number": (12345678901234567890, "12345678901234567890"),
        "short": ("s3cr", "s3cr"),
        "short-list": (["s3cr"], "s3cr"),
        "short-number": (4711, "4711"),
        "long-invalid": ("ab$cd-secret-token-value", "ab$cd-secret-token-value"),
        "suffixed": (token + "!", token),
    }[shape]
    reply = harness.call("session.validate", {"session_id": auth["session_id"], "token": sent})
    assert error_code(reply) == "InvalidRequest"
    assert secret not in json.dumps(reply)
