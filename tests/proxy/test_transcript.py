"""Transcripts end to end: `stui-conformance proxy` as a process between scripted clients and the reference
server (a process too) records one; the format is schema-checked line by line; `validate` finds in it what
the proxy found live; `replay` sends it to another server with the redacted tokens mapped to new ones,
and `--compare` tells a recording of a faulty server from a correct one.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from cc_clients import Link, create, good_session, hello, request

from stui_protocol_kit.conformance.formats import FormatError
from stui_protocol_kit.conformance.transcript import mask_token_like, parse_transcript, read_transcript
from stui_protocol_kit.protocol.codec import FrameError, decode_body

CLI = [sys.executable, "-m", "stui_protocol_kit.conformance.cli"]


class ProxyProcess:
    def __init__(self, upstream: str, tmp: Path, *args: str) -> None:
        self.transcript, self.violations = tmp / "transcript.jsonl", tmp / "violations.jsonl"
        self.process = subprocess.Popen(
            [*CLI, "proxy", "--listen", "tcp://127.0.0.1:0", "--upstream", upstream, "--transcript",
             str(self.transcript), "--violations", str(self.violations), "--no-color", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        first = self.process.stdout.readline()
        assert first.startswith("listening on "), first + self.process.stderr.read()
        self.endpoint = first.split()[-1]

    def stop(self) -> tuple[int, str]:
        self.process.send_signal(signal.SIGTERM)
        out, _ = self.process.communicate(timeout=30)
        return self.process.returncode, out


@pytest.fixture
def proxy_process(tmp_path):
    started: list[ProxyProcess] = []

    def start(upstream: str, *args: str) -> ProxyProcess:
        started.append(ProxyProcess(upstream, tmp_path, *args))
        return started[-1]

    yield start
    for running in started:
        if running.process.poll() is None:
            running.process.kill()
            running.process.communicate()


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=300)


def test_a_recorded_session_is_valid_and_replays_against_another_server(proxy_process, server) -> None:
    running = proxy_process(server())
    good_session(running.endpoint, "dealer", iterations=1)
    good_session(running.endpoint, "req", iterations=1)
    link = Link(running.endpoint)
    try:
        hello(link)
        session = create(link, "objects")
        made = link.call("inspect", session.params(expression="3 + 4"))["result"]["object_id"]
        assert link.call("inspect", session.params(object_id=made))["status"] == "success"
        link.call("session.close", session.params())
    finally:
        link.close()
    status, out = running.stop()
    assert status == 0, out
    assert "no MUST requirement broken" in out
    transcript = read_transcript(running.transcript)  # every line against the schema
    assert transcript.header["upstream"].startswith("tcp://")
    events = {r["event"] for r in transcript.records if "event" in r}
    assert {"connect", "end"} <= events

    validated = cli("validate", str(running.transcript), "--no-color")
    assert validated.returncode == 0, validated.stdout
    replayed = cli("replay", str(running.transcript), "--compare")
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert "sessions the server issues" in replayed.stdout and "no failure" in replayed.stdout


def test_violations_found_live_are_found_again_in_the_transcript(proxy_process, server) -> None:
    running = proxy_process(server())
    link = Link(running.endpoint)
    try:
        session = create(link, "broken")  # no hello: VER-4
        link.call("evaluate", {**session.params(code="1"), "bogus": 1})  # CLT-2
        link.send_raw([b'{"id": "dup", "id": "dup"}'])  # CLT-1: duplicate member names
        assert link.receive(2.0)["error"]["details"]["reason"] == "json"
    finally:
        link.close()
    status, out = running.stop()
    assert status == 1, out
    live = [json.loads(line) for line in running.violations.read_text().splitlines()]
    assert [v["requirement"] for v in live] == ["VER-4", "CLT-2", "CLT-1"]
    assert {v["level"] for v in live} == {"SHOULD", "MUST"}
    assert "VIOLATION [CLT-2]" in out
    validated = cli("validate", "--json", str(running.transcript))
    assert validated.returncode == 1
    found = [v["requirement"] for line in validated.stdout.splitlines() for v in json.loads(line)["violations"]]
    assert found == ["VER-4", "CLT-2", "CLT-1"]


def test_replay_compare_tells_a_faulty_recording_from_a_correct_server(proxy_process, server) -> None:
    running = proxy_process(server("evaluate-wrong-class"))
    link = Link(running.endpoint)
    try:
        hello(link)
        session = create(link, "compare")
        link.call("evaluate", session.params(code="1152921504606846975 + 1"))  # 2^60: LargePositiveInteger
        link.call("session.close", session.params())
    finally:
        link.close()
    running.stop()
    replayed = cli("replay", str(running.transcript), "--compare")
    assert replayed.returncode == 1, replayed.stdout
    assert "where the spec allows no choice" in replayed.stdout and "$.result.class" in replayed.stdout
    assert cli("replay", str(running.transcript)).returncode == 0  # without --compare: reported, not failed


def test_the_format_refuses_what_it_does_not_describe(tmp_path) -> None:
    header = {"transcript": "stui", "format_version": 1, "kit": {"name": "stui-protocol-kit", "version": "0"},
              "spec": {"edition": "1.0.0", "protocol_version": "1.0"}, "started_at": "2026-12-02T10:00:00.000Z",
              "recorder": "proxy"}
    message = {"t": 0.1, "at": "2026-12-02T10:00:00.100Z", "direction": "request", "connection": "c1",
               "framing": "dealer", "bytes": 2, "message": {}}
    good = "\n".join(json.dumps(r) for r in (header, message)) + "\n"
    assert len(parse_transcript(good).records) == 1
    for broken, where in (
        ({**message, "direction": "sideways"}, "t:2"),
        ({k: v for k, v in message.items() if k != "bytes"}, "t:2"),
        ({**message, "frames_base64": ["e30="]}, "t:2"),  # both a message and frames
        (header, "t:2"),  # a second header
    ):
        with pytest.raises(FormatError, match=where):
            parse_transcript(json.dumps(header) + "\n" + json.dumps(broken) + "\n", "t")
    with pytest.raises(FormatError, match="header"):
        parse_transcript(json.dumps(message) + "\n", "t")


@pytest.mark.parametrize("body", [
    b'{"id": "' + b"A" * 60 + b'", "version": "1.0"',  # not JSON: cut short
    b'{"token": "' + b"t" * 43 + b'", "token": 1}',  # duplicate member names
    b'[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[' + b"x" * 50,  # too deep and not JSON
    "{\"a\": \"é".encode() + b"\xff" + b"B" * 50,  # not UTF-8
])
def test_masking_token_shaped_runs_keeps_what_a_server_would_answer(body) -> None:
    masked = mask_token_like(body)
    assert len(masked) == len(body) and b"A" * 43 not in masked and b"t" * 43 not in masked

    def verdict(data: bytes) -> tuple[str | None, str | None]:
        try:
            decode_body(data, max_bytes=65536, max_depth=32)
        except FrameError as exc:
            return exc.code, exc.reason
        return None, None

    assert verdict(masked) == verdict(body)


def test_a_body_that_is_not_json_is_recorded_masked_and_validates_as_it_failed(proxy_process, server) -> None:
    running = proxy_process(server())
    link = Link(running.endpoint)
    secret_shaped = "S" * 50
    try:
        link.send_raw([f'{{"id": "{secret_shaped}", '.encode()])
        assert link.receive(2.0)["error"]["details"]["reason"] == "json"
        link.send_raw([json.dumps(request("hello", {})).encode(), b"second frame"])
        assert link.receive(2.0)["error"]["details"]["reason"] == "frames"
    finally:
        link.close()
    running.stop()
    text = running.transcript.read_text()
    assert secret_shaped not in text
    requests = [r for r in read_transcript(running.transcript).messages() if r["direction"] == "request"]
    assert [len(r["frames_base64"]) for r in requests] == [1, 2]
    validated = cli("validate", "--json", str(running.transcript))
    rules = [v["rule"] for line in validated.stdout.splitlines() for v in json.loads(line)["violations"]]
    assert rules == ["json", "frames"]


def test_proxy_usage_errors_exit_2(server) -> None:
    assert cli("proxy", "--listen", "tcp://127.0.0.1:0").returncode == 2  # --upstream missing
    upstream = server()
    taken = subprocess.run([*CLI, "proxy", "--listen", upstream, "--upstream", upstream], capture_output=True,
                           text=True, timeout=60)
    assert taken.returncode == 2 and "cannot listen" in taken.stderr


@pytest.mark.parametrize("judge", ["process", "thread"])
def test_fail_fast_ends_the_proxy_process_with_exit_1(server, tmp_path, judge) -> None:
    upstream = server()
    process = subprocess.Popen([*CLI, "proxy", "--listen", "tcp://127.0.0.1:0", "--upstream", upstream, "--fail-fast",
                                "--judge", judge, "--no-color"], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        endpoint = process.stdout.readline().split()[-1]
        link = Link(endpoint)
        try:
            hello(link)
            link.send_raw([json.dumps(request("session.create", {"client_id": "x", "extra": 1})).encode()])
            status = process.wait(30)
        finally:
            link.close()
        out = process.stdout.read()
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()
    assert status == 1
    assert "VIOLATION [CLT-2]" in out and "stopped at the first MUST violation" in out
