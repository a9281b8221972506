"""`stui-conformance diff` on git refs: a temporary repository with this repository's schemas committed,
changed and committed again, diffed as `HEAD~1 HEAD --repo ...` without touching the work tree.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from schema_pairs import ROOT

from stui_protocol_kit.conformance.cli import main


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), "-c", "user.name=test", "-c", "user.email=test@example.invalid",
                           "-c", "commit.gpgsign=false", *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    shutil.copytree(ROOT / "schemas", path / "schemas", ignore=shutil.ignore_patterns("bundle"))
    (path / "spec").mkdir()
    shutil.copy(ROOT / "spec" / "README.md", path / "spec" / "README.md")
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "v1 schemas")
    snapshot = path / "schemas" / "commands" / "session.snapshot.json"
    doc = json.loads(snapshot.read_text())
    doc["$defs"]["Parameters"]["properties"]["label"] = {"type": "string"}
    doc["$defs"]["Parameters"]["required"].append("label")
    snapshot.write_text(json.dumps(doc, indent=2))
    git(path, "commit", "-q", "-am", "snapshot takes a required label")
    return path


def test_diff_of_two_commits(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diff", "HEAD~1", "HEAD", "--repo", str(repo), "--format", "json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["old"]["source"].startswith("git ref HEAD~1 (")
    rules = {c["rule"] for c in report["changes"]}
    assert rules == {"REQ-MEMBER-REQUIRED-ADDED", "VERSION-MAJOR-REQUIRED"}
    (change,) = [c for c in report["changes"] if c["rule"] == "REQ-MEMBER-REQUIRED-ADDED"]
    assert {w["breaks"] for w in change["witnesses"] if w["found"]} == {"old clients", "old servers"}


def test_refs_are_read_without_touching_the_work_tree(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # A dirty work tree: an uncommitted edit and an untracked file must survive and not be read.
    request = repo / "schemas" / "request.json"
    request.write_text("{ not json")
    (repo / "schemas" / "untracked.json").write_text("{}")
    status_before = git(repo, "status", "--porcelain")
    assert main(["diff", "HEAD", "HEAD", "--repo", str(repo)]) == 0
    assert "0 breaking changes" in capsys.readouterr().out
    assert request.read_text() == "{ not json"
    assert git(repo, "status", "--porcelain") == status_before


def test_repo_given_as_a_subdirectory(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diff", "HEAD~1", "HEAD", "--repo", str(repo / "spec")]) == 1
    assert "REQ-MEMBER-REQUIRED-ADDED" in capsys.readouterr().out


def test_a_ref_against_a_directory(repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diff", "main", str(ROOT), "--repo", str(repo)]) == 1  # ROOT lacks the label: removed
    out = capsys.readouterr().out
    assert "REQ-MEMBER-REQUIRED-REMOVED" in out


def test_unknown_ref_is_a_usage_error(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diff", "no-such-branch", "HEAD", "--repo", str(repo)]) == 2
    assert "no-such-branch: neither a directory nor a git ref" in capsys.readouterr().err


def test_ref_without_schemas_is_a_usage_error(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    git(repo, "rm", "-q", "-r", "schemas")
    git(repo, "commit", "-q", "-m", "no schemas")
    assert main(["diff", "HEAD~1", "HEAD", "--repo", str(repo)]) == 2
    assert "has no schemas/request.json" in capsys.readouterr().err


def test_not_a_repository_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diff", "main", "HEAD", "--repo", str(tmp_path)]) == 2
    assert "is not a git repository" in capsys.readouterr().err
