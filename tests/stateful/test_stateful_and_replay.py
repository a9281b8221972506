"""End to end: the generated and stateful cases pass against the reference server, differential mode
finds a planted difference, failures shrink to JSON Lines that `replay` re-runs, and faulty servers
that only sequences expose are caught."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest

from stui_protocol_kit.conformance.case import Outcome
from stui_protocol_kit.conformance.cli import main as cli_main
from stui_protocol_kit.conformance.config import RunConfig
from stui_protocol_kit.conformance.runner import run
from stui_protocol_kit.conformance.stateful.differential import compare_sequence
from stui_protocol_kit.conformance.stateful.sequence import Step, from_jsonl

LONG = os.environ.get("STUI_LONG") == "1"  # long mode: bigger budgets
FAULTY = [sys.executable, str(Path(__file__).with_name("faulty_engines.py"))]


def run_cases(select: list[str], argv: list[str] | None = None, **settings: object):  # type: ignore[no-untyped-def]
    report = run(RunConfig(select=select, seed=0, server_argv=argv, **settings))  # type: ignore[arg-type]
    return {r.case.id: r for r in report.results}


def test_generated_and_stateful_cases_pass_against_the_reference_server() -> None:
    # A smaller budget than the CLI's default 50 (fixed seed: the same sequences every run); STUI_LONG=1: 200.
    results = run_cases(["generated", "stateful"], differential=True, examples=200 if LONG else 20)
    assert set(results) >= {"generated.valid-requests", "generated.invalid-requests", "stateful.sessions",
                             "stateful.restarts"}
    for result in results.values():
        assert result.outcome is Outcome.PASSED, (result.case.id, result.problem, result.reason)


def test_differential_comparison_finds_a_planted_difference_and_allows_the_allowed() -> None:
    steps = [Step(0, {"id": "1", "version": "1.0", "command": "session.create", "parameters": {"client_id": "x"}}),
             Step(0, {"id": "2", "version": "1.0", "command": "session.validate", "parameters": {}})]

    def reply(sid: str, token: str, revision: int, attached: int) -> list[dict]:
        return [
            {"status": "success", "result": {"session_id": sid, "token": token, "revision": 0,
                                             "created_at": "2026-01-01T00:00:00.000Z"}},
            {"status": "success", "result": {"session_id": sid, "revision": revision, "attached_clients": attached}},
        ]

    same_meaning = compare_sequence(steps, reply("A" * 22, "a" * 43, 0, 1), reply("B" * 22, "b" * 43, 0, 2))
    assert [d.allowed_by for d in same_meaning] == ["CON-7"]
    planted = compare_sequence(steps, reply("A" * 22, "a" * 43, 1, 1), reply("B" * 22, "b" * 43, 0, 1))
    assert planted[-1].path == "$.result.revision" and planted[-1].allowed_by is None and planted[-1].step == 1


@pytest.mark.parametrize(("fault", "requirement"), [
    ("revision-skip", "SNP-1"), ("workspace-leak", "CON-4"), ("long-id", "ERR-1"),
])
def test_faulty_server_fails_the_stateful_case_with_a_replayable_sequence(
        fault: str, requirement: str, tmp_path: Path) -> None:
    # examples=10 finds each fault (seed 0) and bounds shrinking at 30 examples: 20 s, not 100, under load.
    result = run_cases(["stateful.sessions"], [*FAULTY, fault], examples=10)["stateful.sessions"]
    assert result.outcome is Outcome.FAILED
    # Exactly the broken requirement, typed where the model found it - not every MUST the case declares.
    assert result.broken() == {requirement}, result.problems
    assert result.sequence is not None
    jsonl = result.sequence
    steps = from_jsonl(jsonl)
    assert 2 <= len(steps) <= 15
    # Only placeholders and the machine's deliberate wrong tokens (one letter 43 times), never a token the
    # server issued. (Not `"token" not in ...`: a wrong-token step carries a literal made-up token.)
    tokens = re.findall(r'"token": "([^"]*)"', jsonl)
    assert all(re.fullmatch(r"\$token:\d+|(.)\1{42}", t) for t in tokens), tokens
    sequence = tmp_path / "failing.jsonl"
    sequence.write_text(jsonl, encoding="utf-8")
    # Against the reference server the sequence runs clean; against a fresh faulty server it still fails.
    assert cli_main(["replay", str(sequence)]) == 0
    from stui_protocol_kit.conformance.target import EmbeddedServer

    with EmbeddedServer(argv=[*FAULTY, fault], name="faulty-replay") as server:
        assert server.endpoint is not None
        assert cli_main(["replay", str(sequence), "--target", server.endpoint]) == 1


def test_replay_usage_errors_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"client": "x"}\n', encoding="utf-8")
    assert cli_main(["replay", str(bad)]) == 2
    assert cli_main(["replay", str(tmp_path / "missing.jsonl")]) == 2
