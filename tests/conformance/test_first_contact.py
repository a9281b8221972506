"""What a new user meets in the first hour: the CLI and the pytest plugin never hang, never leave
processes or temporary data behind, check what they can before the run, and write nothing into the
current directory unasked."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stui_protocol_kit.conformance.cli import main
from stui_protocol_kit.conformance.verbs import run_verb

ACCEPTED = ("tcp://HOST:PORT", "ipc://PATH")
CLI = [sys.executable, "-m", "stui_protocol_kit.conformance.cli"]
# A hung process fails its test after this long instead of hanging the suite (they exit within seconds).
HANG_S = 60


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "NO_COLOR": "1", **extra}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_every_verb_refuses_a_malformed_endpoint_at_once_with_the_accepted_forms(tmp_path: Path) -> None:
    # Before: pyzmq refused the address, a socket stayed open and the context's term() blocked forever.
    commands = {
        # (Every malformed form is refused by the one check: tests/protocol/test_endpoints.py.)
        "run 127.0.0.1:5555": ["run", "--target", "127.0.0.1:5555"],
        "run tcp://foo:bar": ["run", "--target", "tcp://foo:bar"],
        "replay": ["replay", "-", "--target", "localhost:5555"],
        "fuzz": ["fuzz", "--target", "tcp://localhost"],
        "proxy --upstream": ["proxy", "--listen", "tcp://127.0.0.1:0", "--upstream", "127.0.0.1:5555"],
        "proxy --listen": ["proxy", "--listen", "127.0.0.1:0", "--upstream", "tcp://127.0.0.1:5555"],
        "client-check": ["client-check", "--bind", "tcp://127.0.0.1:x", "--duration", "1"],
    }
    # All at once: each is a fresh interpreter, and a hang shows as a timeout of its own.
    running = {name: subprocess.Popen([*CLI, *args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True, cwd=tmp_path, env=_env())
               for name, args in commands.items()}
    hung, wrong = [], []
    deadline = time.monotonic() + HANG_S  # one deadline for all: they run side by side
    for name, process in running.items():
        try:
            out, err = process.communicate(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            hung.append(name)
            continue
        if process.returncode != 2 or not all(form in err for form in ACCEPTED) or "Traceback" in err:
            wrong.append((name, process.returncode, err[-400:]))
    assert not hung, f"hung: {hung}"
    assert not wrong


def test_the_plugin_stops_at_an_unreachable_target_with_one_message(tmp_path: Path) -> None:
    # Before: every one of the 184 items ran the whole run again, each waiting out hello (17 minutes).
    target = f"tcp://127.0.0.1:{_free_port()}"
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--stui-conformance",
                           "--stui-target", target, "--stui-timeout", "1"],
                          capture_output=True, text=True, cwd=tmp_path, env=_env(), timeout=HANG_S)
    output = done.stdout + done.stderr
    assert done.returncode == 2, output[-2000:]
    assert output.count("target unavailable") == 1, output[-2000:]
    assert "Traceback" not in output


def test_the_plugin_refuses_a_malformed_target_before_collecting(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--stui-conformance",
                           "--stui-target", "localhost:5555"],
                          capture_output=True, text=True, cwd=tmp_path, env=_env(), timeout=HANG_S)
    assert done.returncode == pytest.ExitCode.USAGE_ERROR, done.stdout + done.stderr
    assert all(form in done.stderr for form in ACCEPTED)


def test_every_plugin_option_has_help_text(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "pytest", "--help"], capture_output=True, text=True, cwd=tmp_path,
                          env=_env(COLUMNS="200"), timeout=HANG_S)
    lines = [line.strip() for line in done.stdout.splitlines()]
    options = [n for n, line in enumerate(lines) if line.startswith("--stui-")]
    assert len(options) >= 6
    # An option's help follows its name on the same line, or (a long name) on the next line, which is then
    # not another option and not the blank line that ends the group.
    bare = [lines[n] for n in options if len(lines[n].split(None, 1)) < 2
            and (n + 1 >= len(lines) or not lines[n + 1] or lines[n + 1].startswith("-"))]
    assert not bare, f"plugin options without help text: {bare}"


def test_report_paths_are_checked_before_the_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    def no_run(self: object) -> None:
        raise AssertionError("the run started before the report paths were checked")

    monkeypatch.setattr(run_verb.Runner, "run", no_run)
    for flag, path in [("--json", tmp_path / "missing" / "r.json"), ("--junit-xml", tmp_path),
                       ("--html", tmp_path / "no" / "r.html"), ("--write-baseline", tmp_path / "x" / "b.yaml")]:
        assert main(["run", "--select", "hello.*", flag, str(path)]) == 2
        assert f"cannot write {flag} {path}" in capsys.readouterr().err


def test_json_dash_writes_the_report_alone_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["run", "--select", "hello.success", "--json", "-", "--no-color"])
    out, err = capsys.readouterr()
    report = json.loads(out)  # nothing but the report on stdout
    assert report["verdict"] and [c["id"] for c in report["cases"]] == ["hello.success"]
    assert status == report["exit_code"]
    assert "hello.success" in err  # the progress and summary moved to stderr


def test_run_leaves_no_hypothesis_directory_in_the_current_directory(tmp_path: Path) -> None:
    # Before: loading the cases (hypothesis-jsonschema's import) and generating wrote ./.hypothesis.
    temp, asked = tmp_path / "tmp", tmp_path / "hypothesis-here"
    temp.mkdir()
    for args in (["run", "--select", "generated.valid-requests", "--examples", "1"],
                 ["run", "--list", "--hypothesis-dir", str(asked)]):
        done = subprocess.run([*CLI, *args], capture_output=True, text=True, cwd=tmp_path,
                              env=_env(TMPDIR=str(temp)), timeout=HANG_S)
        assert done.returncode == 0, done.stderr[-2000:]
    assert not (tmp_path / ".hypothesis").exists()
    assert not list(temp.iterdir()), "the run's temporary hypothesis directory was left behind"
    assert any(asked.iterdir()), "--hypothesis-dir was not used"


def _children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_stops_the_servers_removes_their_data_and_writes_partial_reports(
        tmp_path: Path, signum: int, status: int) -> None:
    temp = tmp_path / "tmp"  # the run's temporary directory: its servers' data directories go here
    temp.mkdir()
    report = tmp_path / "report.json"
    process = subprocess.Popen([*CLI, "run", "--json", str(report), "--junit-xml", str(tmp_path / "r.xml")],
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               cwd=tmp_path, env=_env(TMPDIR=str(temp)))
    servers: set[int] = set()
    try:
        deadline = time.monotonic() + HANG_S
        while len(servers) < 2 and time.monotonic() < deadline and process.poll() is None:
            servers = _children(process.pid)
            time.sleep(0.1)
        assert len(servers) == 2, "the two embedded servers did not start"
        while len(list(temp.glob("stui-conformance-*"))) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.5)  # some cases finish, some do not
        process.send_signal(signum)
        out, err = process.communicate(timeout=HANG_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
        for pid in servers:  # before the fix they outlived the run: do not leave them to the next test
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
    assert process.returncode == status, err[-2000:]
    assert "Traceback" not in err
    assert f"interrupted by {signal.Signals(signum).name}" in err
    assert not [pid for pid in servers if _alive(pid)], "an embedded server outlived the run"
    assert not list(temp.glob("stui-conformance-*")), "a server's data directory was left behind"
    written = json.loads(report.read_text())
    assert written["partial"] is True
    assert written["verdict"] != "PASS"  # a partial run never passes
    assert any(c.get("reason") == "not run: the run was interrupted" for c in written["cases"])
    assert 'name="partial" value="true"' in (tmp_path / "r.xml").read_text()


def test_version_names_kit_spec_edition_and_protocol(capsys: pytest.CaptureFixture[str]) -> None:
    from stui_protocol_kit.protocol.facts import PROTOCOL_VERSION
    from stui_protocol_kit.protocol.requirements import spec_edition
    from stui_protocol_kit.reference_server.cli import main as server_main

    assert main(["--version"]) == 0
    conformance = capsys.readouterr().out
    with pytest.raises(SystemExit) as done:
        server_main(["--version"])
    assert done.value.code == 0
    server = capsys.readouterr().out
    for command, out in (("stui-conformance", conformance), ("stui-reference-server", server)):
        assert out.startswith(command + " ") and f"spec edition {spec_edition()}" in out, out
        assert f"protocol version {PROTOCOL_VERSION}" in out


@pytest.mark.parametrize(("argv", "meant"), [
    (["run", "--taget", "tcp://127.0.0.1:5555"], "--target"),
    (["run", "--targ", "tcp://127.0.0.1:5555"], "--target"),  # no abbreviations: suggested, not guessed
    (["validate", "-", "--as-json"], "--json"),
    (["replay", "x.jsonl", "--comapre"], "--compare"),
])
def test_a_mistyped_flag_suggests_the_nearest(argv: list[str], meant: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert f"did you mean {meant}?" in capsys.readouterr().err


def test_a_mistyped_server_flag_suggests_the_nearest(capsys: pytest.CaptureFixture[str]) -> None:
    from stui_protocol_kit.reference_server.cli import build_parser

    with pytest.raises(SystemExit) as done:
        build_parser().parse_args(["--idle-timout", "3"])
    assert done.value.code == 2
    assert "did you mean --idle-timeout?" in capsys.readouterr().err


def test_every_reference_server_option_says_what_it_is_with_its_default() -> None:
    from stui_protocol_kit.reference_server.cli import build_parser

    parser = build_parser()
    vague = []
    for action in parser._actions:
        if not action.option_strings or action.dest in ("help", "version"):
            continue
        text = action.help or ""
        if "default" not in text or len(text) < 25:
            vague.append(action.option_strings[0])
        if action.metavar == "S" and "second" not in text:
            vague.append(f"{action.option_strings[0]} (unit)")
    assert not vague, vague


def test_a_bom_is_reported_as_a_bom(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    hello = b'{"id": "1", "version": "1.0", "command": "hello", "parameters": {}}'
    for name in ("bom.json", "bom.jsonl"):
        (tmp_path / name).write_bytes(b"\xef\xbb\xbf" + hello + b"\n")
        assert main(["validate", str(tmp_path / name)]) == 1
        out = capsys.readouterr().out
        assert "byte order mark (BOM" in out and "Expecting value" not in out


@pytest.mark.parametrize("content", [b"", b"\n\n   \n", b"\r\n"])
def test_an_input_of_blank_lines_is_no_messages_and_exit_2(tmp_path: Path, content: bytes,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("captured.jsonl", "captured.ndjson"):
        (tmp_path / name).write_bytes(content)
        assert main(["validate", str(tmp_path / name)]) == 2
        assert "no messages" in capsys.readouterr().err
