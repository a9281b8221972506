"""Message validation against `schemas/`: a fast verdict on the hot path, rich violations on failure.

Two validators per message kind, both compiled once from the registry's bundled schemas:
jsonschema-rs answers "valid?" in microseconds for the common case; only when it says no (or when the
message holds a non-integer number) does python-jsonschema run, to list every violation with its JSON
path, the rule broken and the requirement ID the schema annotates (`x-requirement`).

Dispatch follows the protocol rather than a top-level `oneOf`: a request is checked against its
command's schema, a success against its command's result, an error against its code's variant. So a
wrong parameter is reported against that command's schema, not as a wall of `oneOf` noise.

This module must never do I/O and never restate a field list; what a message may hold comes from the
registry.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Literal

import jsonschema
import jsonschema_rs
from jsonschema.exceptions import ValidationError, best_match

from stui_protocol_kit.protocol.facts import ErrorCode, InvalidRequestReason
from stui_protocol_kit.protocol.problems import quote
from stui_protocol_kit.protocol.redaction import secret_member_names
from stui_protocol_kit.protocol.schemas import SchemaRegistry, registry

Direction = Literal["request", "response"]


@dataclass(frozen=True)
class Violation:
    """One broken rule: where (JSONPath), what, which keyword, and the spec requirement if known."""

    path: str
    message: str
    rule: str
    requirement: str | None = None

    def as_dict(self) -> dict[str, str]:
        out = {"path": self.path, "message": self.message, "rule": self.rule}
        if self.requirement:
            out["requirement"] = self.requirement
        return out


@dataclass(frozen=True)
class RequestVerdict:
    """The outcome of checking a request, in the spec's processing order (steps 2-5).

    `error_code` is None when the request may be dispatched; otherwise the error the server answers,
    with `reason` for InvalidRequest. `id` and `command` are what an error reply echoes."""

    error_code: str | None
    id: str | None
    command: str | None
    reason: str | None = None
    message: str = ""
    violations: tuple[Violation, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error_code is None


def _is_strict_integer(_checker: Any, instance: Any) -> bool:
    # JSON Schema counts 1800.0 as an integer; a Rust client reading it into a u64 fails (spec CMP).
    return isinstance(instance, int) and not isinstance(instance, bool)


@cache
def ecma_regex(pattern: str) -> re.Pattern[str]:
    """A JSON Schema (ECMA-262) pattern as a Python regex. ECMA's `$` matches only at the very end;
    Python's also matches before a final newline, which let `"hello\\n"` pass as a command name."""
    return re.compile(re.sub(r"(?<!\\)\$", r"\\Z", pattern))


def _ecma_pattern(validator: Any, pattern: str, instance: Any, _schema: Any) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and not ecma_regex(pattern).search(instance):
        yield ValidationError(f"{quote(instance)} does not match {quote(pattern)}")


_RichValidator = jsonschema.validators.extend(
    jsonschema.Draft202012Validator,
    validators={"pattern": _ecma_pattern},
    type_checker=jsonschema.Draft202012Validator.TYPE_CHECKER.redefine("integer", _is_strict_integer),
)


def strict_validator(schema: Any) -> Any:
    """python-jsonschema (2020-12) for `schema` with the kit's two corrections: an integer is written
    without fraction (`1800.0` is not one, spec CMP) and `$` in a pattern matches only at the very end
    (ECMA-262). Tools that must agree with the kit's verdicts (the schema diff's witnesses) use this."""
    return _RichValidator(schema)


def _free_form_paths(schema: dict[str, Any]) -> frozenset[tuple[str, ...]]:
    """Member paths at which the schema allows any JSON object (the client-owned documents): a
    non-integer number there is data, not a mistyped integer, so it need not leave the fast path."""
    defs = schema.get("$defs", {})
    found: set[tuple[str, ...]] = set()

    def walk(node: Any, path: tuple[str, ...], depth: int) -> None:
        while isinstance(node, dict) and "$ref" in node and depth < 50:
            node = defs.get(node["$ref"].rsplit("/", 1)[-1], {})
            depth += 1
        if not isinstance(node, dict) or depth > 50:
            return
        props = node.get("properties")
        if node.get("type") == "object" and not props and not any(
            k in node for k in ("additionalProperties", "propertyNames", "patternProperties")
        ):
            found.add(path)
            return
        for name, sub in (props or {}).items():
            walk(sub, (*path, name), depth + 1)
        for key in ("oneOf", "anyOf", "allOf"):
            for sub in node.get(key, []):
                walk(sub, path, depth + 1)

    walk(schema, (), 0)
    return frozenset(found)


