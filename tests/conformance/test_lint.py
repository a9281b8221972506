"""`stui-conformance lint`: clean on this repository, and every check able to fail: a temporary copy of
schemas/ and spec/ with one defect per check, each caught by that check with the place it is at.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from stui_protocol_kit.conformance.cli import main
from stui_protocol_kit.conformance.lint import CHECKS, lint

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def clean_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("lint") / "clean"
    shutil.copytree(ROOT / "schemas", base / "schemas")
    shutil.copytree(ROOT / "spec", base / "spec")
    return base


@pytest.fixture
def copy(clean_copy: Path, tmp_path: Path) -> Path:
    target = tmp_path / "root"
    shutil.copytree(clean_copy, target)
    return target


def edit_json(path: Path, change: Callable[[dict], None]) -> None:
    doc = json.loads(path.read_text(encoding="utf-8"))
    change(doc)
    path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")


def edit_text(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_lint_is_clean_on_this_repository(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lint", "--root", str(ROOT)]) == 0
    assert "8 checks clean" in capsys.readouterr().out


def test_lint_default_root_is_the_kits_own(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lint", "--check", "versions", "--check", "commands"]) == 0
    assert "2 checks clean: versions, commands" in capsys.readouterr().out


def test_the_clean_copy_is_clean(clean_copy: Path) -> None:
    assert {name: findings for name, findings in lint(clean_copy).items() if findings} == {}


def _next_id(root: Path, prefix: str) -> str:
    numbers = [int(n) for n in re.findall(rf"\*\*\[{prefix}-(\d+)\]\*\*", "".join(
        p.read_text(encoding="utf-8") for p in (root / "spec").glob("*.md")))]
    return f"{prefix}-{max(numbers) + 1}"


def defect_schemas(root: Path) -> str:
    edit_json(root / "schemas" / "common.json", lambda d: d["$defs"]["Count"].__setitem__("type", 5))
    return "schemas/common.json"


def defect_commands(root: Path) -> str:
    edit_text(root / "spec" / "04-commands.md", "## 4.6 session.close", "## 4.6 Closing a session")
    return "no section heading for command 'session.close'"


def defect_commands_schema(root: Path) -> str:
    edit_json(root / "schemas" / "commands" / "inspect.json", lambda d: d["$defs"].pop("Result"))
    return "schemas/commands/inspect.json"


def defect_commands_capability(root: Path) -> str:
    edit_json(root / "schemas" / "commands" / "inspect.json",
              lambda d: d["x-stui-command"].__setitem__("capability", "inspection"))
    return "capability 'inspection' is not among the names"


def defect_errors(root: Path) -> str:
    edit_text(root / "spec" / "12-errors.md", "| `ObjectNotFound` |", "| ObjectNotFound |")
    return "error code ObjectNotFound is not documented"


def defect_errors_command(root: Path) -> str:
    edit_json(root / "schemas" / "commands" / "hello.json",
              lambda d: d["x-stui-command"]["errors"].append("TooManyRequests"))
    return "names TooManyRequests, which is not in the registry"


def defect_vectors(root: Path) -> str:
    path = root / "spec" / "examples" / "requests" / "valid" / "hello.json"
    edit_json(path, lambda d: d["message"].__setitem__("parameters", {"verbose": True}))
    return "spec/examples/requests/valid/hello.json"


def defect_traceability(root: Path) -> str:
    new_id = _next_id(root, "ENV")
    edit_text(root / "spec" / "02-envelope.md", "\n## 2.2 Replies",
              f"- **[{new_id}]** A server MUST answer every request within a fortnight.\n\n## 2.2 Replies")
    return f"MUST requirement {new_id} has no conformance case"


def defect_requirement_ids_duplicate(root: Path) -> str:
    edit_text(root / "spec" / "02-envelope.md", "\n## 2.2 Replies",
              "- **[ENV-1]** A server MAY say hello twice.\n\n## 2.2 Replies")
    return "ENV-1 is defined twice"


def defect_requirement_ids_gap(root: Path) -> str:
    path = root / "spec" / "13-compatibility.md"
    text = path.read_text(encoding="utf-8")
    path.write_text("\n".join(line for line in text.splitlines() if "**[CMP-7]**" not in line) + "\n",
                    encoding="utf-8")
    return "CMP-7 is missing"


def defect_bundles(root: Path) -> str:
    edit_json(root / "schemas" / "common.json", lambda d: d["$defs"]["RequestId"].__setitem__("maxLength", 64))
    return "schemas/bundle/"


def defect_versions(root: Path) -> str:
    edition = re.search(r"Spec edition: \*\*([0-9.]+)\*\*", (root / "spec" / "README.md").read_text(encoding="utf-8"))
    assert edition is not None
    edit_text(root / "spec" / "README.md", edition.group(0), "Spec edition: **1.1.0**")
    return "MAJOR.MINOR must be the protocol version"


DEFECTS: dict[str, tuple[str, Callable[[Path], str]]] = {
    "schemas meta-schema": ("schemas", defect_schemas),
    "commands: section missing": ("commands", defect_commands),
    "commands: Result missing": ("commands", defect_commands_schema),
    "commands: undeclared capability": ("commands", defect_commands_capability),
    "errors: code undocumented": ("errors", defect_errors),
    "errors: command names an unknown code": ("errors", defect_errors_command),
    "vectors": ("vectors", defect_vectors),
    "traceability": ("traceability", defect_traceability),
    "requirement-ids: duplicate": ("requirement-ids", defect_requirement_ids_duplicate),
    "requirement-ids: gap": ("requirement-ids", defect_requirement_ids_gap),
    "bundles": ("bundles", defect_bundles),
    "versions": ("versions", defect_versions),
}


def test_every_check_has_a_defect() -> None:
    assert {check for check, _ in DEFECTS.values()} == set(CHECKS)


@pytest.mark.parametrize("name", sorted(DEFECTS))
def test_each_check_catches_its_defect(copy: Path, name: str, capsys: pytest.CaptureFixture[str]) -> None:
    check, make = DEFECTS[name]
    expected = make(copy)
    findings = lint(copy, (check,))[check]
    assert findings, f"{check} found nothing"
    assert any(expected in f.where or expected in f.message for f in findings), findings
    assert main(["lint", "--root", str(copy), "--check", check]) == 1
    out = capsys.readouterr().out
    assert f"[{check}]" in out and "finding" in out


def test_json_output(copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    defect_versions(copy)
    assert main(["lint", "--root", str(copy), "--json", "--check", "versions"]) == 1
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert records and records[0]["check"] == "versions" and records[0]["where"] == "spec/README.md"


def test_root_without_schemas_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lint", "--root", str(tmp_path)]) == 2
    assert "no schemas/ and spec/" in capsys.readouterr().err


def test_broken_json_blocks_the_registry_checks_with_a_finding(copy: Path) -> None:
    (copy / "schemas" / "state.json").write_text("{ broken", encoding="utf-8")
    results = lint(copy, ("schemas", "errors", "bundles"))
    assert any(f.where.startswith("schemas/state.json:1") for f in results["schemas"])
    assert all("not checked: the schemas do not load" in f.message for f in results["errors"])
    assert results["bundles"]


# -- requirement IDs across history (--since) ---------------------------------------------------------


def _commit_all(root: Path, message: str) -> None:
    import subprocess

    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", message]):
        if args[0] == "init" and (root / ".git").exists():
            continue
        done = subprocess.run(["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@example.invalid",
                               "-c", "commit.gpgsign=false", *args], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr


def test_history_clean_when_nothing_changed(copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _commit_all(copy, "spec")
    assert main(["lint", "--root", str(copy), "--check", "versions", "--since", "HEAD"]) == 0
    assert "requirement-history" in capsys.readouterr().out


def test_history_catches_a_requirement_removed_instead_of_retired(copy: Path) -> None:
    _commit_all(copy, "spec")
    path = copy / "spec" / "13-compatibility.md"
    text = path.read_text(encoding="utf-8")
    last = max(int(n) for n in re.findall(r"\*\*\[CMP-(\d+)\]\*\*", text))
    path.write_text("\n".join(line for line in text.splitlines() if f"**[CMP-{last}]**" not in line) + "\n",
                    encoding="utf-8")
    # The last ID leaves no gap behind: only the history shows it is gone.
    assert lint(copy, ("requirement-ids",))["requirement-ids"] == []
    findings = lint(copy, (), since="HEAD")["requirement-history"]
    assert [f.message.split(" existed")[0] for f in findings] == [f"CMP-{last}"]


def test_history_catches_a_retired_id_used_again(copy: Path) -> None:
    path = copy / "spec" / "13-compatibility.md"
    text = path.read_text(encoding="utf-8")
    line = next(x for x in text.splitlines() if x.startswith("- **[CMP-8]**"))
    path.write_text(text.replace(line, "- **[CMP-8]** (retired in 1.0.1)"), encoding="utf-8")
    _commit_all(copy, "CMP-8 retired")
    path.write_text(text, encoding="utf-8")  # back, with a text under the retired ID
    findings = lint(copy, (), since="HEAD")["requirement-history"]
    assert len(findings) == 1 and "CMP-8 was retired" in findings[0].message
    assert findings[0].where.startswith("spec/13-compatibility.md:")


def test_history_with_an_unknown_ref_says_it_did_not_check(copy: Path) -> None:
    _commit_all(copy, "spec")
    (finding,) = lint(copy, (), since="no-such-ref")["requirement-history"]
    assert finding.message.startswith("not checked:")
