"""One test per rule of the schema diff's rule table, each built from a pair of schema directories.

Every case copies this repository's schemas into tmp_path twice, applies one edit, and checks that the
diff reports exactly the expected rules (nothing more, nothing less), that each breaking change carries
a witness for every party it breaks which holds when re-checked here with both validators against
freshly loaded registries of both sides, that the version check fires exactly when something breaks,
and that the exit status follows. `test_every_rule_has_a_case` keeps the table and the cases in step.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from schema_pairs import (
    SNAPSHOT,
    Pair,
    assert_witnesses_hold,
    change_of,
    params,
    probe_pair,
    result,
    rule_ids,
    set_probe,
)

from stui_protocol_kit.conformance.schema_diff.rules import RULES
from stui_protocol_kit.conformance.schema_diff.witness import BEHAVIOUR_ONLY


@dataclass
class Case:
    edit: Callable[[Pair], Any]
    expected: set[str]  # every rule the diff must report (VERSION-* checked separately)
    note: str = ""


def _client_state_inspector(schema: Any) -> Callable[[dict], None]:
    """state.json's ClientState.inspector (only in the session.snapshot request) set to `schema`."""
    return lambda doc: doc["$defs"]["ClientState"]["properties"].__setitem__("inspector", schema)


def _inspector_pair(old: Any, new: Any) -> Callable[[Pair], Any]:
    return lambda p: (p.edit("state.json", _client_state_inspector(old), "old"),
                      p.edit("state.json", _client_state_inspector(new), "new"))


def _req_probe(old: Any, new: Any) -> Callable[[Pair], Any]:
    return lambda p: probe_pair(p, params, old, new)


def _res_probe(old: Any, new: Any) -> Callable[[Pair], Any]:
    return lambda p: probe_pair(p, result, old, new)


def _both(*edits: Callable[[Pair], Any]) -> Callable[[Pair], Any]:
    def run(pair: Pair) -> None:
        for edit in edits:
            edit(pair)
    return run


def _closed_result(member: bool, side: str) -> Callable[[Pair], Any]:
    def change(doc: dict) -> None:
        result(doc)["additionalProperties"] = False
        set_probe(result, {"type": "string"} if member else None)(doc)
    return lambda p: p.edit(SNAPSHOT, change, side)


def _command(name: str, capability: str | None, session_scoped: bool = False) -> dict:
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://stui.dev/schemas/v1/commands/{name}.json",
        "title": name, "description": "A command added by a test.",
        "x-stui-command": {"session_scoped": session_scoped, "capability": capability,
                           "errors": ["InvalidRequest", "UnknownCommand", "UnsupportedVersion", "PayloadTooLarge",
                                      "InternalError"]},
        "$defs": {"Parameters": {"type": "object", "properties": {}, "additionalProperties": False},
                  "Result": {"type": "object", "required": ["pong"], "properties": {"pong": {"const": True}}}},
    }


def _meta(command: str, change: Callable[[dict], None]) -> Callable[[Pair], Any]:
    return lambda p: p.edit(f"commands/{command}.json", lambda d: change(d["x-stui-command"]))


def _add_error_code(doc: dict) -> None:
    variant = copy.deepcopy(doc["oneOf"][-1])
    variant["title"] = "RateLimited"
    variant["properties"]["code"]["const"] = "RateLimited"
    variant["properties"].pop("details", None)
    doc["oneOf"].append(variant)


def _remove_error_code(code: str) -> Callable[[Pair], Any]:
    def change(doc: dict) -> None:
        doc["oneOf"] = [v for v in doc["oneOf"] if v["properties"]["code"].get("const") != code]

    def run(pair: Pair) -> None:
        pair.edit("error.json", change)
        for path in pair.schemas("new").glob("commands/*.json"):
            rel = path.relative_to(pair.schemas("new")).as_posix()
            pair.edit(rel, lambda d: d["x-stui-command"].__setitem__(
                "errors", [e for e in d["x-stui-command"]["errors"] if e != code]))

    return run


def _capabilities(doc: dict) -> dict:
    return doc["$defs"]["Result"]["properties"]["capabilities"]["x-stui-capabilities"]