def _number_paths(schema: dict[str, Any]) -> frozenset[tuple[str, ...]]:
    """Member paths (array items as "[]") the schema itself types as `number`: a non-integer number there
    is the schema's business (no v1 schema does that, but a schema under review by `diff` may), not a
    stray one for CMP-5."""
    defs = schema.get("$defs", {})
    found: set[tuple[str, ...]] = set()

    def walk(node: Any, path: tuple[str, ...], depth: int) -> None:
        while isinstance(node, dict) and "$ref" in node and depth < 50:
            node = defs.get(node["$ref"].rsplit("/", 1)[-1], {})
            depth += 1
        if not isinstance(node, dict) or depth > 50:
            return
        types = node.get("type")
        if types == "number" or (isinstance(types, list) and "number" in types):
            found.add(path)
        for name, sub in (node.get("properties") or {}).items():
            walk(sub, (*path, name), depth + 1)
        if isinstance(node.get("items"), dict):
            walk(node["items"], (*path, "[]"), depth + 1)
        for key in ("oneOf", "anyOf", "allOf"):
            for sub in node.get(key, []):
                walk(sub, path, depth + 1)

    walk(schema, (), 0)
    return frozenset(found)


def _float_outside(value: Any, free: frozenset[tuple[str, ...]], path: tuple[str, ...] = ()) -> bool:
    if path in free:
        return False
    if isinstance(value, float):
        return True
    if isinstance(value, dict):
        return any(_float_outside(v, free, (*path, k)) for k, v in value.items())
    if isinstance(value, list):
        # Array items are never free-form documents' roots in v1; keep the path, mark the level.
        return any(_float_outside(v, free, (*path, "[]")) for v in value)
    return False


def _stray_values(reply: dict[str, Any], kind: _Kind) -> list[Violation]:
    """What the schemas cannot see where they allow unknown members: `null` (CMP-3) - only an error
    reply's id and command and the client's own documents may hold it - and a number written with a
    fraction or exponent (CMP-5) - every number of a v1 reply is an integer outside those documents. The
    schemas catch both at the members they name (a float there is reported by the `integer` check)."""
    found: list[Violation] = []

    def walk(node: Any, path: tuple[str, ...]) -> None:
        if path in kind.free_form:
            return
        if node is None:
            if not (reply.get("status") == "error" and path in (("id",), ("command",))):
                found.append(Violation(_json_path(path), "null is not allowed in a reply: leave an optional member out",
                                       "null", "CMP-3"))
        elif isinstance(node, float):
            if path not in kind.number_paths:
                found.append(Violation(_json_path(path), f"{quote(node)} is not an integer: write integers without "
                                       "fraction or exponent", "float", "CMP-5"))
        elif isinstance(node, dict):
            for key, value in node.items():
                walk(value, (*path, key))
        elif isinstance(node, list):
            for value in node:
                walk(value, (*path, "[]"))

    walk(reply, ())
    return found


def _json_path(path: tuple[str, ...]) -> str:
    return "$" + "".join("[*]" if p == "[]" else f".{p}" for p in path)


_SECRET_SEARCH_DEPTH = 3  # the envelope (0), parameters/result (1), their members (2), one more level
_SECRET_SEARCH_NODES = 10_000
_SCRUB_MIN_LENGTH = 8  # a bare string shorter than this is no credible secret, and scrubbing it would garble text


