"""The generators produce what they claim: valid requests are valid, mutations get the demanded code."""

from __future__ import annotations

import os
import re

import pytest
from hypothesis import HealthCheck, Phase, find, given, settings

from stui_protocol_kit.conformance.strategies import (
    InvalidMessage,
    generation_schema,
    invalid_requests,
    mutate,
    valid_requests,
)
from stui_protocol_kit.protocol.schemas import registry
from stui_protocol_kit.protocol.validation import validator

COMMANDS = sorted(registry().commands)
FAST = settings(max_examples=15, deadline=None, database=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])
SESSION = ("S" * 22, "T" * 43)
# Long mode (STUI_LONG=1): property tests run to the end instead of within a small default budget.
LONG = os.environ.get("STUI_LONG") == "1"


@pytest.mark.parametrize("command", COMMANDS)
def test_valid_requests_pass_the_validator(command: str) -> None:
    @FAST
    @given(valid_requests(command))
    def check(message: dict) -> None:
        assert validator().check_request(message).ok
        assert message["command"] == command

    check()


def test_live_session_is_substituted_into_session_scoped_requests() -> None:
    @FAST
    @given(valid_requests("session.snapshot", SESSION))
    def check(message: dict) -> None:
        assert (message["parameters"]["session_id"], message["parameters"]["token"]) == SESSION

    check()


@pytest.mark.parametrize("command", COMMANDS)
def test_mutations_get_exactly_the_code_they_claim(command: str) -> None:
    @FAST
    @given(invalid_requests(command, SESSION if registry().commands[command].session_scoped else None))
    def check(bad: InvalidMessage) -> None:
        verdict = validator().check_request(bad.message)
        assert verdict.error_code == bad.expected_code in ("InvalidRequest", "UnknownCommand", "UnsupportedVersion")
        assert bad.echo_id == validator().echo_id(bad.message)

    check()


def test_a_shrunk_negative_example_still_violates_its_schema() -> None:
    # find() shrinks towards the simplest example; the strategy's own re-check applies at every shrink step,
    # so every example it yields - shrunk or not - must still be invalid as claimed. Shrinking this strategy
    # to the end takes 25 s to a minute (hypothesis-jsonschema redraws whole messages), so by default the
    # test checks the examples hypothesis starts from, the simplest ones, which shrinking converges to;
    # STUI_LONG=1 shrinks to the end and checks every candidate on the way.
    found: list[InvalidMessage] = []

    def condition(bad: InvalidMessage) -> bool:
        if bad.expected_code != "InvalidRequest" or "1.0" in bad.mutation:
            return False
        found.append(bad)
        return True

    phases = [Phase.generate, Phase.shrink] if LONG else [Phase.generate]
    smallest = find(invalid_requests("session.snapshot", SESSION), condition,
                    settings=settings(database=None, max_examples=50, derandomize=True, phases=phases,
                                      suppress_health_check=[HealthCheck.too_slow]))
    assert found and (not LONG or len(found) > 1)
    for bad in [*found, smallest]:
        assert validator().check_request(bad.message).error_code == "InvalidRequest", bad.mutation


def test_every_family_of_mutation_is_drawable_and_gets_its_code() -> None:
    message = {"id": "x", "version": "1.0", "command": "session.snapshot",
               "parameters": {"session_id": SESSION[0], "token": SESSION[1], "expected_revision": 1, "state": {}}}
    seen = set()
    for kind in range(40):
        for index in range(80):
            bad = mutate(message, index, kind=kind)
            assert bad is not None, (kind, index)  # every mutation of a valid message is what it claims
            seen.add(re.sub(r"[\"'].*", "", bad.mutation).strip())
    for family in ("drop envelope member", "version", "near-miss command", "drop parameter", "unknown parameter",
                   "null for optional parameter", "unknown member in state", "upper-case command name"):
        assert any(s.startswith(family) for s in seen), (family, seen)


def test_generation_schema_writes_the_length_into_the_pattern() -> None:
    token = {"type": "string", "minLength": 43, "maxLength": 128, "pattern": "^[A-Za-z0-9_-]+$"}
    assert generation_schema(token)["pattern"] == "^[A-Za-z0-9_-]{43,128}$"
    untouched = {"type": "string", "pattern": "^[a-z]+(\\.[a-z]+)*$", "maxLength": 5}
    assert generation_schema(untouched) == untouched


def test_integer_as_float_is_rejected_as_schema() -> None:
    message = {"id": "x", "version": "1.0", "command": "session.snapshot",
               "parameters": {"session_id": SESSION[0], "token": SESSION[1], "expected_revision": 3}}
    found = [mutate(message, i, kind=k) for k in range(20) for i in range(60)]
    floats = [m for m in found if m and m.mutation == 'parameter "expected_revision" as 3.0']
    assert floats and all(m.expected_code == "InvalidRequest" and m.requirement == "ENV-2" for m in floats)
    assert floats[0].message["parameters"]["expected_revision"] == 3.0