def _limits(doc: dict) -> dict:
    return doc["$defs"]["Result"]["properties"]["limits"]


def _add_limit(required: bool) -> Callable[[Pair], Any]:
    def change(doc: dict) -> None:
        _limits(doc)["properties"]["max_evaluations_per_minute"] = {"type": "integer", "minimum": 1,
                                                                    "maximum": 9007199254740991}
        if required:
            _limits(doc)["required"].append("max_evaluations_per_minute")
    return lambda p: p.edit("commands/hello.json", change)


STRING = {"type": "string"}
INT = {"type": "integer"}

# Bound keywords: (schema before, schema after) where "after" accepts less.
TIGHTER: dict[str, tuple[dict, dict]] = {
    "minimum": ({**INT, "minimum": 0}, {**INT, "minimum": 1}),
    "maximum": ({**INT, "maximum": 10}, {**INT, "maximum": 5}),
    "exclusiveMinimum": ({**INT, "exclusiveMinimum": 0}, {**INT, "exclusiveMinimum": 3}),
    "exclusiveMaximum": ({**INT, "exclusiveMaximum": 10}, {**INT, "exclusiveMaximum": 4}),
    "multipleOf": ({**INT, "multipleOf": 2}, {**INT, "multipleOf": 4}),
    "minLength": ({**STRING, "minLength": 1}, {**STRING, "minLength": 3}),
    "maxLength": ({**STRING, "maxLength": 10}, {**STRING, "maxLength": 4}),
    "minItems": ({"type": "array", "items": INT}, {"type": "array", "items": INT, "minItems": 1}),
    "maxItems": ({"type": "array", "items": INT, "maxItems": 3}, {"type": "array", "items": INT, "maxItems": 1}),
    "uniqueItems": ({"type": "array", "items": INT}, {"type": "array", "items": INT, "uniqueItems": True}),
    "minProperties": ({"type": "object"}, {"type": "object", "minProperties": 1}),
    "maxProperties": ({"type": "object", "maxProperties": 2}, {"type": "object", "maxProperties": 0}),
}

ONE_OF = {"oneOf": [STRING, INT]}
ONE_OF_MORE = {"oneOf": [STRING, INT, {"type": "boolean"}]}