def _secret_texts(message: Any) -> list[str]:
    """Every way a violation message can quote a secret member of `message`, longest first: the
    Python and JSON spellings of its whole value (schema messages quote `repr(instance)`, whatever its
    type) and of every string in it, and each such string bare when it is long enough."""
    names = secret_member_names()
    texts: set[str] = set()

    def quotations(value: Any) -> None:
        if value is None or isinstance(value, bool) or value in ("", [], {}):
            return
        texts.update((repr(value), json.dumps(value, ensure_ascii=False, default=str)))
        pending = [value]
        while pending:
            node = pending.pop()
            if isinstance(node, str):
                texts.update((repr(node), json.dumps(node, ensure_ascii=False)))
                if len(node) >= _SCRUB_MIN_LENGTH:
                    texts.add(node)
            elif isinstance(node, dict):
                pending.extend(node.keys())
                pending.extend(node.values())
            elif isinstance(node, list):
                pending.extend(node)

    # Where the schemas put secrets (`parameters.token`, `result.token`) and a little around it, for a
    # token sent in the wrong place: the first levels, at most _SECRET_SEARCH_NODES values. A walk of
    # the whole message cost ~1 s for 1 MiB of junk (CPU fairness, issue 10), for members no schema
    # calls secret.
    budget = [_SECRET_SEARCH_NODES]

    def walk(node: Any, depth: int) -> None:
        if depth > _SECRET_SEARCH_DEPTH or budget[0] <= 0:
            return
        if isinstance(node, dict):
            for key, value in node.items():
                budget[0] -= 1
                if key in names:
                    quotations(value)
                else:
                    walk(value, depth + 1)
                if budget[0] <= 0:
                    return
        elif isinstance(node, list):
            for item in node[:budget[0]]:
                budget[0] -= 1
                walk(item, depth + 1)

    walk(message, 0)
    return sorted(texts, key=len, reverse=True)


def _scrub(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, "<redacted>")
    return text


def json_spoken(error: ValidationError) -> str:
    """python-jsonschema's message in JSON notation. Its messages quote values with Python's repr -
    `True`, `None`, `{'session_id': ...}`, `'x' is a required property` - which a client developer
    reading about a JSON message should not have to translate: every value the message can quote (the
    instance, the keyword's value, their members and keys) is respelled as JSON, longest first."""
    values: list[Any] = [error.instance, error.validator_value]
    for value in (error.instance, error.validator_value):
        if isinstance(value, dict):
            values.extend(value.keys())
            values.extend(value.values())
        elif isinstance(value, list):
            values.extend(value)
    if isinstance(error.schema, dict):
        values.extend(error.schema.get("properties", {}) or {})
    return _respell(error.message, values)


def _python_to_json(message: str, instance: Any) -> str:
    """jsonschema-rs's message (it quotes values as JSON already, except for a few keywords) respelled."""
    values: list[Any] = [instance]
    if isinstance(instance, dict):
        values.extend(instance.keys())
        values.extend(instance.values())
    return _respell(message, values)


def _respell(message: str, values: list[Any]) -> str:
    spellings: dict[str, str] = {}
    for value in values:
        try:
            python, spoken = repr(value), json.dumps(value, ensure_ascii=False)
        except (TypeError, ValueError):
            continue
        if python != spoken:
            spellings[python] = spoken
    for python in sorted(spellings, key=len, reverse=True):
        message = message.replace(python, spellings[python])
    return message


def _discriminator_error(error: ValidationError) -> ValidationError | None:
    """When every branch of a failed anyOf/oneOf rejects the same member with const/enum, that member
    is the discriminator (e.g. `reason`): one error naming the allowed values says what is wrong."""
    branches: dict[Any, list[ValidationError]] = {}
    for sub in error.context or []:
        if sub.relative_schema_path:
            branches.setdefault(sub.relative_schema_path[0], []).append(sub)
    if not branches or len(branches) != len(error.validator_value):
        return None
    keyed = [
        {tuple(e.absolute_path): e for e in errs if e.validator in ("const", "enum")} for errs in branches.values()
    ]
    common = set.intersection(*(set(k) for k in keyed))
    if not common:
        return None
    path = min(common, key=len)
    allowed: list[Any] = []
    for errs in keyed:
        e = errs[path]
        allowed.extend([e.validator_value] if e.validator == "const" else e.validator_value)
    pick = keyed[0][path]
    return ValidationError(f"{quote(pick.instance)} is not one of {quote(allowed)}", validator="enum",
                           validator_value=allowed,
                           instance=pick.instance, schema=pick.schema, path=pick.absolute_path)


