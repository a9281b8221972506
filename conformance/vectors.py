"""Test vectors (spec/examples/): their one reader and the check that the kit reaches each one's verdict.

The format is documented in spec/examples/README.md and has a JSON Schema
(conformance/formats/vector.schema.json): `read_vector` refuses a file that does not match it, so a
malformed vector is reported as malformed instead of being half-checked. `vector_mismatches` says where
the kit's own outcome (codec, validator) differs from what the vector expects; the `validate --vectors`
verb, `lint` and the tests all use it.

This module must never decide validity itself: outcomes come from stui_protocol_kit.protocol.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from stui_protocol_kit.conformance.formats import FormatError, check
from stui_protocol_kit.protocol.codec import (
    DEFAULT_MAX_MESSAGE_BYTES,
    DEFAULT_MAX_NESTING_DEPTH,
    FrameError,
    decode_body,
)
from stui_protocol_kit.protocol.problems import quote
from stui_protocol_kit.protocol.validation import MessageValidator, validator

VECTOR_FORMAT = "vector"


def read_vector(path: str | Path) -> dict[str, Any]:
    """One vector file, checked against the vector format (FormatError when it does not match; OSError
    when it cannot be read)."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except ValueError as exc:  # UnicodeDecodeError included
        raise FormatError(f"not a JSON vector file: {exc}") from None
    check(VECTOR_FORMAT, document)
    return document


def vector_files(names: Iterable[str | Path]) -> list[Path]:
    """The vector files named: files as given, directories searched for `*.json` (FileNotFoundError for
    a name that is neither)."""
    files: list[Path] = []
    for name in names:
        path = Path(name)
        if path.is_dir():
            files.extend(sorted(path.rglob("*.json")))
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(f"{name}: no such file or directory")
    return files


def vector_mismatches(doc: Any, checker: MessageValidator | None = None) -> list[str]:
    """Where the kit's outcome differs from a spec/examples vector's expectation (empty: as expected).
    A document that does not match the vector format is one mismatch saying why."""
    checker = checker or validator()
    try:
        check(VECTOR_FORMAT, doc)
    except FormatError as exc:
        return [str(exc)]
    problems: list[str] = []
    kind, verdict, expect = doc["kind"], doc["verdict"], doc["expect"]

    def compare(what: str, expected: Any, got: Any) -> None:
        if expected != got:
            problems.append(f"{what}: expected {quote(expected)}, got {quote(got)}")

    if kind == "frame":
        limits = doc.get("limits") or {}
        try:
            body = base64.b64decode(doc.get("body_base64", ""), validate=True)
        except (binascii.Error, ValueError):
            return ["body_base64 is not base64"]
        try:
            decode_body(body, max_bytes=limits.get("max_message_bytes", DEFAULT_MAX_MESSAGE_BYTES),
                        max_depth=limits.get("max_nesting_depth", DEFAULT_MAX_NESTING_DEPTH))
            outcome: tuple[str, str | None, str | None] = ("valid", None, None)
        except FrameError as exc:
            outcome = ("invalid", exc.code, exc.reason)
        compare("verdict", verdict, outcome[0])
        if verdict == "invalid":
            compare("error_code", expect.get("error_code"), outcome[1])
            compare("reason", expect.get("reason"), outcome[2])
        return problems
    message = doc["message"]
    if kind == "response":
        violations = checker.check_response(message)
        compare("verdict", verdict, "invalid" if violations else "valid")
        if verdict == "invalid" and "paths" in expect:
            compare("paths", sorted(set(expect["paths"])), sorted({v.path for v in violations}))
        return problems
    result = checker.check_request(message)
    compare("verdict", verdict, "valid" if result.ok else "invalid")
    if verdict == "invalid":
        compare("error_code", expect.get("error_code"), result.error_code)
        if "reason" in expect:
            compare("reason", expect["reason"], result.reason)
        if "paths" in expect:
            _, violations = checker.check(message, "request")
            compare("paths", sorted(set(expect["paths"])), sorted({v.path for v in violations}))
        if "echo" in expect:
            compare("echo", expect["echo"], {"id": result.id, "command": result.command})
    return problems


