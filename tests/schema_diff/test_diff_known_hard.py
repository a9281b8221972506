"""The known-hard cases of issue 13, where other schema diff tools give wrong verdicts:

- a `$ref` moved between files (or inlined) with the same meaning is no change;
- a reordered `oneOf` is no change (also error.json's whole registry, whose variants the registry now
  binds to codes by their `code` constant rather than by position);
- `additionalProperties` / `unevaluatedProperties` changes are judged by direction, and the two
  spellings of a closed plain object are the same;
- a pattern changed to an equivalent one: no change when the normal forms agree, "no witness found"
  (never a claimed break) when only the witness search can tell.
"""

from __future__ import annotations

import json

import jsonschema_rs
from schema_pairs import SNAPSHOT, Pair, change_of, params, probe_pair, result, rule_ids

from stui_protocol_kit.protocol.validation import strict_validator


def test_ref_moved_to_another_file_is_no_change(tmp_path) -> None:
    pair = Pair(tmp_path)
    new = pair.schemas("new")
    common = json.loads((new / "common.json").read_text())
    token = common["$defs"].pop("Token")
    (new / "common.json").write_text(json.dumps(common, indent=2))
    (new / "secrets.json").write_text(json.dumps({
        "$schema": "https://json-schema.org/draft/2020-12/schema", "$id": "https://stui.dev/schemas/v1/secrets.json",
        "title": "Secrets", "$defs": {"Token": token}}, indent=2))
    for path in [*new.glob("*.json"), *new.glob("commands/*.json")]:
        text = path.read_text()
        prefix = "../" if path.parent.name == "commands" else ""
        path.write_text(text.replace(f'"{prefix}common.json#/$defs/Token"', f'"{prefix}secrets.json#/$defs/Token"'))
    assert "secrets.json#/$defs/Token" in (new / "commands" / "session.resume.json").read_text()
    report = pair.diff()
    assert report.changes == []
    assert report.exit_status == 0


def test_version_moved_from_inline_constants_to_common_json_is_no_change(tmp_path) -> None:
    """Older schema sets wrote `"version": {"const": "1.0"}` in request.json and response.json; newer ones
    `{"$ref": "common.json#/$defs/Version"}`. Diffing across that move (the history of this repository)
    must show nothing, and both sides must read protocol version 1.0."""
    pair = Pair(tmp_path)
    version = json.loads((pair.schemas("old") / "common.json").read_text())["$defs"]["Version"]
    inline = {k: v for k, v in version.items() if k != "description"}
    pair.edit("request.json", lambda d: d["properties"].__setitem__("version", dict(inline)), "old")
    pair.edit("response.json", lambda d: [d["$defs"][n]["properties"].__setitem__("version", dict(inline))
                                          for n in ("Success", "Error")], "old")
    pair.edit("common.json", lambda d: d["$defs"].pop("Version"), "old")
    report = pair.diff()
    assert report.old.protocol_version == report.new.protocol_version == version["const"]
    assert {c.rule.id for c in report.changes} <= {"ANNOTATION-CHANGED"}  # the new description only
    assert report.exit_status == 0


def test_ref_inlined_with_the_same_content_is_no_change(tmp_path) -> None:
    pair = Pair(tmp_path)
    revision = json.loads((pair.schemas("old") / "common.json").read_text())["$defs"]["Revision"]
    pair.edit(SNAPSHOT, lambda d: params(d)["properties"].__setitem__("expected_revision", revision))
    assert pair.diff().changes == []


def test_reordered_one_of_is_no_change(tmp_path) -> None:
    pair = Pair(tmp_path)
    pair.edit("error.json", lambda d: d["$defs"]["InvalidRequestDetails"]["oneOf"].reverse())
    probe_pair(pair, params, {"oneOf": [{"type": "string"}, {"type": "integer"}]},
               {"oneOf": [{"type": "integer"}, {"type": "string"}]})
    assert pair.diff().changes == []


def test_reordered_error_registry_is_no_change(tmp_path) -> None:
    pair = Pair(tmp_path)
    pair.edit("error.json", lambda d: d["oneOf"].reverse())
    assert pair.diff().changes == []


def test_closed_object_spelled_with_unevaluated_properties_is_no_change(tmp_path) -> None:
    pair = Pair(tmp_path)
    pair.edit(SNAPSHOT, lambda d: params(d).__setitem__("unevaluatedProperties", params(d).pop(
        "additionalProperties")))
    assert pair.diff().changes == []


def test_unevaluated_properties_closing_a_request_object_breaks_old_clients(tmp_path) -> None:
    pair = Pair(tmp_path)
    pair.edit("state.json", lambda d: d["$defs"]["ClientState"]["properties"]["inspector"].__setitem__(
        "unevaluatedProperties", False))
    report = pair.diff()
    assert rule_ids(report) == {"REQ-OBJECT-CLOSED"}
    (outcome,) = change_of(report, "REQ-OBJECT-CLOSED").witnesses
    assert outcome.breaks == "old clients" and outcome.witness is not None
    assert outcome.witness.message["parameters"]["state"]["inspector"] != {}


def test_unevaluated_properties_closing_a_reply_object_breaks_old_servers(tmp_path) -> None:
    pair = Pair(tmp_path)
    pair.edit(SNAPSHOT, lambda d: result(d).__setitem__("unevaluatedProperties", False))
    report = pair.diff()
    assert rule_ids(report) == {"RES-OBJECT-CLOSED"}
    (outcome,) = change_of(report, "RES-OBJECT-CLOSED").witnesses
    assert outcome.breaks == "old servers" and outcome.witness is not None and outcome.witness.accepted_by == "old"