CASES: dict[str, Case] = {
    # -- request members --------------------------------------------------------------------------------------
    "REQ-MEMBER-REQUIRED-ADDED": Case(lambda p: p.edit(SNAPSHOT, set_probe(params, STRING, required=True)),
                                      {"REQ-MEMBER-REQUIRED-ADDED"}),
    "REQ-MEMBER-OPTIONAL-ADDED": Case(lambda p: p.edit(SNAPSHOT, set_probe(params, STRING)),
                                      {"REQ-MEMBER-OPTIONAL-ADDED"}),
    "REQ-MEMBER-REQUIRED-REMOVED": Case(
        lambda p: p.edit(SNAPSHOT, set_probe(params, STRING, required=True), "old"),
        {"REQ-MEMBER-REQUIRED-REMOVED"}),
    "REQ-MEMBER-OPTIONAL-REMOVED": Case(lambda p: p.edit(SNAPSHOT, lambda d: params(d)["properties"].pop(
        "expected_revision")), {"REQ-MEMBER-OPTIONAL-REMOVED"}),
    "REQ-MEMBER-MADE-REQUIRED": Case(lambda p: p.edit(SNAPSHOT, lambda d: params(d)["required"].append(
        "expected_revision")), {"REQ-MEMBER-MADE-REQUIRED"}),
    "REQ-MEMBER-MADE-OPTIONAL": Case(lambda p: p.edit("commands/session.create.json", lambda d: params(d).__setitem__(
        "required", [])), {"REQ-MEMBER-MADE-OPTIONAL"}),
    "REQ-MEMBER-CONSTRAINED": Case(_inspector_pair({"type": "object"}, {"type": "object", "properties": {
        "theme": STRING}}), {"REQ-MEMBER-CONSTRAINED"}, "a member of the client's open document gets a schema"),
    "REQ-MEMBER-UNCONSTRAINED": Case(_inspector_pair({"type": "object", "properties": {"theme": STRING}},
                                                     {"type": "object"}), {"REQ-MEMBER-UNCONSTRAINED"}),
    # -- reply members ----------------------------------------------------------------------------------------
    "RES-MEMBER-REQUIRED-ADDED": Case(lambda p: p.edit(SNAPSHOT, set_probe(result, STRING, required=True)),
                                      {"RES-MEMBER-REQUIRED-ADDED"}),
    "RES-MEMBER-OPTIONAL-ADDED": Case(lambda p: p.edit(SNAPSHOT, set_probe(result, STRING)),
                                      {"RES-MEMBER-OPTIONAL-ADDED"}),
    "RES-MEMBER-REQUIRED-REMOVED": Case(lambda p: p.edit(SNAPSHOT, lambda d: (
        result(d)["properties"].pop("saved_at"), result(d)["required"].remove("saved_at"))),
        {"RES-MEMBER-REQUIRED-REMOVED"}),
    "RES-MEMBER-OPTIONAL-REMOVED": Case(lambda p: p.edit(SNAPSHOT, set_probe(result, STRING), "old"),
                                        {"RES-MEMBER-OPTIONAL-REMOVED"}),
    "RES-MEMBER-FORBIDDEN": Case(_both(_closed_result(True, "old"), _closed_result(False, "new")),
                                 {"RES-MEMBER-FORBIDDEN"}),
    "RES-MEMBER-MADE-REQUIRED": Case(_both(lambda p: p.edit(SNAPSHOT, set_probe(result, STRING), "old"),
                                           lambda p: p.edit(SNAPSHOT, set_probe(result, STRING, required=True))),
                                     {"RES-MEMBER-MADE-REQUIRED"}),
    "RES-MEMBER-MADE-OPTIONAL": Case(lambda p: p.edit(SNAPSHOT, lambda d: result(d)["required"].remove("saved_at")),
                                     {"RES-MEMBER-MADE-OPTIONAL"}),
    # -- open / closed ----------------------------------------------------------------------------------------
    "REQ-OBJECT-CLOSED": Case(_inspector_pair({"type": "object"}, {"type": "object", "additionalProperties": False}),
                              {"REQ-OBJECT-CLOSED"}),
    "REQ-OBJECT-OPENED": Case(lambda p: p.edit(SNAPSHOT, lambda d: params(d).pop("additionalProperties")),
                              {"REQ-OBJECT-OPENED"}),
    "RES-OBJECT-CLOSED": Case(lambda p: p.edit(SNAPSHOT, lambda d: result(d).__setitem__("additionalProperties",
                                                                                        False)),
                              {"RES-OBJECT-CLOSED"}),
    "RES-OBJECT-OPENED": Case(lambda p: p.edit(SNAPSHOT, lambda d: result(d).__setitem__("additionalProperties",
                                                                                        False), "old"),
                              {"RES-OBJECT-OPENED"}),
    # -- types and values -------------------------------------------------------------------------------------
    "REQ-TYPE-NARROWED": Case(_req_probe({"type": ["string", "integer"]}, STRING), {"REQ-TYPE-NARROWED"}),
    "REQ-TYPE-WIDENED": Case(_req_probe(STRING, {"type": ["string", "integer"]}), {"REQ-TYPE-WIDENED"}),
    "REQ-TYPE-CHANGED": Case(_req_probe(STRING, INT), {"REQ-TYPE-CHANGED"}),
    "RES-TYPE-NARROWED": Case(_res_probe({"type": "number"}, INT), {"RES-TYPE-NARROWED"},
                              "number -> integer: 0.5 was allowed"),
    "RES-TYPE-WIDENED": Case(_res_probe(INT, {"type": ["integer", "string"]}), {"RES-TYPE-WIDENED"}),
    "RES-TYPE-CHANGED": Case(_res_probe(INT, STRING), {"RES-TYPE-CHANGED"}),
    "REQ-ENUM-VALUE-ADDED": Case(_req_probe({"enum": ["a", "b"]}, {"enum": ["a", "b", "c"]}),
                                 {"REQ-ENUM-VALUE-ADDED"}),
    "REQ-ENUM-VALUE-REMOVED": Case(_req_probe({"enum": ["a", "b"]}, {"enum": ["a"]}), {"REQ-ENUM-VALUE-REMOVED"}),
    "RES-ENUM-VALUE-ADDED": Case(lambda p: p.edit("commands/session.resume.json", lambda d: result(d)["properties"][
        "source"]["enum"].append("replica")), {"RES-ENUM-VALUE-ADDED"}, "a new `source` value"),
    "RES-ENUM-VALUE-REMOVED": Case(lambda p: p.edit("commands/session.resume.json", lambda d: result(d)[
        "properties"]["source"]["enum"].remove("durable")), {"RES-ENUM-VALUE-REMOVED"}),
    "REQ-CONST-CHANGED": Case(_req_probe({"const": "a"}, {"const": "b"}), {"REQ-CONST-CHANGED"}),
    "RES-CONST-CHANGED": Case(lambda p: p.edit("commands/session.close.json", lambda d: result(d)["properties"][
        "closed"].__setitem__("const", False)), {"RES-CONST-CHANGED"}),
    "REQ-VALUES-RESTRICTED": Case(_req_probe(STRING, {**STRING, "enum": ["a", "b"]}), {"REQ-VALUES-RESTRICTED"}),
    "REQ-VALUES-UNRESTRICTED": Case(_req_probe({**STRING, "enum": ["a", "b"]}, STRING), {"REQ-VALUES-UNRESTRICTED"}),
    "RES-VALUES-RESTRICTED": Case(_res_probe(STRING, {**STRING, "const": "a"}), {"RES-VALUES-RESTRICTED"}),
    "RES-VALUES-UNRESTRICTED": Case(_res_probe({**STRING, "const": "a"}, STRING), {"RES-VALUES-UNRESTRICTED"}),
    # -- bounds (one keyword here; every keyword in test_bound_keywords) --------------------------------------
    "REQ-CONSTRAINT-TIGHTENED": Case(_req_probe(*TIGHTER["maxLength"]), {"REQ-CONSTRAINT-TIGHTENED"}),
    "REQ-CONSTRAINT-LOOSENED": Case(_req_probe(*reversed(TIGHTER["maximum"])), {"REQ-CONSTRAINT-LOOSENED"}),
    "REQ-CONSTRAINT-CHANGED": Case(_req_probe({**INT, "multipleOf": 2}, {**INT, "multipleOf": 3}),
                                   {"REQ-CONSTRAINT-CHANGED"}),
    "RES-CONSTRAINT-TIGHTENED": Case(_res_probe(*TIGHTER["minimum"]), {"RES-CONSTRAINT-TIGHTENED"}),
    "RES-CONSTRAINT-LOOSENED": Case(_res_probe(*reversed(TIGHTER["minLength"])), {"RES-CONSTRAINT-LOOSENED"}),
    "RES-CONSTRAINT-CHANGED": Case(_res_probe({**INT, "multipleOf": 4}, {**INT, "multipleOf": 6}),
                                   {"RES-CONSTRAINT-CHANGED"}),
    "RES-MEMBER-COUNT-LOOSENED": Case(_res_probe(*reversed(TIGHTER["maxProperties"])), {"RES-MEMBER-COUNT-LOOSENED"}),
    # -- patterns ---------------------------------------------------------------------------------------------
    "REQ-PATTERN-TIGHTENED": Case(_req_probe({**STRING, "pattern": "^[a-z]+$"}, {**STRING, "pattern": "^[a-z]{1,3}$"}),
                                  {"REQ-PATTERN-TIGHTENED"}),
    "REQ-PATTERN-LOOSENED": Case(_req_probe({**STRING, "pattern": "^[a-z]+$"}, {**STRING, "pattern": "^[a-z0-9]+$"}),
                                 {"REQ-PATTERN-LOOSENED"}),
    "REQ-PATTERN-CHANGED": Case(_req_probe({**STRING, "pattern": "^[a-z]+$"}, {**STRING, "pattern": "^[0-9]+$"}),
                                {"REQ-PATTERN-CHANGED"}),
    "REQ-PATTERN-NO-WITNESS": Case(_req_probe({**STRING, "pattern": "^[a-z]+$"},
                                              {**STRING, "pattern": "^[a-z][a-z]*$"}), {"REQ-PATTERN-NO-WITNESS"},
                                   "equivalent, not identical after normalisation"),
    "RES-PATTERN-TIGHTENED": Case(_res_probe({**STRING, "pattern": "^[a-z]+$"}, {**STRING, "pattern": "^[a-c]+$"}),
                                  {"RES-PATTERN-TIGHTENED"}),
    "RES-PATTERN-LOOSENED": Case(lambda p: p.edit("common.json", lambda d: d["$defs"]["ClassName"].__setitem__(
        "pattern", "^[A-Za-z][A-Za-z0-9_]*( class)?$")), {"RES-PATTERN-LOOSENED"},
        "class names may start lower-case: old clients reject `evaluate` results of new servers"),
    "RES-PATTERN-CHANGED": Case(_res_probe({**STRING, "pattern": "^a+$"}, {**STRING, "pattern": "^b+$"}),
                                {"RES-PATTERN-CHANGED"}),
    "RES-PATTERN-NO-WITNESS": Case(_res_probe({**STRING, "pattern": "^(ab)+$"}, {**STRING, "pattern": "^ab(ab)*$"}),
                                   {"RES-PATTERN-NO-WITNESS"}),
    "PATTERN-RESPELLED": Case(_req_probe({**STRING, "pattern": "^[a-z0-9_]+$"}, {**STRING, "pattern":
                                                                                   "^[_0-9a-z]{1,}$"}),
                              {"PATTERN-RESPELLED"}),
    # -- variants ---------------------------------------------------------------------------------------------
    "REQ-VARIANT-ADDED": Case(_req_probe(ONE_OF, ONE_OF_MORE), {"REQ-VARIANT-ADDED"}),
    "REQ-VARIANT-REMOVED": Case(_req_probe(ONE_OF_MORE, ONE_OF), {"REQ-VARIANT-REMOVED"}),
    "RES-VARIANT-ADDED": Case(lambda p: p.edit("error.json", lambda d: d["$defs"]["InvalidRequestDetails"][
        "oneOf"].append({"title": "Throttled", "type": "object", "required": ["reason", "retry_after_s"],
                         "properties": {"reason": {"const": "throttled"}, "retry_after_s": INT}})),
        {"RES-VARIANT-ADDED"}),
    "RES-VARIANT-REMOVED": Case(_res_probe(ONE_OF_MORE, ONE_OF), {"RES-VARIANT-REMOVED"}),
    # -- other keywords: witnesses decide ---------------------------------------------------------------------
    "REQ-SCHEMA-NARROWED": Case(_req_probe({**INT, "not": {"const": 5}}, {**INT, "not": {"enum": [5, 6]}}),
                                {"REQ-SCHEMA-NARROWED"}),
    "REQ-SCHEMA-WIDENED": Case(_req_probe({**INT, "not": {"enum": [5, 6]}}, {**INT, "not": {"const": 5}}),
                               {"REQ-SCHEMA-WIDENED"}),
    "REQ-SCHEMA-CHANGED": Case(_req_probe({**INT, "not": {"const": 5}}, {**INT, "not": {"const": 6}}),
                               {"REQ-SCHEMA-CHANGED"}),
    "REQ-SCHEMA-NO-WITNESS": Case(_req_probe({**STRING, "format": "date"}, {**STRING, "format": "email"}),
                                  {"REQ-SCHEMA-NO-WITNESS"}, "formats are annotations for the kit's validators"),
    "RES-SCHEMA-NARROWED": Case(_res_probe(INT, {**INT, "not": {"const": 0}}), {"RES-SCHEMA-NARROWED"}),
    "RES-SCHEMA-WIDENED": Case(_res_probe({**INT, "not": {"const": 0}}, INT), {"RES-SCHEMA-WIDENED"}),
    "RES-SCHEMA-CHANGED": Case(_res_probe({**INT, "not": {"const": 1}}, {**INT, "not": {"const": 2}}),
                               {"RES-SCHEMA-CHANGED"}),
    "RES-SCHEMA-NO-WITNESS": Case(_res_probe({**INT, "allOf": [{"minimum": 0}]},
                                             {**INT, "allOf": [{"minimum": 0}, {"minimum": -1}]}),
                                  {"RES-SCHEMA-NO-WITNESS"}),
    # -- no effect --------------------------------------------------------------------------------------------
    "ANNOTATION-CHANGED": Case(lambda p: p.edit("common.json", lambda d: (
        d["$defs"]["Token"].__setitem__("description", "A different description."),
        d["$defs"]["Token"].__setitem__("$comment", "and a comment"),
        d["$defs"]["Token"].__setitem__("title", "Token"))), {"ANNOTATION-CHANGED"}),
    # -- commands, capabilities, error codes ------------------------------------------------------------------
    "CMD-ADDED": Case(lambda p: p.write("commands/session.ping.json", _command("session.ping", "ping")),
                      {"CMD-ADDED"}),
    "CMD-ADDED-MANDATORY": Case(lambda p: p.write("commands/session.ping.json", _command("session.ping", None)),
                                {"CMD-ADDED-MANDATORY"}),
    "CMD-ADDED-UNDER-EXISTING-CAPABILITY": Case(
        lambda p: p.write("commands/evaluate.batch.json", _command("evaluate.batch", "evaluate")),
        {"CMD-ADDED-UNDER-EXISTING-CAPABILITY"}),
    "CMD-REMOVED": Case(lambda p: p.delete("commands/session.validate.json"), {"CMD-REMOVED"}),
    "CMD-OPTIONAL-REMOVED": Case(lambda p: p.delete("commands/evaluate.json"),
                                 {"CMD-OPTIONAL-REMOVED"}, "its messages go with it: nothing else to compare"),
    "CMD-MADE-OPTIONAL": Case(_meta("session.validate", lambda m: m.__setitem__("capability", "validate")),
                              {"CMD-MADE-OPTIONAL"}),
    "CMD-MADE-MANDATORY": Case(_meta("inspect", lambda m: m.__setitem__("capability", None)),
                               {"CMD-MADE-MANDATORY"}),
    "CMD-CAPABILITY-RENAMED": Case(_meta("inspect", lambda m: m.__setitem__("capability", "inspect.v2")),
                                   {"CMD-CAPABILITY-RENAMED"}),
    "CMD-SCOPE-CHANGED": Case(_meta("hello", lambda m: m.__setitem__("session_scoped", True)),
                              {"CMD-SCOPE-CHANGED"}),
    "CMD-ERROR-ADDED": Case(_meta("hello", lambda m: m["errors"].append("SessionNotFound")), {"CMD-ERROR-ADDED"}),
    "CMD-ERROR-REMOVED": Case(_meta("session.snapshot", lambda m: m["errors"].remove("RevisionConflict")),
                              {"CMD-ERROR-REMOVED"}),
    "CMD-DURABLE-RETRY-ADDED": Case(_meta("hello", lambda m: m.__setitem__("durable_retry", True)),
                                    {"CMD-DURABLE-RETRY-ADDED"}),
    "CMD-DURABLE-RETRY-REMOVED": Case(_meta("session.close", lambda m: m.__setitem__("durable_retry", False)),
                                      {"CMD-DURABLE-RETRY-REMOVED"}),
    "CAPABILITY-ADDED": Case(lambda p: p.edit("commands/hello.json", lambda d: _capabilities(d).__setitem__(
        "audit", "The server keeps an audit log.")), {"CAPABILITY-ADDED"}),
    "CAPABILITY-REMOVED": Case(lambda p: p.edit("commands/hello.json", lambda d: _capabilities(d).pop(
        "retry.durable")), {"CAPABILITY-REMOVED"}),
    "ERROR-CODE-ADDED": Case(lambda p: p.edit("error.json", _add_error_code), {"ERROR-CODE-ADDED"}),
    "ERROR-CODE-REMOVED": Case(_remove_error_code("ObjectNotFound"), {"ERROR-CODE-REMOVED", "CMD-ERROR-REMOVED"},
                               "inspect no longer answers it either"),
}

