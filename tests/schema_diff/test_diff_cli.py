"""`stui-conformance diff` as a command: exit status, the four output formats, the override file,
usage errors, and the rule table in docs/schema-diff.md.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from schema_pairs import ROOT, SNAPSHOT, Pair, params, result, set_probe

from stui_protocol_kit.conformance.cli import main
from stui_protocol_kit.conformance.schema_diff.rules import RULES, markdown_table


@pytest.fixture
def breaking(tmp_path: Path) -> Pair:
    """A pair whose only change is a new required request member."""
    return Pair(tmp_path / "breaking").edit(SNAPSHOT, set_probe(params, {"type": "string"}, required=True))


@pytest.fixture
def compatible(tmp_path: Path) -> Pair:
    """A pair whose only change is a new optional result member (under a minor version bump)."""
    pair = Pair(tmp_path / "compatible").edit(SNAPSHOT, set_probe(result, {"type": "string"}))
    pair.set_version("1.1")
    return pair.set_edition("1.1.0")


def run(pair: Pair, *args: str) -> list[str]:
    return ["diff", str(pair.root / "old"), str(pair.root / "new"), "--witness-examples", "40", *args]


def test_exit_status_follows_the_verdict(breaking: Pair, compatible: Pair, tmp_path: Path) -> None:
    assert main(run(breaking)) == 1
    assert main(run(compatible)) == 0
    assert main(["diff", str(ROOT), str(ROOT)]) == 0


def test_fail_on(breaking: Pair, tmp_path: Path) -> None:
    assert main(run(breaking, "--fail-on", "never")) == 0
    unbumped = Pair(tmp_path / "unbumped").edit(SNAPSHOT, set_probe(result, {"type": "string"}))
    assert main(run(unbumped)) == 0  # VERSION-BUMP-ADVISED is a warning
    assert main(run(unbumped, "--fail-on", "warning")) == 1


def test_text_is_plain_when_piped(breaking: Pair, capsys: pytest.CaptureFixture[str]) -> None:
    main(run(breaking))
    out = capsys.readouterr().out
    assert "\x1b[" not in out
    assert "BREAKING REQ-MEMBER-REQUIRED-ADDED (breaking for old clients and old servers)" in out
    assert "witness for old clients: an old client's request that a new server rejects" in out
    assert 'new rejects: $.parameters: "probe" is a required property' in out
    assert "witness for old servers: a new client's request that an old server rejects" in out
    assert "BREAKING VERSION-MAJOR-REQUIRED" in out
    assert out.rstrip().endswith("-> exit 1")


def test_json(breaking: Pair, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(run(breaking, "--json")) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["exit_status"] == 1 and report["counts"]["breaking"] == 2
    change = next(c for c in report["changes"] if c["rule"] == "REQ-MEMBER-REQUIRED-ADDED")
    assert change["places"] == [{"kind": "request session.snapshot", "path": "$.parameters"}]
    assert change["location"] == "commands/session.snapshot.json#/$defs/Parameters $"
    for outcome in change["witnesses"]:
        assert outcome["found"]
        checks = outcome["witness"]["checks"]
        accepted = outcome["witness"]["accepted_by"]
        rejected = "new" if accepted == "old" else "old"
        assert checks[accepted] == {"jsonschema": True, "jsonschema_rs": True}
        assert checks[rejected] == {"jsonschema": False, "jsonschema_rs": False}


def test_junit(breaking: Pair, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "diff.xml"
    assert main(run(breaking, "--format", "junit", "--junit-xml", str(target))) == 1
    for text in (capsys.readouterr().out, target.read_text()):
        suite = ET.fromstring(text.encode()).find("testsuite")
        assert suite is not None and suite.get("failures") == "2"
        names = [case.get("classname") for case in suite.iter("testcase")]
        assert "schema-diff.REQ-MEMBER-REQUIRED-ADDED" in names


def test_junit_without_changes_has_one_passing_case(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diff", str(ROOT), str(ROOT), "--format", "junit"]) == 0
    suite = ET.fromstring(capsys.readouterr().out.encode()).find("testsuite")
    assert suite is not None and suite.get("tests") == "1" and suite.get("failures") == "0"


def test_markdown(breaking: Pair, tmp_path: Path) -> None:
    target = tmp_path / "comment.md"
    assert main(run(breaking, "--format", "markdown", "--output", str(target))) == 1
    text = target.read_text()
    assert text.startswith("## STUI protocol schema diff: **breaking**")
    assert "| breaking | `REQ-MEMBER-REQUIRED-ADDED` |" in text
    assert "```json" in text and '"probe"' in text


def test_the_report_is_deterministic(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pair = Pair(tmp_path / "pattern")
    pair.edit("common.json", lambda d: d["$defs"]["Token"].__setitem__("pattern", "^[A-Za-z0-9_]{43,64}$"))
    assert main(run(pair, "--json")) == 1
    here = json.loads(capsys.readouterr().out)
    # Another process, another hash seed: the same report.
    done = subprocess.run([sys.executable, "-m", "stui_protocol_kit.conformance.cli", *run(pair, "--json")],
                          capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONHASHSEED": "12345"})
    there = json.loads(done.stdout)
    reports = [here, there]
    for report in reports:
        report.pop("duration_s")
    assert reports[0] == reports[1]
    assert any(w["found"] for c in reports[0]["changes"] for w in c["witnesses"])


def test_no_witness(breaking: Pair, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(run(breaking, "--no-witness", "--json")) == 1
    report = json.loads(capsys.readouterr().out)
    assert all(c["witnesses"] == [] for c in report["changes"]) and report["witnesses_searched"] is False


# -- overrides --------------------------------------------------------------------------------------------


def write_overrides(tmp_path: Path, text: str) -> str:
    path = tmp_path / "overrides.yaml"
    path.write_text(text)
    return str(path)


def test_override_accepts_a_break_knowingly(breaking: Pair, tmp_path: Path, capsys) -> None:
    overrides = write_overrides(tmp_path, """