def test_opening_an_object_is_breaking_for_requests_and_compatible_for_replies(tmp_path) -> None:
    requests = Pair(tmp_path / "requests")
    requests.edit(SNAPSHOT, lambda d: params(d).pop("additionalProperties"))
    report = requests.diff()
    assert rule_ids(report) == {"REQ-OBJECT-OPENED"} and report.exit_status == 1
    replies = Pair(tmp_path / "replies")
    replies.edit(SNAPSHOT, lambda d: result(d).__setitem__("unevaluatedProperties", False), "old")
    report = replies.diff()
    assert rule_ids(report) == {"RES-OBJECT-OPENED"} and report.exit_status == 0


def test_equivalent_pattern_by_normal_form_is_no_change(tmp_path) -> None:
    pair = Pair(tmp_path)
    pair.edit("common.json", lambda d: d["$defs"]["Token"].__setitem__("pattern", "^[-_0-9a-zA-Z]{43,128}$"))
    report = pair.diff()
    assert rule_ids(report) == {"PATTERN-RESPELLED"}
    assert {c.severity for c in report.changes} == {"none"}
    assert report.exit_status == 0


def test_equivalent_pattern_by_search_is_no_witness_not_a_break(tmp_path) -> None:
    pair = Pair(tmp_path)
    equivalent = "^[A-Za-z0-9_.:-][A-Za-z0-9_.:-]*$"  # was ^[A-Za-z0-9_.:-]+$
    pair.edit("common.json", lambda d: d["$defs"]["ObjectId"].__setitem__("pattern", equivalent))
    report = pair.diff()
    assert rule_ids(report) == {"REQ-PATTERN-NO-WITNESS", "RES-PATTERN-NO-WITNESS"}
    assert {c.rule.verdict for c in report.changes if not c.rule.id.startswith("VERSION")} == {"no witness found"}
    assert all(c.severity == "warning" for c in report.changes)
    assert report.exit_status == 0


def test_backslash_d_is_not_a_respelled_digit_class(tmp_path) -> None:
    """`\\d` and `[0-9]` keep different normal forms: Python's `\\d` matches every Unicode digit. No
    witness can be shown either, because jsonschema-rs reads `\\d` as ASCII (ECMA-262) and a value the
    two validators disagree on is never a witness: the change is reported as "no witness found"."""
    pair = Pair(tmp_path)
    probe_pair(pair, params, {"type": "string", "pattern": "^[0-9]+$"}, {"type": "string", "pattern": "^\\d+$"})
    report = pair.diff()
    assert rule_ids(report) == {"REQ-PATTERN-NO-WITNESS"}
    digits = "\u0661\u0662"  # Arabic-Indic 1 and 2
    schema = {"type": "string", "pattern": "^\\d+$"}
    assert strict_validator(schema).is_valid(digits) != jsonschema_rs.validator_for(schema).is_valid(digits)


def test_a_type_that_a_constant_already_implies_is_no_change(tmp_path) -> None:
    pair = Pair(tmp_path)
    pair.edit("request.json", lambda d: d["properties"]["version"].__setitem__("type", "string"))
    assert pair.diff().changes == []


def test_facts_an_older_schema_set_did_not_state_are_not_compared(tmp_path) -> None:
    """Older schema sets left `durable_retry` and the capability list to prose: a flag or list appearing
    is writing a fact down, not changing it (this repository's history has exactly that step)."""
    pair = Pair(tmp_path)
    for path in pair.schemas("old").glob("commands/*.json"):
        rel = path.relative_to(pair.schemas("old")).as_posix()
        pair.edit(rel, lambda d: d["x-stui-command"].pop("durable_retry", None), "old")
    pair.edit("commands/hello.json", lambda d: d["$defs"]["Result"]["properties"]["capabilities"].pop(
        "x-stui-capabilities"), "old")
    report = pair.diff()
    assert report.changes == []


def test_members_moved_into_variants_are_judged_whole(tmp_path) -> None:
    """An object split into oneOf variants (as InvalidRequestDetails once was): no misleading member
    rules, one change decided by witnesses (here: the new variants accept less)."""
    pair = Pair(tmp_path)
    probe_pair(pair, result,
               {"type": "object", "required": ["reason"], "properties": {"reason": {"type": "string"},
                                                                        "items": {"type": "array"}}},
               {"oneOf": [{"type": "object", "required": ["reason", "items"],
                           "properties": {"reason": {"const": "list"}, "items": {"type": "array", "minItems": 1}}},
                          {"type": "object", "required": ["reason"],
                           "properties": {"reason": {"enum": ["json", "frames"]}}}]})
    report = pair.diff()
    assert {c.rule.id for c in report.changes if not c.rule.id.startswith("VERSION")} == {"RES-SCHEMA-NARROWED"}
    change = next(c for c in report.changes if c.rule.id == "RES-SCHEMA-NARROWED")
    assert change.detail == "node restructured: oneOf added"
    (outcome,) = change.witnesses
    assert outcome.witness is not None and outcome.witness.accepted_by == "old"


def test_a_reply_that_now_forbids_a_member_has_a_witness_carrying_it(tmp_path) -> None:
    """`not: {required: [...]}` added to the success envelope (this repository's history has it): an old
    server's success reply that also carried `error` is rejected by a new client."""
    pair = Pair(tmp_path)
    pair.edit("response.json", lambda d: d["$defs"]["Success"].pop("not"), "old")
    report = pair.diff()
    assert {c.rule.id for c in report.changes if not c.rule.id.startswith("VERSION")} == {"RES-SCHEMA-NARROWED"}
    change = next(c for c in report.changes if c.rule.id == "RES-SCHEMA-NARROWED")
    assert len(change.places) == len(pair.diff().new.registry.commands)  # every success kind, grouped once
    (outcome,) = change.witnesses
    assert outcome.witness is not None and "error" in outcome.witness.message