# Rules with their own tests below (the version check).
SEPARATE = {"VERSION-MAJOR-REQUIRED", "VERSION-BUMP-ADVISED"}


def test_every_rule_has_a_case() -> None:
    assert set(CASES) | SEPARATE == set(RULES)


@pytest.mark.parametrize("rule_id", sorted(CASES))
def test_rule(tmp_path, rule_id: str) -> None:
    case = CASES[rule_id]
    pair = Pair(tmp_path)
    case.edit(pair)
    report = pair.diff()
    assert rule_ids(report) == case.expected
    change = change_of(report, rule_id)
    assert change.severity == RULES[rule_id].severity
    breaking = any(c.severity == "breaking" for c in report.changes if not c.rule.id.startswith("VERSION-"))
    # A break without a major version bump fails the version check; nothing else does.
    assert ("VERSION-MAJOR-REQUIRED" in rule_ids(report, versions=True)) is breaking
    assert report.exit_status == (1 if breaking else 0)
    checked = assert_witnesses_hold(pair, report)
    if RULES[rule_id].breaks and rule_id not in BEHAVIOUR_ONLY:
        assert checked >= len(RULES[rule_id].breaks), f"{rule_id}: a witness per broken party"
    if rule_id in BEHAVIOUR_ONLY:
        assert all(w.witness is None and "no message shows it" in w.note for w in change.witnesses)
    if RULES[rule_id].witness == "decides" and not RULES[rule_id].breaks:
        assert change.rule.verdict == "no witness found"


