"""A store that comes back emptier or older than it was never starts silently (issue 10, item 7): the
real server process on a real SQLite store, the store then truncated to 0 bytes, replaced by an older
copy, or its write-ahead log deleted after SIGKILL. Each refuses with exit status 3 and a message that
says why and names --accept-store-loss; with the flag the server starts on what is left. An untouched
store - after SIGTERM, after SIGKILL - always starts."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from rs_harness import REPO, call, client, error_code, server_process

from stui_protocol_kit.reference_server.cli import EXIT_STORE_LOST
from stui_protocol_kit.reference_server.high_water import HIGH_WATER_FILE
from stui_protocol_kit.reference_server.sqlite_store import STORE_FILE


def _start(data_dir: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """A start that is expected to end by itself (refused): the CLI with a timeout."""
    return subprocess.run(
        [sys.executable, "-m", "stui_protocol_kit.reference_server.cli", "--bind", "tcp://127.0.0.1:0",
         "--data-dir", str(data_dir), *extra], cwd=REPO, capture_output=True, text=True, timeout=30)


def _work(data_dir: Path, *, kill: bool) -> dict[str, str]:
    """A session with two acknowledged snapshots; the server then stopped (SIGTERM) or killed."""
    proc = server_process(data_dir)
    with client(proc.endpoint) as c:
        created = call(c, "session.create", {"client_id": "loss"})["result"]
        auth = {"session_id": created["session_id"], "token": created["token"]}
        for n in (1, 2):
            assert call(c, "session.snapshot", {**auth, "state": {"preferences": {"n": n}}})["status"] == "success"
    if kill:
        proc.kill()
    else:
        assert proc.stop() == 0
    return auth


def _refused(done: subprocess.CompletedProcess[str], why: str) -> None:
    assert done.returncode == EXIT_STORE_LOST, done.stderr
    assert "listening on" not in done.stderr
    assert why in done.stderr and "--accept-store-loss" in done.stderr and STORE_FILE in done.stderr


@pytest.mark.parametrize("kill", [False, True], ids=["sigterm", "sigkill"])
def test_an_untouched_store_starts_after_a_stop_or_a_kill(tmp_path: Path, kill: bool) -> None:
    auth = _work(tmp_path, kill=kill)
    with server_process(tmp_path) as proc, client(proc.endpoint) as c:
        assert call(c, "session.resume", auth)["result"]["revision"] == 2


def test_a_store_truncated_to_zero_bytes_is_refused_and_left_as_it_is(tmp_path: Path) -> None:
    _work(tmp_path, kill=False)
    (tmp_path / STORE_FILE).write_bytes(b"")
    _refused(_start(tmp_path), "is empty")
    assert (tmp_path / STORE_FILE).read_bytes() == b""  # nothing was created over it


def test_a_store_with_its_wal_deleted_after_a_kill_is_refused(tmp_path: Path) -> None:
    _work(tmp_path, kill=True)
    wal = tmp_path / (STORE_FILE + "-wal")
    assert wal.exists() and wal.stat().st_size > 0  # the acknowledged snapshots are in it, not checkpointed
    wal.unlink()
    (tmp_path / (STORE_FILE + "-shm")).unlink(missing_ok=True)
    _refused(_start(tmp_path), "committed changes")


def test_an_older_copy_of_the_store_is_refused(tmp_path: Path) -> None:
    _work(tmp_path, kill=False)
    backup = tmp_path / "backup"
    backup.mkdir()
    shutil.copy2(tmp_path / STORE_FILE, backup / STORE_FILE)
    _work(tmp_path, kill=False)  # more acknowledged work after the copy
    shutil.copy2(backup / STORE_FILE, tmp_path / STORE_FILE)
    _refused(_start(tmp_path), "committed changes")


def test_accept_store_loss_starts_on_what_is_left_and_says_so(tmp_path: Path) -> None:
    auth = _work(tmp_path, kill=False)
    (tmp_path / STORE_FILE).write_bytes(b"")
    with server_process(tmp_path, "--accept-store-loss") as proc, client(proc.endpoint) as c:
        assert error_code(call(c, "session.resume", auth)) == "SessionNotFound"
    assert any("store loss accepted" in line for line in proc.stderr_lines())
    # Accepted once: the record now matches the store, so the next start needs no flag.
    with server_process(tmp_path) as proc, client(proc.endpoint) as c:
        assert call(c, "hello")["status"] == "success"


def test_a_store_from_before_the_high_water_record_starts_and_gets_one(tmp_path: Path) -> None:
    _work(tmp_path, kill=False)
    (tmp_path / HIGH_WATER_FILE).unlink()
    with server_process(tmp_path) as proc, client(proc.endpoint) as c:
        assert call(c, "hello")["status"] == "success"
    assert (tmp_path / HIGH_WATER_FILE).read_text().startswith("stui-high-water v1 commits=")


def test_an_unreadable_high_water_record_is_refused_not_ignored(tmp_path: Path) -> None:
    _work(tmp_path, kill=False)
    (tmp_path / HIGH_WATER_FILE).write_text("garbage")
    done = _start(tmp_path)
    assert done.returncode == 2 and "high-water" in done.stderr and "listening on" not in done.stderr
