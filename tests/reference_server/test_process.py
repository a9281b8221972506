"""The real `python -m stui_protocol_kit.reference_server.cli` process: readiness line, SIGTERM exit 0, persistence
across restart, SIGKILL during a snapshot storm, and refusal to start on a corrupt store."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest
from rs_harness import REPO, call, client, error_code, server_process

from stui_protocol_kit.protocol.client import ReplyTimeout
from stui_protocol_kit.protocol.server_process import ServerProcess, ServerStartError
from stui_protocol_kit.reference_server.sqlite_store import STORE_FILE


def test_state_survives_restart_and_sigterm_exits_zero(tmp_path: Path) -> None:
    with server_process(tmp_path, "--strict") as proc, client(proc.endpoint) as c:
        created = call(c, "session.create", {"client_id": "restart"})["result"]
        auth = {"session_id": created["session_id"], "token": created["token"]}
        call(c, "evaluate", {**auth, "code": "greeting := 'hello' , ' world'"})
        call(c, "inspect", {**auth, "expression": "40 + 2"})
        snap = call(c, "session.snapshot", {**auth, "state": {"inspector": {"zoom": 1.25}}}, rid="snap")
        with client(proc.endpoint) as other:
            closed = call(other, "session.create", {"client_id": "restart"})["result"]
        call(c, "session.close", {"session_id": closed["session_id"], "token": closed["token"]})
    assert proc.process is not None and proc.process.returncode == 0  # SIGTERM: finish and exit 0

    with server_process(tmp_path, "--strict") as proc, client(proc.endpoint) as c:
        result = call(c, "session.resume", auth)["result"]
        assert result["source"] == "durable" and result["revision"] == 1
        assert result["state"]["workspace"]["variables"]["greeting"]["print_string"] == "'hello world'"
        assert result["state"]["inspector"] == {"zoom": 1.25}
        assert list(result["state"]["objects"].values()) == [{"class": "SmallInteger", "print_string": "42"}]
        assert call(c, "evaluate", {**auth, "code": "greeting , '!'"})["result"]["print_string"] == "'hello world!'"
        assert call(c, "session.snapshot", {**auth, "state": {"inspector": {"zoom": 1.25}}}, rid="snap") == snap
        gone = call(c, "session.validate", {"session_id": closed["session_id"], "token": closed["token"]})
        assert error_code(gone) == "SessionClosed"
    assert proc.process.returncode == 0


def test_sigkill_during_snapshot_storm_loses_no_acknowledged_revision(tmp_path: Path) -> None:
    proc = server_process(tmp_path)
    with proc, client(proc.endpoint) as setup:
        sessions = []
        for _ in range(3):
            created = call(setup, "session.create", {"client_id": "storm"})["result"]
            sessions.append({"session_id": created["session_id"], "token": created["token"]})
        acked: dict[str, int] = {s["session_id"]: 0 for s in sessions}
        problems: list[str] = []  # a thread's failed assert would be lost: collected and asserted below
        enough = threading.Event()

        def storm(auth: dict[str, str]) -> None:
            with client(proc.endpoint, timeout_s=2.0) as c:
                try:
                    for i in range(1, 10_000):
                        reply = call(c, "session.snapshot", {**auth, "state": {"preferences": {"n": i}}})
                        revision = reply.get("result", {}).get("revision")
                        if revision != i:
                            problems.append(f"snapshot {i} of {auth['session_id'][:8]} answered {reply}")
                            return
                        acked[auth["session_id"]] = revision
                        if i >= 30:
                            enough.set()
                except ReplyTimeout:
                    pass  # the server died mid-request: that reply was never acknowledged

        threads = [threading.Thread(target=storm, args=(s,)) for s in sessions]
        for t in threads:
            t.start()
        assert enough.wait(30)
        proc.kill()
        for t in threads:
            t.join(10)
    assert problems == []

    with server_process(tmp_path) as proc, client(proc.endpoint) as c:
        for auth in sessions:
            result = call(c, "session.resume", auth)["result"]
            assert result["revision"] >= acked[auth["session_id"]] > 0
            assert result["state"]["preferences"] == {"n": result["revision"]}  # exactly that revision's state
            assert "fallback" not in result
            assert call(c, "session.snapshot", auth)["result"]["revision"] == result["revision"] + 1
    assert proc.process.returncode == 0


def test_corrupt_store_stops_startup_with_message_and_nonzero_exit(tmp_path: Path) -> None:
    (tmp_path / STORE_FILE).write_bytes(b"garbage, not SQLite " * 500)
    before = (tmp_path / STORE_FILE).read_bytes()
    done = subprocess.run(
        [sys.executable, "-m", "stui_protocol_kit.reference_server.cli", "--bind", "tcp://127.0.0.1:0",
         "--data-dir", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=30,
    )
    assert done.returncode != 0
    assert "cannot start" in done.stderr and STORE_FILE in done.stderr
    assert "listening on" not in done.stderr
    assert (tmp_path / STORE_FILE).read_bytes() == before


def test_request_log_lines_carry_session_prefix_but_never_token(tmp_path: Path) -> None:
    with server_process(tmp_path, log_level="debug") as proc, client(proc.endpoint) as c:
        created = call(c, "session.create", {"client_id": "log"})["result"]
        auth = {"session_id": created["session_id"], "token": created["token"]}
        call(c, "session.validate", auth)
        call(c, "evaluate", {**auth, "code": "1 +"})
        call(c, "session.close", auth)
    assert proc.process is not None and proc.process.returncode == 0
    output = proc.output_after_exit()
    requests = [line for line in output.splitlines() if " request command=" in line]
    assert [line.split(" request ", 1)[1].split(" duration_us=")[0] for line in requests] == [
        "command=session.create session=" + auth["session_id"][:8] + " outcome=success",
        "command=session.validate session=" + auth["session_id"][:8] + " outcome=success",
        "command=evaluate session=" + auth["session_id"][:8] + " outcome=EvaluationError",
        "command=session.close session=" + auth["session_id"][:8] + " outcome=success",
    ]  # one line per request, in order
    assert auth["token"] not in output and auth["session_id"] not in output


def test_a_server_that_never_says_it_listens_is_stopped_after_the_ready_timeout(tmp_path: Path) -> None:
    hung = ServerProcess([sys.executable, "-c", "import time; time.sleep(600)"], ready_timeout_s=1.0, name="hung")
    with pytest.raises(ServerStartError, match="did not say it listens within 1s"):
        hung.start()
    assert hung.process is not None and hung.process.poll() is not None  # killed, not left running


def test_a_server_that_exits_before_listening_reports_its_status_and_stderr(tmp_path: Path) -> None:
    dying = ServerProcess([sys.executable, "-c", "import sys; print('no store', file=sys.stderr); sys.exit(2)"],
                          ready_timeout_s=30, name="dying")
    with pytest.raises(ServerStartError) as caught:
        dying.start()
    assert caught.value.returncode == 2 and "no store" in caught.value.stderr_tail