@pytest.mark.parametrize("keyword", sorted(TIGHTER))
@pytest.mark.parametrize("direction", ["request", "response"])
def test_bound_keywords(tmp_path, keyword: str, direction: str) -> None:
    """Every bound keyword, tightened and loosened, in both directions, with witnesses both ways."""
    before, after = TIGHTER[keyword]
    where = params if direction == "request" else result
    prefix = "REQ" if direction == "request" else "RES"
    tight = Pair(tmp_path / "tight")
    probe_pair(tight, where, before, after)
    report = tight.diff()
    assert rule_ids(report) == {f"{prefix}-CONSTRAINT-TIGHTENED"}
    assert assert_witnesses_hold(tight, report) == 1
    loose = Pair(tmp_path / "loose")
    probe_pair(loose, where, after, before)
    report = loose.diff()
    expected = "RES-MEMBER-COUNT-LOOSENED" if direction == "response" and "Properties" in keyword else \
        f"{prefix}-CONSTRAINT-LOOSENED"
    assert rule_ids(report) == {expected}
    assert assert_witnesses_hold(loose, report) == (1 if RULES[expected].breaks else 0)


# -- hello limits ----------------------------------------------------------------------------------------


def test_hello_limit_added_optional_is_compatible(tmp_path) -> None:
    pair = Pair(tmp_path)
    _add_limit(required=False)(pair)
    report = pair.diff()
    assert rule_ids(report) == {"RES-MEMBER-OPTIONAL-ADDED"}
    assert change_of(report, "RES-MEMBER-OPTIONAL-ADDED").places == [("success hello", "$.result.limits")]
    assert report.exit_status == 0


