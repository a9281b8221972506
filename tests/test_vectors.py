"""The test vectors in spec/examples/: each gets its expected verdict, and together they cover the protocol.

The expectations are checked here directly against the codec and the validator (the oracle), not via
the `validate --vectors` code path, so a bug there cannot make these tests pass vacuously. Coverage is
read from the schema registry (commands, error codes, InvalidRequest reasons), never from a list here.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest

from stui_protocol_kit.conformance.vectors import read_vector
from stui_protocol_kit.protocol import requirements
from stui_protocol_kit.protocol.codec import FrameError, decode_body
from stui_protocol_kit.protocol.schemas import registry
from stui_protocol_kit.protocol.validation import validator
from stui_protocol_kit.reference_server.evaluator import EvaluationError, evaluate

EXAMPLES = Path(__file__).resolve().parent.parent / "spec" / "examples"
KIND_OF_DIR = {"requests": "request", "responses": "response", "frames": "frame"}
# Request errors that the validator alone decides (steps 2-5 of the processing order).
REQUEST_ERROR_CODES = ("InvalidRequest", "UnknownCommand", "UnsupportedVersion")
# InvalidRequest reasons a single body cannot show: `frames` is about the ZeroMQ frame count, `id_reused`
# needs server state (retry cache); `schema` is covered by requests/invalid.
NOT_BODY_REASONS = {"frames", "id_reused", "schema"}


def _load_all() -> dict[str, dict[str, Any]]:
    return {p.relative_to(EXAMPLES).as_posix(): json.loads(p.read_text(encoding="utf-8"))
            for p in sorted(EXAMPLES.rglob("*.json"))}


def _load_evaluate() -> dict[str, dict[str, Any]]:
    """evaluate/*.jsonl: one case per line, named `file:line`."""
    return {f"{p.relative_to(EXAMPLES).as_posix()}:{n}": json.loads(line)
            for p in sorted((EXAMPLES / "evaluate").glob("*.jsonl"))
            for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), start=1) if line.strip()}


VECTORS = _load_all()
EVALUATE = _load_evaluate()


def _of(kind: str, verdict: str) -> dict[str, dict[str, Any]]:
    return {name: doc for name, doc in VECTORS.items() if doc["kind"] == kind and doc["verdict"] == verdict}


def test_there_are_vectors_in_every_directory() -> None:
    for folder in ("requests/valid", "requests/invalid", "responses/valid", "responses/invalid", "frames"):
        assert any(name.startswith(folder + "/") for name in VECTORS), folder


@pytest.mark.parametrize("name", sorted(VECTORS))
def test_vector_file_is_well_formed(name: str) -> None:
    doc = read_vector(EXAMPLES / name)  # the one reader: it checks conformance/formats/vector.schema.json
    assert doc == VECTORS[name]
    top = name.split("/")[0]
    assert isinstance(doc.get("description"), str) and doc["description"].strip()
    assert doc["kind"] == KIND_OF_DIR[top]
    assert doc["verdict"] in ("valid", "invalid")
    if top != "frames":
        assert name.split("/")[1] == doc["verdict"], "requests/valid holds valid vectors, and so on"
        assert "message" in doc
    else:
        base64.b64decode(doc["body_base64"], validate=True)
        assert set(doc["limits"]) == {"max_message_bytes", "max_nesting_depth"}
    expect = doc["expect"]
    if "requires" in doc:
        assert top != "frames" and doc["requires"], "requires names the checks beyond JSON Schema"
        assert set(doc["requires"]) <= set(doc.get("requirements", [])), "what a vector requires, it cites"
    if doc["verdict"] == "valid":
        assert expect == {}
    elif doc["kind"] == "request":
        assert expect["error_code"] in registry().error_codes
        assert expect["paths"], "an invalid request names the violated path(s)"
        assert set(expect["echo"]) == {"id", "command"}
    elif doc["kind"] == "response":
        assert expect["paths"]


def test_cited_requirements_exist_in_the_spec() -> None:
    index = requirements.load()
    cited = {rid for doc in (*VECTORS.values(), *EVALUATE.values())
             for rid in (*doc.get("requirements", []), *doc.get("requires", []))}
    assert cited, "some vectors cite the requirement they illustrate"
    assert sorted(cited - set(index)) == []


@pytest.mark.parametrize("name", sorted(n for n, d in VECTORS.items() if d["kind"] == "request"))
def test_request_vector_gets_its_verdict(name: str) -> None:
    doc, v = VECTORS[name], validator()
    verdict = v.check_request(doc["message"])
    if doc["verdict"] == "valid":
        assert verdict.ok, verdict.message
        assert v.check(doc["message"], "request")[1] == []
        return
    expect = doc["expect"]
    assert verdict.error_code == expect["error_code"], verdict.message
    if expect["error_code"] == "InvalidRequest":
        assert verdict.reason == expect["reason"]
    assert {"id": verdict.id, "command": verdict.command} == expect["echo"]
    _, violations = v.check(doc["message"], "request")
    assert sorted({x.path for x in violations}) == sorted(expect["paths"]), violations


@pytest.mark.parametrize("name", sorted(n for n, d in VECTORS.items() if d["kind"] == "response"))
def test_response_vector_gets_its_verdict(name: str) -> None:
    doc = VECTORS[name]
    violations = validator().check_response(doc["message"])
    if doc["verdict"] == "valid":
        assert violations == []
    else:
        assert sorted({x.path for x in violations}) == sorted(doc["expect"]["paths"]), violations


@pytest.mark.parametrize("name", sorted(n for n, d in VECTORS.items() if d["kind"] == "frame"))
def test_frame_vector_gets_its_verdict(name: str) -> None:
    doc = VECTORS[name]
    body = base64.b64decode(doc["body_base64"])
    limits = doc["limits"]
    try:
        decode_body(body, max_bytes=limits["max_message_bytes"], max_depth=limits["max_nesting_depth"])
    except FrameError as exc:
        assert doc["verdict"] == "invalid", exc.message
        assert (exc.code, exc.reason) == (doc["expect"]["error_code"], doc["expect"]["reason"])
    else:
        assert doc["verdict"] == "valid"


def _plain_schema_accepts(doc: dict[str, Any]) -> bool:
    """The verdict of a plain JSON Schema validator (jsonschema-rs, no kit code): the message checked against
    its command's or error code's schema, as a Rust or Pharo implementation generated from schemas/ would."""
    reg, message = registry(), doc["message"]
    command = message.get("command")
    if doc["kind"] == "request":
        if command not in reg.commands:
            return False  # no schema accepts a request for an unknown (or missing) command
        schema = reg.request_schema(command)
    else:
        error = message.get("error")
        code = error.get("code") if isinstance(error, dict) else None
        if message.get("status") == "success" and command in reg.commands:
            schema = reg.success_schema(command)
        elif message.get("status") == "error" and code in reg.error_codes:
            schema = reg.error_response_schema(code)
        else:
            schema = reg.response_schema()
    return jsonschema_rs.validator_for(schema, validate_formats=False).is_valid(message)


@pytest.mark.parametrize("name", sorted(n for n, d in VECTORS.items() if d["kind"] != "frame"))
def test_requires_marks_exactly_the_vectors_json_schema_alone_gets_wrong(name: str) -> None:
    # JSON Schema counts 1800.0 as an integer and allows null in members it does not define, so the
    # verdict of these vectors needs a check beyond JSON Schema (CMP-3/5/6); `requires` says which.
    doc = VECTORS[name]
    plain_is_right = _plain_schema_accepts(doc) is (doc["verdict"] == "valid")
    assert plain_is_right is ("requires" not in doc), "tag the vector with requires, or drop the tag"


def _minimum_limits() -> dict[str, int]:
    limits = registry().document("commands/hello.json")["$defs"]["Result"]["properties"]["limits"]["properties"]
    return {name: limits[name]["minimum"] for name in ("max_message_bytes", "max_nesting_depth")}


@pytest.mark.parametrize("name", sorted(n for n, d in VECTORS.items() if d["kind"] == "frame"))
def test_frame_vector_assumes_the_minimum_limits(name: str) -> None:
    # So every frame vector can be replayed against any server announcing the minimums (11-limits.md).
    assert VECTORS[name]["limits"] == _minimum_limits()


# -- evaluate semantics, proven against the reference evaluator -------------------------------------


def test_evaluate_vectors_cover_every_class_and_errors() -> None:
    assert EVALUATE, "spec/examples/evaluate/*.jsonl holds cases"
    seen = {c["expect"].get("class", c["expect"].get("error")) for c in EVALUATE.values()}
    assert seen == {"SmallInteger", "LargePositiveInteger", "LargeNegativeInteger", "ByteString", "WideString",
                    "EvaluationError"}


@pytest.mark.parametrize("name", sorted(EVALUATE))
def test_evaluate_vector_matches_the_reference_evaluator(name: str) -> None:
    case = EVALUATE[name]
    assert set(case) <= {"description", "code", "expect", "requirements"} and isinstance(case["code"], str)
    expect = case["expect"]
    assert expect == {"error": "EvaluationError"} or set(expect) == {"class", "print_string"}
    try:
        value, _ = evaluate(case["code"], {})
    except EvaluationError as exc:
        assert expect == {"error": "EvaluationError"}, str(exc)
    else:
        assert {"class": value.class_name, "print_string": value.print_string} == expect


# -- coverage, read from the registry --------------------------------------------------------------


def test_every_command_has_a_valid_request_and_a_valid_success() -> None:
    commands = set(registry().commands)
    requested = {d["message"]["command"] for d in _of("request", "valid").values()}
    answered = {d["message"]["command"] for d in _of("response", "valid").values()
                if d["message"]["status"] == "success"}
    assert sorted(commands - requested) == []
    assert sorted(commands - answered) == []


def test_every_command_has_invalid_request_vectors() -> None:
    invalid = {d["message"].get("command") for d in _of("request", "invalid").values()
               if d["expect"]["error_code"] == "InvalidRequest" and d["expect"]["paths"] != ["$.command"]}
    assert sorted(set(registry().commands) - invalid) == []


def test_every_error_code_has_a_valid_error_reply() -> None:
    codes = {d["message"]["error"]["code"] for d in _of("response", "valid").values()
             if d["message"]["status"] == "error"}
    assert sorted(set(registry().error_codes) - codes) == []


def test_every_request_level_error_code_has_an_invalid_request() -> None:
    codes = {d["expect"]["error_code"] for d in _of("request", "invalid").values()}
    assert set(REQUEST_ERROR_CODES) <= codes
    assert codes <= set(registry().error_codes)


def test_every_body_level_invalid_request_reason_has_a_frame_vector() -> None:
    details = registry().document("error.json")["$defs"]["InvalidRequestDetails"]
    reasons: set[str] = set()
    for variant in details["oneOf"]:  # one variant per shape of details, each naming its reasons
        reason = variant["properties"]["reason"]
        reasons |= {reason["const"]} if "const" in reason else set(reason["enum"])
    reasons -= NOT_BODY_REASONS
    seen = {d["expect"]["reason"] for d in _of("frame", "invalid").values()}
    assert sorted(reasons - seen) == []
    assert any(d["expect"]["error_code"] == "PayloadTooLarge" for d in _of("frame", "invalid").values())


def test_readme_describes_every_directory() -> None:
    readme = (EXAMPLES / "README.md").read_text(encoding="utf-8")
    for folder in ("requests/valid", "requests/invalid", "responses/valid", "responses/invalid", "frames", "evaluate/"):
        assert folder in readme