def _leaf_errors(error: ValidationError) -> list[ValidationError]:
    """For anyOf/oneOf failures, the errors of the branch that came closest, not every branch's."""
    if error.validator in ("anyOf", "oneOf") and error.context and (found := _discriminator_error(error)):
        return [found]
    if error.validator in ("anyOf", "oneOf") and error.context:
        best = best_match(error.context)
        branch = best.relative_schema_path[0] if best.relative_schema_path else None
        chosen = [e for e in error.context if e.relative_schema_path and e.relative_schema_path[0] == branch]
        out: list[ValidationError] = []
        for sub in chosen or [best]:
            out.extend(_leaf_errors(sub))
        return out
    return [error]


# Which requirement a violation breaks when the schema node names none: by rule and direction first
# (these rules hold at every depth), then by where in the message it sits.
_RULE_REQUIREMENTS: dict[tuple[Direction, str], str] = {
    ("request", "float"): "CMP-6",
    ("response", "float"): "CMP-5",
    ("request", "null"): "CMP-4",
    ("response", "null"): "CMP-3",
    ("request", "additionalProperties"): "CMP-1",
}


def _default_requirement(direction: Direction, path: str, status: str | None) -> str:
    if direction == "request":
        return "ENV-2" if path.startswith("$.parameters") else "ENV-1"
    return "ENV-4" if status == "error" else "ENV-3"


class _Kind:
    """One message kind: its bundled schema, compiled both ways."""

    def __init__(self, name: str, schema: dict[str, Any], direction: Direction = "request"):
        self.name = name
        self.direction = direction
        self.schema = schema
        self.fast = jsonschema_rs.validator_for(schema, validate_formats=False)
        self.free_form = _free_form_paths(schema)
        self.number_paths = _number_paths(schema)
        self._rich: Any = None

    def violations(self, message: Any) -> list[Violation]:
        if self._rich is None:
            self._rich = _RichValidator(self.schema)
        found: list[Violation] = []
        status = message.get("status") if isinstance(message, dict) else None
        # A violation message quotes the offending value, and the value may hold a token (SEC-5): the
        # validator scrubs every secret it was given from every text it produces.
        secrets = _secret_texts(message)
        for error in sorted(self._rich.iter_errors(message), key=lambda e: list(e.path)):
            for leaf in _leaf_errors(error):
                message_text, kind = json_spoken(leaf), str(leaf.validator)
                if kind == "type" and leaf.validator_value == "integer" and isinstance(leaf.instance, float):
                    message_text = f"{quote(leaf.instance)} is not an integer: write integers without fraction or" \
                                   " exponent"
                    kind = "float"
                elif leaf.instance is None and kind in ("type", "anyOf", "oneOf", "const", "enum"):
                    message_text = f"null is not allowed here: leave an optional member out ({message_text})"
                    kind = "null"
                requirement = leaf.schema.get("x-requirement") if isinstance(leaf.schema, dict) else None
                requirement = (
                    requirement
                    or _RULE_REQUIREMENTS.get((self.direction, kind))
                    or _default_requirement(self.direction, leaf.json_path, status)
                )
                found.append(Violation(leaf.json_path, _scrub(message_text, secrets), str(leaf.validator), requirement))
        return found

    def check(self, message: Any, has_float: bool) -> list[Violation]:
        fast_ok = self.fast.is_valid(message)
        if fast_ok and not (has_float and _float_outside(message, self.free_form)):
            return []
        found = self.violations(message)
        if not fast_ok and not found:
            # The two validators disagree: never accept what either rejects. Report jsonschema-rs's view.
            secrets = _secret_texts(message)
            status = message.get("status") if isinstance(message, dict) else None
            for error in self.fast.iter_errors(message):
                path = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.instance_path)
                requirement = _default_requirement(self.direction, path, status)
                found.append(Violation(path, _scrub(_python_to_json(error.message, error.instance), secrets), "schema",
                                       requirement))
        return found