overrides:
  - rule: REQ-MEMBER-REQUIRED-ADDED
    severity: warning
    reason: every client was updated in the same release
""")
    assert main(run(breaking, "--overrides", overrides)) == 0
    out = capsys.readouterr().out
    assert "WARNING REQ-MEMBER-REQUIRED-ADDED" in out
    assert "override: breaking -> warning: every client was updated in the same release" in out
    assert "VERSION-MAJOR-REQUIRED" not in out  # the only break was accepted


def test_ignored_change_is_still_listed(breaking: Pair, tmp_path: Path, capsys) -> None:
    overrides = write_overrides(tmp_path, """
REQ-MEMBER-REQUIRED-ADDED: {severity: ignore, reason: "a test"}
""")
    assert main(run(breaking, "--overrides", overrides)) == 0
    assert "ignored by overrides (1):" in capsys.readouterr().out


def test_override_scoped_by_where(breaking: Pair, tmp_path: Path) -> None:
    elsewhere = write_overrides(tmp_path, """
overrides:
  - {rule: REQ-MEMBER-REQUIRED-ADDED, severity: ignore, reason: "only evaluate", where: "request evaluate *"}
""")
    assert main(run(breaking, "--overrides", elsewhere)) == 1
    here = write_overrides(tmp_path, """
overrides:
  - {rule: REQ-MEMBER-REQUIRED-ADDED, severity: ignore, reason: "snapshot", where: "request session.snapshot $.param*"}
""")
    assert main(run(breaking, "--overrides", here)) == 0


@pytest.mark.parametrize(("text", "message"), [
    ("overrides:\n  - {rule: REQ-MEMBER-REQUIRED-ADDED, severity: ignore}\n", "a reason is required"),
    ("overrides:\n  - {rule: REQ-MEMBER-REQUIRED-ADDED, severity: ignore, reason: '  '}\n", "a reason is required"),
    ("overrides:\n  - {rule: NO-SUCH-RULE, severity: ignore, reason: x}\n", "unknown rule"),
    ("overrides:\n  - {rule: REQ-MEMBER-REQUIRED-ADDED, severity: fatal, reason: x}\n", "severity must be"),
    ("overrides:\n  - {rule: REQ-MEMBER-REQUIRED-ADDED, severity: info, reason: x, path: y}\n", "unknown key"),
    ("[1, 2]\n", "expected a mapping"),
    ("overrides: {\n", "not YAML"),
])
def test_bad_override_file_is_a_usage_error(breaking: Pair, tmp_path: Path, capsys, text: str, message: str) -> None:
    assert main(run(breaking, "--overrides", write_overrides(tmp_path, text))) == 2
    assert message in capsys.readouterr().err


# -- usage errors ---------------------------------------------------------------------------------------------


def test_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["diff", str(empty), str(ROOT)]) == 2
    assert "neither a schemas directory" in capsys.readouterr().err
    broken = Pair(tmp_path / "broken")
    (broken.schemas("new") / "common.json").write_text("{ broken")
    assert main(run(broken)) == 2
    assert "cannot load the schemas" in capsys.readouterr().err
    unbundled = Pair(tmp_path / "unbundled").edit("commands/hello.json", lambda d: d["$defs"].pop("Result"))
    assert main(run(unbundled)) == 2
    assert "cannot be bundled" in capsys.readouterr().err
    assert main(["diff", str(ROOT)]) == 2  # NEW missing: argparse
    assert main(["diff", str(ROOT), str(ROOT), "--overrides", str(tmp_path / "missing.yaml")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_schemas_directory_itself_is_accepted(breaking: Pair, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diff", str(breaking.schemas("old")), str(breaking.schemas("new")), "--witness-examples", "40"]) == 1
    edition = re.search(r"Spec edition: \*\*([0-9.]+)\*\*", (ROOT / "spec" / "README.md").read_text(encoding="utf-8"))
    assert edition is not None
    assert f"spec edition {edition.group(1)}" in capsys.readouterr().out  # found beside the schemas directory


def test_module_entry_point_and_pipe(breaking: Pair) -> None:
    done = subprocess.run([sys.executable, "-m", "stui_protocol_kit.conformance.cli", *run(breaking)],
                          capture_output=True, text=True, timeout=120, env={**os.environ, "NO_COLOR": ""})
    assert done.returncode == 1, done.stderr
    assert "BREAKING REQ-MEMBER-REQUIRED-ADDED" in done.stdout and "\x1b[" not in done.stdout


# -- the rule table ---------------------------------------------------------------------------------------------


def test_docs_hold_the_rule_table() -> None:
    doc = (ROOT / "docs" / "schema-diff.md").read_text(encoding="utf-8")
    start = doc.index("<!-- rule-table:start -->") + len("<!-- rule-table:start -->\n")
    end = doc.index("<!-- rule-table:end -->")
    assert doc[start:end] == markdown_table(), (
        "docs/schema-diff.md is out of date: replace its rule table with the output of "
        "`python -m stui_protocol_kit.conformance.schema_diff.rules`")
    assert all(f"`{rule_id}`" in doc for rule_id in RULES)
