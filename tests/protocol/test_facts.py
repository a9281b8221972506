"""One home per fact: the facts stui_protocol_kit.protocol.facts exports come from schemas/, the spec's
limits table agrees with the schema, each fact is written once in the schemas, and the protocol core
and the reference server spell none of them as a string literal (they import the symbols)."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from stui_protocol_kit.protocol import facts, lifecycle
from stui_protocol_kit.protocol.requirements import spec_dir
from stui_protocol_kit.protocol.schemas import registry, schema_dir

REPO = Path(__file__).resolve().parents[2]


def _spec_limits() -> dict[str, tuple[int, bool]]:
    """limit -> (minimum, required) from the table of spec/11-limits.md, parsed from the Markdown."""
    text = (spec_dir() / "11-limits.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\|\s*`([a-z_]+)`( \(optional\))?\s*\|[^|]*\|\s*(\d+)\s*\|", text, re.M)
    assert len(rows) >= 7, "the limits table of spec/11-limits.md was not found"
    return {name: (int(minimum), not optional) for name, optional, minimum in rows}


def test_the_spec_limits_table_agrees_with_the_schema() -> None:
    assert _spec_limits() == {n: (info.minimum, info.required) for n, info in facts.LIMITS.items()}


def test_limit_facts_are_read_from_hello_json() -> None:
    schema = registry().document("commands/hello.json")["$defs"]["Result"]["properties"]["limits"]
    assert {n: s["minimum"] for n, s in schema["properties"].items()} == facts.LIMIT_MINIMUMS
    assert set(schema["required"]) == facts.REQUIRED_LIMITS
    assert {limit.value for limit in facts.Limit} == set(schema["properties"])


def test_error_codes_are_listed_once_and_every_variant_is_found_by_its_code() -> None:
    reg = registry()
    doc = reg.document("error.json")
    assert "ErrorCode" not in doc["$defs"]  # the variants' `code` constants are the one list
    codes = [v["properties"]["code"]["const"] for v in doc["oneOf"]]
    assert list(reg.error_codes) == codes == [c.value for c in facts.ErrorCode]
    for code in codes:
        assert reg.error_variant(code)["properties"]["code"]["const"] == code
        bundled = reg.error_response_schema(code)["properties"]["error"]
        assert bundled["properties"]["code"] == {"const": code}
    with pytest.raises(KeyError):
        reg.error_variant("NoSuchError")


def test_invalid_request_reasons_come_from_the_details_schema() -> None:
    details = registry().document("error.json")["$defs"]["InvalidRequestDetails"]
    text = json.dumps(details)
    for reason in facts.InvalidRequestReason:
        assert f'"{reason.value}"' in text
    assert facts.InvalidRequestReason.ID_REUSED == "id_reused"


def test_capabilities_are_described_and_every_command_capability_is_one() -> None:
    assert set(facts.CAPABILITY_DESCRIPTIONS) == {c.value for c in facts.Capability}
    assert all(len(text) > 20 for text in facts.CAPABILITY_DESCRIPTIONS.values())
    named = {info.capability for info in facts.COMMANDS.values() if info.capability}
    assert named <= set(facts.CAPABILITY_DESCRIPTIONS)


def test_command_metadata() -> None:
    assert {"session.snapshot", "session.close"} == facts.DURABLE_RETRY_COMMANDS
    assert facts.DURABLE_RETRY_COMMANDS <= facts.SESSION_SCOPED_COMMANDS
    assert {"hello", "session.create"}.isdisjoint(facts.SESSION_SCOPED_COMMANDS)
    assert {c.value for c in facts.Command} == set(registry().commands)


def test_the_protocol_version_is_written_once_in_the_schemas() -> None:
    assert registry().document("common.json")["$defs"]["Version"]["const"] == facts.PROTOCOL_VERSION
    sources = [p for p in schema_dir().rglob("*.json") if "bundle" not in p.parts]
    spelled = [p.name for p in sources if f'"{facts.PROTOCOL_VERSION}"' in p.read_text(encoding="utf-8")]
    assert spelled == ["common.json"]


def test_the_lifecycle_names_the_error_details_member_the_schema_requires() -> None:
    for state, member in lifecycle.ENDED_AT_MEMBER.items():
        code = lifecycle.STATE_ERRORS[state]
        assert code is not None
        details_ref = registry().error_variant(code)["properties"]["details"]["$ref"]
        details = registry().document("error.json")["$defs"][details_ref.rsplit("/", 1)[-1]]
        assert details["required"] == [member]


# Strings that are facts and nothing else: no module of the protocol core or the reference server
# may spell them; they import the symbols of stui_protocol_kit.protocol.facts. (Short reason words
# such as "json" or "schema" are also ordinary words, so only the unambiguous ones are scanned.)
_FACT_STRINGS = (
    {c.value for c in facts.ErrorCode}
    | {facts.PROTOCOL_VERSION, facts.Capability.RETRY_DURABLE.value}
    | {r.value for r in facts.InvalidRequestReason if "_" in r.value or r.value in ("frames", "encoding")}
)


@pytest.mark.parametrize("part", ["protocol", "reference_server"])
def test_no_fact_is_spelled_as_a_string_literal(part: str) -> None:
    found = []
    for path in sorted((REPO / part).rglob("*.py")):
        if path.name == "facts.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        exported = {id(elt) for node in ast.walk(tree) if isinstance(node, ast.Assign)
                    and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets)
                    for elt in ast.walk(node.value)}
        for node in ast.walk(tree):
            if (isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in _FACT_STRINGS
                    and id(node) not in exported):
                found.append(f"{path.relative_to(REPO)}:{node.lineno} {node.value!r}")
    assert found == []