def _merge(schema: list[Violation], stray: list[Violation]) -> list[Violation]:
    """Schema violations plus the stray values the schemas did not already report at the same place."""
    seen = {(v.path, v.rule) for v in schema}
    return schema + [v for v in stray if (v.path, v.rule) not in seen and not (v.rule == "float" and any(
        s.path == v.path and s.rule == "type" for s in schema))]


class MessageValidator:
    """Validators for every v1 message kind, compiled once. Thread-safe for reading."""

    def __init__(self, schemas: SchemaRegistry | None = None):
        self.registry = schemas or registry()
        reg = self.registry
        self.version: str = reg.document("common.json")["$defs"]["Version"]["const"]
        command_pattern = reg.document("common.json")["$defs"]["CommandName"]
        self._command_re = ecma_regex(command_pattern["pattern"])
        self._command_max = command_pattern["maxLength"]
        id_schema = reg.document("common.json")["$defs"]["RequestId"]
        self._id_len = (id_schema["minLength"], id_schema["maxLength"])
        self.envelope = _Kind("request envelope", reg.envelope_schema())
        self.requests = {c: _Kind(f"{c} request", reg.request_schema(c)) for c in reg.commands}
        self.successes = {c: _Kind(f"{c} success", reg.success_schema(c), "response") for c in reg.commands}
        self.errors = {c: _Kind(f"{c} error", reg.error_response_schema(c), "response") for c in reg.error_codes}
        self.any_error = _Kind("error response", reg.error_response_schema(), "response")
        self.any_response = _Kind("response", reg.response_schema(), "response")

    # -- echo rules (spec ENV) ---------------------------------------------------------------------

    def echo_id(self, message: Any) -> str | None:
        if isinstance(message, dict):
            value = message.get("id")
            if isinstance(value, str) and self._id_len[0] <= len(value) <= self._id_len[1]:
                return value
        return None

    def echo_command(self, message: Any) -> str | None:
        if isinstance(message, dict):
            value = message.get("command")
            if isinstance(value, str) and len(value) <= self._command_max and self._command_re.search(value):
                return value
        return None

    # -- requests -----------------------------------------------------------------------------------

    def check_request(self, message: Any, *, has_float: bool = True) -> RequestVerdict:
        """Steps 2-5 of the processing order: version, envelope, command, parameters."""
        if not isinstance(message, dict):
            return RequestVerdict(
                ErrorCode.InvalidRequest, None, None, InvalidRequestReason.NOT_OBJECT, "a request must be a JSON object"
            )
        rid, command = self.echo_id(message), self.echo_command(message)
        version = message.get("version")
        if isinstance(version, str) and version != self.version:
            return RequestVerdict(
                ErrorCode.UnsupportedVersion, rid, command, None,
                f"version {quote(version[:32])} is not supported; this server speaks {self.version}",
                details={"supported_versions": [self.version]},
            )
        name = message.get("command")
        kind = self.requests.get(name) if isinstance(name, str) else None
        if kind is None:
            problems = self.envelope.check(message, has_float)
            if problems:
                return self._invalid(rid, command, problems)
            hint = difflib.get_close_matches(name, list(self.requests), n=1)
            suffix = f"; did you mean {quote(hint[0])}?" if hint else ""
            return RequestVerdict(
                ErrorCode.UnknownCommand, rid, command, None, f"unknown command {quote(name)}{suffix}",
                details={"supported_commands": sorted(self.requests)},
            )
        problems = kind.check(message, has_float)
        if problems:
            return self._invalid(rid, command, problems)
        return RequestVerdict(None, rid, command)

    @staticmethod
    def _invalid(rid: str | None, command: str | None, problems: list[Violation]) -> RequestVerdict:
        head = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        return RequestVerdict(
            ErrorCode.InvalidRequest, rid, command, InvalidRequestReason.SCHEMA, f"{head.path}: {head.message}{more}",
            violations=tuple(problems),
            details={"reason": InvalidRequestReason.SCHEMA, "violations": [p.as_dict() for p in problems[:100]]},
        )

    # -- responses ----------------------------------------------------------------------------------

    def check_response(self, message: Any, *, has_float: bool = True, has_null: bool = True) -> list[Violation]:
        """Every violation of a reply: success against its command's result, error against its code.
        `has_null=False` (the body holds no `null` literal) and `has_float=False` let the walk for stray
        values (CMP-3, CMP-5) be skipped: there can be none."""
        if not isinstance(message, dict):
            return [Violation("$", "a response must be a JSON object", "type")]
        status = message.get("status")
        if status == "success":
            command = message.get("command")
            kind = self.successes.get(command) if isinstance(command, str) else None
            if kind is None:
                problems = self.any_response.check(message, has_float)
                return problems or [Violation("$.command", f"{quote(command)} is not a v1 command", "enum")]
            stray = _stray_values(message, kind) if has_float or has_null else []
            return _merge(kind.check(message, has_float), stray)
        if status == "error":
            error = message.get("error")
            code = error.get("code") if isinstance(error, dict) else None
            kind = self.errors.get(code) if isinstance(code, str) else None
            if kind is None and isinstance(code, str):
                # An unknown code matches no variant: name it, rather than the nearest variant's complaints.
                problems = [p for p in self.any_error.check(message, has_float) if not p.path.startswith("$.error")]
                return problems + [Violation("$.error.code", f"{quote(code)} is not a v1 error code", "enum")]
            found = (kind or self.any_error).check(message, has_float)
            info = self.registry.commands.get(message.get("command"))  # type: ignore[arg-type]
            if kind is not None and info is not None and code not in info.errors:
                found.append(Violation("$.error.code", f"{message.get('command')} never answers {code}; it may "
                                       f"answer {', '.join(info.errors)}", "x-stui-command.errors", "ERR-2"))
            stray = _stray_values(message, kind or self.any_error) if has_float or has_null else []
            return _merge(found, stray)
        if isinstance(status, str):
            # Any other status string: which members to expect is unknowable, so only the status is wrong.
            return [Violation("$.status", f'status must be "success" or "error", not {quote(status[:32])}', "enum")]
        return self.any_response.check(message, has_float) or [
            Violation("$.status", 'status must be "success" or "error"', "enum")
        ]

    # -- either ---------------------------------------------------------------------------------------

    @staticmethod
    def direction_of(message: Any) -> Direction:
        """Auto-detection for tools: replies carry `status`, requests do not."""
        return "response" if isinstance(message, dict) and "status" in message else "request"

    def check(
        self, message: Any, direction: Direction | None = None, *, has_float: bool = True
    ) -> tuple[Direction, list[Violation]]:
        """Violations of one message of either direction (tools); a request's non-schema verdicts
        (unknown command, unsupported version) are reported as violations too."""
        direction = direction or self.direction_of(message)
        if direction == "response":
            return direction, self.check_response(message, has_float=has_float)
        verdict = self.check_request(message, has_float=has_float)
        if verdict.ok:
            return direction, []
        if verdict.violations:
            return direction, list(verdict.violations)
        path = {ErrorCode.UnknownCommand: "$.command", ErrorCode.UnsupportedVersion: "$.version"}.get(
            verdict.error_code or "", "$")
        return direction, [Violation(path, verdict.message, verdict.error_code or "invalid")]


def response_requirements(schemas: SchemaRegistry | None = None) -> frozenset[str]:
    """Every requirement a violation of a reply may cite: those the response schemas annotate
    (`x-requirement`), the rule-based ones (CMP-3 null, CMP-5 float, ERR-2 allowed codes) and the envelope's
    defaults (ENV-3 success, ENV-4 error)."""
    found = {"ENV-3", "ENV-4", "ERR-2", "CMP-3", "CMP-5"}
    found |= {req for (direction, _rule), req in _RULE_REQUIREMENTS.items() if direction == "response"}

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("x-requirement"), str):
                found.add(node["x-requirement"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    reg = schemas or registry()
    walk(reg.response_schema())
    for command in reg.commands:
        walk(reg.success_schema(command))
    for code in reg.error_codes:
        walk(reg.error_response_schema(code))
    return frozenset(found)


@cache
def validator() -> MessageValidator:
    """The process-wide validator, compiled once."""
    return MessageValidator()
