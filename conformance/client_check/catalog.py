"""client-check's checks and scenarios as conformance `Case`s: what reports, the requirement matrix and
traceability see.

A check (`client.<name>`) is one rule of `protocol.client_rules` applied to every request; a scenario
(`scenario.<name>`) is one situation of `client_check.scenarios`. Neither is run by the conformance runner:
client-check observes the client and fills their results (`check_results`, `scenario_result`). Outcomes:
PASSED (exercised, nothing broken), FAILED / NON-STRICT (by the level of what was broken), SKIPPED with a
reason starting "not exercised" (the client never gave the check or scenario anything to judge: never
"passed"), UNSUPPORTED (the rule cannot apply to this client, e.g. REQ lockstep for a DEALER-only client).

This module must never do I/O and never import the reference server: lint and the traceability test load
it to count client requirements as covered.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from stui_protocol_kit.conformance.case import Case, CaseResult, Outcome
from stui_protocol_kit.conformance.client_check.scenarios import SCENARIOS, Scenario, Status
from stui_protocol_kit.protocol import client_rules as rules
from stui_protocol_kit.protocol.problems import Problem
from stui_protocol_kit.protocol.requirements import requirements

MAX_PROBLEMS_PER_CHECK = 100


def _observed(_ctx: Any) -> None:
    raise RuntimeError("client-check cases are observed by `stui-conformance client-check`, not run by the runner")


@dataclass(frozen=True)
class CheckInfo:
    name: str
    requirement: str
    title: str
    applies: str  # what makes it exercised, for the "not exercised" reason


CHECKS: tuple[CheckInfo, ...] = (
    CheckInfo("framing", rules.FRAMING, "one body frame, one UTF-8 JSON object, within the announced limits",
              "requests"),
    CheckInfo("schema", rules.SCHEMA, "requests match request.json and the command's parameters", "requests"),
    CheckInfo("version", rules.VERSION, "no request but hello in a version the server did not announce", "requests"),
    CheckInfo("request-ids", rules.REQUEST_IDS, "an id is used again only to retry the identical request",
              "requests"),
    CheckInfo("req-lockstep", rules.REQ_LOCKSTEP, "a REQ socket waits for each reply before its next request",
              "REQ requests"),
    CheckInfo("token-placement", rules.TOKEN_PLACEMENT, "a token only as the token parameter of its own session",
              "requests after a token was issued"),
    CheckInfo("ended-sessions", rules.ENDED_SESSIONS, "no new request on a session that ended for the client",
              "requests after a session ended"),
    CheckInfo("hello-first", rules.HELLO_FIRST, "hello first on every new connection (SHOULD)", "connections"),
)
CHECK_OF: dict[str, CheckInfo] = {c.requirement: c for c in CHECKS}


def _level(requirement: str) -> str:
    found = requirements().get(requirement)
    return "SHOULD" if found is not None and found.level != "MUST" else "MUST"


def check_case(info: CheckInfo) -> Case:
    return Case(id=f"client.{info.name}", title=info.title, sends="(observed: every request the client sends)",
                requirements=(info.requirement,), run=_observed, level=_level(info.requirement),  # type: ignore[arg-type]
                tags=frozenset({"client", "check"}))


def scenario_case(scenario: type[Scenario]) -> Case:
    return Case(id=f"scenario.{scenario.name}", title=scenario.title, sends=scenario.provokes,
                requirements=scenario.requirements, run=_observed, tags=frozenset({"client", "scenario"}),
                allows=(scenario.passes,))


def cases() -> list[Case]:
    """Every client-check case: the checks, then the scenarios in their default order."""
    return [check_case(c) for c in CHECKS] + [scenario_case(s) for s in SCENARIOS]


@dataclass
class Exercise:
    """How much the client gave each check to judge."""

    requests: int = 0
    connections: int = 0
    req_requests: int = 0
    after_token: int = 0
    after_end: int = 0

    def count(self, applies: str) -> int:
        return {"requests": self.requests, "REQ requests": self.req_requests, "connections": self.connections,
                "requests after a token was issued": self.after_token,
                "requests after a session ended": self.after_end}[applies]


def _outcome(problems: Iterable[Problem]) -> Outcome:
    index = requirements()
    levels = {index[p.requirement].level if p.requirement in index else "MUST" for p in problems}
    return Outcome.FAILED if "MUST" in levels else Outcome.NON_STRICT


def check_results(found: Mapping[str, list[Problem]], exercise: Exercise,
                  transcripts: Mapping[str, list[dict[str, Any]]] | None = None) -> list[CaseResult]:
    """One result per check from the problems the rules found (by requirement) and what was exercised."""
    out = []
    for info in CHECKS:
        case = check_case(info)
        problems = list(found.get(info.requirement, ()))
        result = CaseResult(case, Outcome.PASSED)
        if problems:
            result.outcome = _outcome(problems)
            if len(problems) > MAX_PROBLEMS_PER_CHECK:
                result.notes.append(f"{len(problems)} violations; the first {MAX_PROBLEMS_PER_CHECK} are listed")
            result.problems = problems[:MAX_PROBLEMS_PER_CHECK]
            result.transcript = list((transcripts or {}).get(info.requirement, ()))
        elif exercise.count(info.applies) == 0:
            if info.requirement == rules.REQ_LOCKSTEP and exercise.requests:
                result.outcome, result.reason = Outcome.UNSUPPORTED, "the client used no REQ socket"
            else:
                result.outcome = Outcome.SKIPPED
                result.reason = f"not exercised: the client sent no {info.applies}"
        else:
            result.notes.append(f"{exercise.count(info.applies)} {info.applies} checked")
        out.append(result)
    return out


def scenario_result(scenario: Scenario, transcript: list[dict[str, Any]] | None = None) -> CaseResult:
    case = scenario_case(type(scenario))
    result = CaseResult(case, Outcome.PASSED, notes=list(scenario.notes))
    if scenario.started_at is not None and scenario.concluded_at is not None:
        result.duration_s = max(0.0, scenario.concluded_at - scenario.started_at)
    if scenario.status is Status.WAITING:
        result.outcome = Outcome.SKIPPED
        result.reason = "not exercised: the client never sent a request this scenario could use"
        return result
    if scenario.status is Status.FAILED:
        result.outcome = _outcome(scenario.problems)
        result.problems = list(scenario.problems)
        result.transcript = list(transcript or ())
    elif scenario.status is Status.ACTIVE:  # end() concludes every active scenario; never left so
        result.outcome, result.reason = Outcome.ERROR, "the scenario did not conclude (a bug of client-check)"
    return result
