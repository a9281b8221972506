"""The real `python -m stui_protocol_kit.reference_server.cli` process: readiness line, SIGTERM exit 0, persistence
across restart, SIGKILL during a snapshot storm, and refusal to start on a corrupt store."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import zmq
from rs_harness import REPO, Client, error_code, start_server_process
from stui_protocol_kit.reference_server.storage import STORE_FILE


@pytest.fixture
def context():
    ctx = zmq.Context()
    yield ctx
    ctx.term()


def _stop(proc: subprocess.Popen) -> int:
    proc.send_signal(signal.SIGTERM)
    return proc.wait(15)


def test_state_survives_restart_and_sigterm_exits_zero(tmp_path: Path, context) -> None:
    proc, endpoint = start_server_process(tmp_path, "--strict")
    client = Client(context, endpoint)
    created = client.call("session.create", {"client_id": "restart"})["result"]
    auth = {"session_id": created["session_id"], "token": created["token"]}
    client.call("evaluate", {**auth, "code": "greeting := 'hello' , ' world'"})
    client.call("inspect", {**auth, "expression": "40 + 2"})
    snap = client.call("session.snapshot", {**auth, "state": {"inspector": {"zoom": 1.25}}}, rid="snap")
    closed = Client(context, endpoint).call("session.create", {"client_id": "restart"})["result"]
    client.call("session.close", {"session_id": closed["session_id"], "token": closed["token"]})
    client.close()
    assert _stop(proc) == 0

    proc, endpoint = start_server_process(tmp_path, "--strict")
    client = Client(context, endpoint)
    result = client.call("session.resume", auth)["result"]
    assert result["source"] == "durable" and result["revision"] == 1
    assert result["state"]["workspace"]["variables"]["greeting"]["print_string"] == "'hello world'"
    assert result["state"]["inspector"] == {"zoom": 1.25}
    assert list(result["state"]["objects"].values()) == [{"class": "SmallInteger", "print_string": "42"}]
    assert client.call("evaluate", {**auth, "code": "greeting , '!'"})["result"]["print_string"] == "'hello world!'"
    assert client.call("session.snapshot", {**auth, "state": {"inspector": {"zoom": 1.25}}}, rid="snap") == snap
    gone = client.call("session.validate", {"session_id": closed["session_id"], "token": closed["token"]})
    assert error_code(gone) == "SessionClosed"
    client.close()
    assert _stop(proc) == 0


def test_sigkill_during_snapshot_storm_loses_no_acknowledged_revision(tmp_path: Path, context) -> None:
    proc, endpoint = start_server_process(tmp_path)
    setup = Client(context, endpoint)
    sessions = []
    for _ in range(3):
        created = setup.call("session.create", {"client_id": "storm"})["result"]
        sessions.append({"session_id": created["session_id"], "token": created["token"]})
    setup.close()
    acked: dict[str, int] = {s["session_id"]: 0 for s in sessions}
    enough = threading.Event()

    def storm(auth: dict[str, str]) -> None:
        client = Client(context, endpoint, timeout_ms=2000)
        try:
            for i in range(1, 10_000):
                reply = client.call("session.snapshot", {**auth, "state": {"preferences": {"n": i}}})
                acked[auth["session_id"]] = reply["result"]["revision"]
                assert reply["result"]["revision"] == i
                if i >= 30:
                    enough.set()
        except zmq.Again:
            pass  # the server died mid-request: that reply was never acknowledged
        finally:
            client.close()

    threads = [threading.Thread(target=storm, args=(s,)) for s in sessions]
    for t in threads:
        t.start()
    assert enough.wait(30)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    for t in threads:
        t.join(10)

    proc, endpoint = start_server_process(tmp_path)
    client = Client(context, endpoint)
    for auth in sessions:
        result = client.call("session.resume", auth)["result"]
        assert result["revision"] >= acked[auth["session_id"]] > 0
        assert result["state"]["preferences"] == {"n": result["revision"]}  # exactly that revision's state
        assert "fallback" not in result
        assert client.call("session.snapshot", auth)["result"]["revision"] == result["revision"] + 1
    client.close()
    assert _stop(proc) == 0


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


def test_request_log_lines_carry_session_prefix_but_never_token(tmp_path: Path, context) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "stui_protocol_kit.reference_server.cli", "--bind", "tcp://127.0.0.1:0",
         "--data-dir", str(tmp_path),
         "--log-level", "debug"],
        cwd=REPO, stderr=subprocess.PIPE, text=True,
    )
    assert proc.stderr is not None
    endpoint = ""
    for line in proc.stderr:
        if line.startswith("listening on "):
            endpoint = line.split()[-1]
            break
    client = Client(context, endpoint)
    created = client.call("session.create", {"client_id": "log"})["result"]
    auth = {"session_id": created["session_id"], "token": created["token"]}
    client.call("session.validate", auth)
    client.call("evaluate", {**auth, "code": "1 +"})
    client.call("session.close", auth)
    client.close()
    proc.send_signal(signal.SIGTERM)
    output = proc.stderr.read()
    assert proc.wait(15) == 0
    assert f"command=session.validate session={auth['session_id'][:8]} outcome=success" in output
    assert "outcome=EvaluationError" in output
    assert auth["token"] not in output and auth["session_id"] not in output
    json.dumps(output)  # plain text, one line per request