def test_hello_limit_added_required_breaks_old_servers(tmp_path) -> None:
    pair = Pair(tmp_path)
    _add_limit(required=True)(pair)
    report = pair.diff()
    assert rule_ids(report) == {"RES-MEMBER-REQUIRED-ADDED"}
    (result_,) = change_of(report, "RES-MEMBER-REQUIRED-ADDED").witnesses
    assert result_.witness is not None and result_.witness.accepted_by == "old"
    assert "max_evaluations_per_minute" in " ".join(result_.witness.rejection)
    assert assert_witnesses_hold(pair, report) == 1


def test_hello_limit_removed_breaks_old_clients(tmp_path) -> None:
    pair = Pair(tmp_path)
    pair.edit("commands/hello.json", lambda d: (_limits(d)["properties"].pop("retry_window_s"),
                                                _limits(d)["required"].remove("retry_window_s")))
    report = pair.diff()
    assert rule_ids(report) == {"RES-MEMBER-REQUIRED-REMOVED"}
    (result_,) = change_of(report, "RES-MEMBER-REQUIRED-REMOVED").witnesses
    assert result_.breaks == "old clients" and result_.witness is not None
    assert "retry_window_s" not in result_.witness.message["result"]["limits"]
    assert assert_witnesses_hold(pair, report) == 1


