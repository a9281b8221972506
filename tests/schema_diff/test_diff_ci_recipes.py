"""The CI recipes in docs/ci/: valid YAML with the triggers docs/ci.md describes, and every
`stui-conformance` command in their steps accepted by this kit's command-line parser (a renamed option
would otherwise break every team that copied the recipe).
"""

from __future__ import annotations

import re
import shlex

import pytest
import yaml
from schema_pairs import ROOT

from stui_protocol_kit.conformance.cli import build_parser

RECIPES = ROOT / "docs" / "ci"


def load(name: str) -> dict:
    return yaml.safe_load((RECIPES / name).read_text(encoding="utf-8"))


def commands(workflow: dict) -> list[list[str]]:
    """Every stui-conformance invocation in the workflow's run steps, as argv (expressions filled in)."""
    found = []
    for job in workflow["jobs"].values():
        for step in job["steps"]:
            script = re.sub(r"\$\{\{[^}]*\}\}", "X", step.get("run", "")).replace("\\\n", " ")
            for line in script.splitlines():
                line = line.strip()
                if line.startswith("stui-conformance "):
                    # Shell variables as the job would expand them (an endpoint variable to an endpoint).
                    line = re.sub(r"\$\{?(\w*TARGET\w*)\}?", "tcp://127.0.0.1:5555", line)
                    found.append(shlex.split(line)[1:])
    return found


@pytest.mark.parametrize("name", ["github-actions-protocol-gate.yml", "github-actions-backend-gate.yml"])
def test_every_command_parses(name: str) -> None:
    argvs = commands(load(name))
    assert argvs
    parser = build_parser()
    for argv in argvs:
        args = parser.parse_args(argv)  # exits (SystemExit) on an unknown option
        assert args.verb in ("lint", "diff", "run")


def test_protocol_gate_runs_lint_diff_and_the_suite_on_schema_or_spec_changes() -> None:
    workflow = load("github-actions-protocol-gate.yml")
    # PyYAML reads the key `on` as the boolean True (YAML 1.1).
    trigger = workflow.get("on", workflow.get(True))
    assert sorted(trigger["pull_request"]["paths"]) == ["schemas/**", "spec/**"]
    argvs = commands(workflow)
    verbs = [argv[0] for argv in argvs]
    assert verbs.count("lint") == 1 and verbs.count("diff") == 1 and verbs.count("run") == 1
    diff = next(argv for argv in argvs if argv[0] == "diff")
    assert diff[1:3] == ["origin/X", "HEAD"] and "--format" in diff and diff[diff.index("--format") + 1] == "markdown"
    run = next(argv for argv in argvs if argv[0] == "run")
    assert "--junit-xml" in run
    checkout = workflow["jobs"]["lint-and-diff"]["steps"][0]
    assert checkout["with"]["fetch-depth"] == 0


def test_backend_gate_pins_the_kit_and_targets_its_own_server() -> None:
    text = (RECIPES / "github-actions-backend-gate.yml").read_text(encoding="utf-8")
    assert "stui-protocol-kit==" in text and "git+https://" in text
    argvs = commands(load("github-actions-backend-gate.yml"))
    run = next(argv for argv in argvs if argv[0] == "run")
    assert "--target" in run and "--junit-xml" in run
    diff = next(argv for argv in argvs if argv[0] == "diff")
    assert diff[1].endswith("stui_protocol_kit/schemas") and diff[2].endswith("stui_protocol_kit/schemas")
