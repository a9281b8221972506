"""`stui-conformance validate`: exit codes, input forms, output forms, and useful violation reports.

Runs the CLI in-process (`stui_protocol_kit.conformance.cli.main`) for speed and as a subprocess (`python -m
stui_protocol_kit.conformance.cli`) for what only a real process shows: piped output, stdin, the module entry point.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from stui_protocol_kit.conformance.cli import main
from stui_protocol_kit.conformance.output import Output, wants_color

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "spec" / "examples"
SID = "Xb3kQ9vR2mLp7TzW5nYc1A"
TOKEN = "q8Jf3LrT0vXy2NcW9aBd4KpZ7mQs1HuE6gYt5RiVo0A"


def message_of(vector: str) -> dict[str, Any]:
    return json.loads((EXAMPLES / vector).read_text(encoding="utf-8"))["message"]


def request(command: str, parameters: Any, rid: str = "r1") -> dict[str, Any]:
    return {"id": rid, "version": "1.0", "command": command, "parameters": parameters}


def write(tmp_path: Path, name: str, content: str | bytes) -> str:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return str(path)


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[dict[str, Any]]]:
    code = main(["validate", "--json", *args])
    out = capsys.readouterr().out
    return code, [json.loads(line) for line in out.splitlines()]


def run_cli(
    *args: str, stdin: bytes | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stui_protocol_kit.conformance.cli", *args], cwd=ROOT,
        input=stdin.decode() if stdin else None,
        capture_output=True, text=True, timeout=60, env={**os.environ, **(env or {})},
    )


# -- exit status ------------------------------------------------------------------------------------


def test_valid_messages_exit_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    chosen = (("requests", "hello"), ("requests", "session.create"),
              ("responses", "session.resume.success.live"), ("responses", "error.RevisionConflict"))
    files = [write(tmp_path, f"{name}.json", json.dumps(message_of(f"{folder}/valid/{name}.json")))
             for folder, name in chosen]
    assert main(["validate", *files]) == 0
    out = capsys.readouterr().out
    assert "4 messages: 4 valid, 0 invalid" in out


def test_any_invalid_message_exits_1(tmp_path: Path) -> None:
    good = write(tmp_path, "good.json", json.dumps(request("hello", {})))
    bad = write(tmp_path, "bad.json", json.dumps(request("hello", {"verbose": True})))
    assert main(["validate", good, bad]) == 1


@pytest.mark.parametrize("content", [b"not json at all", b"", b"\xff\xfe{}", b"[1, 2]", b'{"a": 1, "a": 2}'],
                         ids=["text", "empty", "not-utf8", "array", "duplicate-key"])
def test_unparseable_input_is_an_invalid_message_not_a_usage_error(tmp_path: Path, content: bytes,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    code, records = run_json(capsys, write(tmp_path, "x.json", content))
    assert code == 1
    assert len(records) == 1 and records[0]["error_code"] == "InvalidRequest"
    assert records[0]["reason"] in ("json", "encoding", "not_object")


@pytest.mark.parametrize("args", [["validate"], ["validate", "--as", "reply", "x.json"], ["bogus"], [],
                                  ["validate", "--max-message-bytes", "0", "x.json"]])
def test_bad_arguments_exit_2(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(args) == 2
    assert "usage:" in capsys.readouterr().err


def test_unreadable_file_exits_2_and_validates_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = write(tmp_path, "good.json", json.dumps(request("hello", {})))
    assert main(["validate", good, str(tmp_path / "missing.json")]) == 2
    captured = capsys.readouterr()
    assert "missing.json" in captured.err and captured.out == ""
    assert main(["validate", str(tmp_path)]) == 2
    assert "directory" in capsys.readouterr().err


def test_help_documents_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--help"]) == 0
    text = capsys.readouterr().out
    assert "exit status" in text
    for line in ("0  every message is valid", "1  at least one message is invalid", "2  usage error"):
        assert line in text
    assert main(["--help"]) == 0
    assert "exit status" in capsys.readouterr().out


# -- input forms ------------------------------------------------------------------------------------


def jsonl(*messages: Any) -> str:
    return "".join((m if isinstance(m, str) else json.dumps(m)) + "\n" for m in messages)


def test_json_lines_report_line_numbers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    content = jsonl(request("hello", {}), "", request("evaluate", {"session_id": SID, "token": TOKEN}),
                    "{broken", message_of("responses/valid/evaluate.success.json"))
    path = write(tmp_path, "t.jsonl", content)
    code, records = run_json(capsys, path)
    assert code == 1
    assert [(r["line"], r["valid"]) for r in records] == [(1, True), (3, False), (4, False), (5, True)]
    assert records[2]["reason"] == "json"
    assert main(["validate", path]) == 1
    out = capsys.readouterr().out
    assert f"{path}:3: INVALID request evaluate -> InvalidRequest (schema)" in out
    assert f"{path}:4: INVALID" in out


def test_json_lines_detected_without_the_suffix(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "transcript.log", jsonl(request("hello", {}), request("hello", {}, rid="r2")))
    code, records = run_json(capsys, path)
    assert code == 0 and [r["line"] for r in records] == [1, 2]


def test_pretty_printed_json_is_one_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "pretty.json", json.dumps(request("hello", {}), indent=2))
    code, records = run_json(capsys, path)
    assert code == 0 and len(records) == 1 and records[0]["line"] is None


def test_broken_pretty_json_is_one_invalid_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "broken.json", json.dumps(request("hello", {}), indent=2)[:-2])
    code, records = run_json(capsys, path)
    assert code == 1 and len(records) == 1 and records[0]["reason"] == "json"


def test_non_utf8_line_is_reported_at_its_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    body = json.dumps(request("hello", {})).encode()
    path = write(tmp_path, "t.jsonl", body + b"\n" + body.replace(b"r1", b"r\xff") + b"\n")
    code, records = run_json(capsys, path)
    assert code == 1
    assert (records[1]["line"], records[1]["reason"]) == (2, "encoding")


def test_stdin_in_process(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    data = jsonl(request("hello", {}), request("session.creat", {"client_id": "x"})).encode()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    code, records = run_json(capsys, "-")
    assert code == 1
    assert [(r["file"], r["line"], r["error_code"]) for r in records] == [("<stdin>", 1, None),
                                                                          ("<stdin>", 2, "UnknownCommand")]


def test_stdin_subprocess() -> None:
    done = run_cli("validate", "-", stdin=json.dumps(request("hello", {})).encode())
    assert done.returncode == 0, done.stderr
    assert "<stdin>: valid request hello" in done.stdout


def test_frame_limits_can_be_lowered(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "x.json", json.dumps(request("hello", {})))
    code, records = run_json(capsys, "--max-message-bytes", "10", path)
    assert code == 1 and records[0]["error_code"] == "PayloadTooLarge"


# -- direction ----------------------------------------------------------------------------------------


def test_direction_is_detected_per_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "mixed.jsonl", jsonl(request("hello", {}), message_of("responses/valid/hello.success.json")))
    code, records = run_json(capsys, path)
    assert code == 0 and [r["direction"] for r in records] == ["request", "response"]


def test_as_forces_the_direction(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    reply = write(tmp_path, "reply.json", json.dumps(message_of("responses/valid/hello.success.json")))
    code, records = run_json(capsys, "--as", "request", reply)
    assert code == 1
    assert records[0]["direction"] == "request" and records[0]["error_code"] == "InvalidRequest"
    req = write(tmp_path, "req.json", json.dumps(request("hello", {})))
    code, records = run_json(capsys, "--as", "response", req)
    assert code == 1 and records[0]["direction"] == "response" and records[0]["error_code"] is None
    assert run_json(capsys, "--as", "response", reply)[0] == 0


# -- what is reported -------------------------------------------------------------------------------------


def test_json_record_shape(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "x.json", json.dumps(request("session.resume", {"session_id": SID, "token": "short"})))
    code, records = run_json(capsys, path)
    assert code == 1
    (record,) = records
    assert list(record) == ["file", "line", "direction", "command", "valid", "error_code", "reason", "violations"]
    assert record["command"] == "session.resume" and record["reason"] == "schema"
    assert record["violations"]
    for violation in record["violations"]:
        assert list(violation) == ["path", "message", "rule", "requirement"]
        assert violation["path"] == "$.parameters.token"
    assert "minLength" in {v["rule"] for v in record["violations"]}


@pytest.mark.parametrize(
    ("message", "path", "rule", "words"),
    [
        (request("session.creat", {"client_id": "laptop"}), "$.command", "UnknownCommand", "session.create"),
        (request("evaluate", {"session_id": SID, "token": TOKEN}), "$.parameters", "required", '"code"'),
        (request("session.validate", {"session_id": SID, "token": 12345}), "$.parameters.token", "type", "string"),
        (request("session.snapshot", {"session_id": SID, "token": TOKEN, "expected_revision": 1800.0}),
         "$.parameters.expected_revision", "type", "integer"),
    ],
    ids=["near-miss-command", "missing-parameter", "ill-typed-parameter", "float-for-integer"],
)
def test_violation_is_reported_against_that_commands_schema(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                             message: dict[str, Any], path: str, rule: str,
                                                             words: str) -> None:
    code, records = run_json(capsys, write(tmp_path, "x.json", json.dumps(message)))
    assert code == 1
    (violation,) = records[0]["violations"]  # exactly one: no oneOf noise over every command
    assert (violation["path"], violation["rule"]) == (path, rule)
    assert words in violation["message"]


def test_vector_files_are_checked_with_vectors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--vectors", str(EXAMPLES)]) == 0
    assert "0 mismatched" in capsys.readouterr().out
    doc = json.loads((EXAMPLES / "requests/invalid/session.snapshot.expected_revision-null.json").read_text())
    doc["verdict"], doc["expect"] = "valid", {}
    flipped = write(tmp_path, "flipped.json", json.dumps(doc))
    assert main(["validate", "--vectors", flipped]) == 1
    assert "MISMATCH" in capsys.readouterr().out
    doc = json.loads((EXAMPLES / "frames/not-utf8.ff.json").read_text())
    doc["expect"]["reason"] = "json"
    assert main(["validate", "--vectors", write(tmp_path, "frame.json", json.dumps(doc))]) == 1


# -- rich or plain --------------------------------------------------------------------------------------------


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plain_when_piped() -> None:
    done = run_cli("validate", str(EXAMPLES / "requests/invalid/session.create.client_id-integer.json"),
                   env={"NO_COLOR": ""})
    # That vector file is not a message: validating it as one is invalid, and says so in plain text.
    assert done.returncode == 1
    assert "\x1b[" not in done.stdout
    assert "INVALID request" in done.stdout


def test_rich_on_a_terminal_unless_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    terminal = _Terminal()
    assert wants_color(terminal)
    out = Output(terminal)
    out.line("x.json: ", ("INVALID", "fail"), " [type]")
    assert "\x1b[" in terminal.getvalue() and "[type]" in terminal.getvalue()
    assert not wants_color(_Terminal(), no_color=True)
    monkeypatch.setenv("NO_COLOR", "1")
    assert not wants_color(_Terminal())
    assert not wants_color(io.StringIO())