# -- the version check -----------------------------------------------------------------------------------


def test_breaking_change_without_major_bump_fails_the_version_check(tmp_path) -> None:
    pair = Pair(tmp_path)
    CASES["REQ-MEMBER-REQUIRED-ADDED"].edit(pair)
    report = pair.diff()
    finding = change_of(report, "VERSION-MAJOR-REQUIRED")
    assert finding.severity == "breaking"
    assert "protocol version 2.0" in finding.detail and "spec edition 2.0.0" in finding.detail
    assert report.exit_status == 1


@pytest.mark.parametrize(("version", "edition", "missing"), [
    ("2.0", "1.0.0", "spec edition 2.0.0"),
    ("1.0", "2.0.0", "protocol version 2.0"),
    ("1.1", "1.1.0", "protocol version 2.0"),
])
def test_half_a_major_bump_is_not_enough(tmp_path, version: str, edition: str, missing: str) -> None:
    pair = Pair(tmp_path)
    CASES["REQ-MEMBER-REQUIRED-ADDED"].edit(pair)
    pair.set_version(version)
    pair.set_edition(edition)
    report = pair.diff()
    assert missing in change_of(report, "VERSION-MAJOR-REQUIRED").detail


def test_breaking_change_with_major_bump_passes_the_version_check(tmp_path) -> None:
    pair = Pair(tmp_path)
    CASES["REQ-MEMBER-REQUIRED-ADDED"].edit(pair)
    pair.set_version("2.0")
    pair.set_edition("2.0.0")
    report = pair.diff()
    # The version constant itself changed in every message: that is the bump, not a CONST-CHANGED.
    assert rule_ids(report, versions=True) == {"REQ-MEMBER-REQUIRED-ADDED"}
    assert report.exit_status == 1  # the break itself still fails the gate unless accepted


