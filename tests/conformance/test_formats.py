"""The kit's own formats each have a JSON Schema and one reader that refuses what does not match it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stui_protocol_kit.conformance.formats import FormatError, check, read_run_report
from stui_protocol_kit.conformance.stateful.sequence import from_jsonl, to_jsonl
from stui_protocol_kit.conformance.vectors import read_vector, vector_mismatches

EXAMPLE = Path(__file__).resolve().parents[2] / "spec" / "examples" / "requests" / "valid"


def test_a_vector_with_a_misspelt_member_is_refused_not_half_checked(tmp_path: Path) -> None:
    vector = json.loads(next(EXAMPLE.glob("*.json")).read_text())
    assert vector_mismatches(vector) == []
    vector["expects"] = vector.pop("expect")  # a typo: without the format, the expectation would be skipped
    path = tmp_path / "typo.json"
    path.write_text(json.dumps(vector))
    with pytest.raises(FormatError, match="expect"):
        read_vector(path)
    assert vector_mismatches(vector) and "expect" in vector_mismatches(vector)[0]


def test_a_sequence_step_with_an_unknown_member_is_refused() -> None:
    good = '{"client": 0, "request": {"id": "1"}}\n{"restart": true}\n'
    assert to_jsonl(from_jsonl(good)) == '{"client": 0, "request": {"id": "1"}}\n{"restart": true}\n'
    for bad in ('{"client": 0, "request": {}, "clinet": 1}', '{"restart": false}', '{"client": -1, "request": 1}'):
        with pytest.raises(ValueError, match="line 1"):
            from_jsonl(bad)


def test_the_run_report_reader_refuses_another_schema_version(tmp_path: Path) -> None:
    path = tmp_path / "old.json"
    path.write_text(json.dumps({"schema_version": 1, "cases": []}))
    with pytest.raises(FormatError, match="schema_version"):
        read_run_report(path)
    with pytest.raises(FormatError):
        check("run-report", {})