def test_addition_without_minor_bump_is_advised(tmp_path) -> None:
    pair = Pair(tmp_path)
    CASES["RES-MEMBER-OPTIONAL-ADDED"].edit(pair)
    report = pair.diff()
    advice = change_of(report, "VERSION-BUMP-ADVISED")
    assert advice.severity == "warning" and "minor" in advice.detail
    assert report.exit_status == 0
    assert pair.diff(fail_on="warning").exit_status == 1


def test_addition_with_minor_bump_needs_no_advice(tmp_path) -> None:
    pair = Pair(tmp_path)
    CASES["RES-MEMBER-OPTIONAL-ADDED"].edit(pair)
    pair.set_version("1.1")
    pair.set_edition("1.1.0")
    report = pair.diff()
    assert rule_ids(report, versions=True) == {"RES-MEMBER-OPTIONAL-ADDED"}
    assert report.exit_status == 0


def test_removal_the_spec_files_under_major_is_advised(tmp_path) -> None:
    pair = Pair(tmp_path)
    CASES["RES-MEMBER-OPTIONAL-REMOVED"].edit(pair)
    report = pair.diff()
    assert "major" in change_of(report, "VERSION-BUMP-ADVISED").detail
    assert report.exit_status == 0


def test_a_break_no_message_can_show_says_why(tmp_path) -> None:
    """A reply member that may now be null: the schemas widen, but CMP-3 forbids null in replies, so no
    new server may send one and no witness exists. The change is still reported, with the reason."""
    pair = Pair(tmp_path)
    probe_pair(pair, result, INT, {"type": ["integer", "null"]})
    report = pair.diff()
    change = change_of(report, "RES-TYPE-WIDENED")
    (outcome,) = change.witnesses
    assert outcome.witness is None
    assert "no witness found" in outcome.note and "CMP-3" in outcome.note
