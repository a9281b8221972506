"""The checks every reply gets, as typed problems: one pure home for the suite, `validate`, the proxy and
client-check.

A reply alone is checked by the schema validator (`MessageValidator.check_response`: its command's
result or its code's variant, allowed codes for the command it names (ERR-2), no stray null (CMP-3) and
integers written as integers (CMP-5)). A reply paired with the request it answers is checked further:
- it is one UTF-8 JSON object (TRN-2);
- for a request that passed step P1 (size and nesting within the announced limits), a success echoes
  the request's `id` and `command` (ENV-3), an error echoes them as ENV-5/ENV-6 say (the request's id
  when it is a valid id, else null; its command when it is a valid command name, else null), and the
  error code is one the *request's* command may return (ERR-2).

This module must never do I/O, never read a clock, and never judge more than the reply and its request
show: session semantics belong to the cases and the model.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from stui_protocol_kit.protocol.codec import encode, nesting_depth
from stui_protocol_kit.protocol.problems import Problem
from stui_protocol_kit.protocol.validation import MessageValidator, Violation, validator

# The requirements these checks cite (cases may rely on them without declaring them).
REPLY_IS_JSON_OBJECT = "TRN-2"
SUCCESS_SCHEMA = "ENV-3"
ERROR_SCHEMA = "ENV-4"
ERROR_ECHO_ID = "ENV-5"
ERROR_ECHO_COMMAND = "ENV-6"
ERROR_ALLOWED_FOR_COMMAND = "ERR-2"
NO_STRAY_NULL = "CMP-3"
INTEGERS_AS_INTEGERS = "CMP-5"
REPLY_CHECK_REQUIREMENTS = frozenset({REPLY_IS_JSON_OBJECT, SUCCESS_SCHEMA, ERROR_SCHEMA, ERROR_ECHO_ID,
                                      ERROR_ECHO_COMMAND, ERROR_ALLOWED_FOR_COMMAND, NO_STRAY_NULL,
                                      INTEGERS_AS_INTEGERS})


def problem_of_violation(violation: Violation, status: Any) -> Problem:
    """A schema violation of a reply as a problem; the requirement the schema names, else the envelope's."""
    requirement = violation.requirement or (SUCCESS_SCHEMA if status == "success" else ERROR_SCHEMA)
    return Problem(requirement, violation.message, violation.path, rule=violation.rule)


def check_reply_alone(reply: Any, *, has_float: bool = True, decode_error: str | None = None,
                      check: MessageValidator | None = None, has_null: bool = True) -> list[Problem]:
    """Problems of one reply on its own (no request known). `has_float` / `has_null`: whether the body may
    hold a number with a fraction or exponent / a `null` (False only when it certainly does not)."""
    if decode_error is not None or not isinstance(reply, dict):
        shown = decode_error or f"a JSON {_json_type(reply)}"
        return [Problem(REPLY_IS_JSON_OBJECT, f"a reply must be one UTF-8 JSON object; got {shown}", "$",
                        "one UTF-8 JSON object", shown, "json-object")]
    status = reply.get("status")
    return [problem_of_violation(v, status)
            for v in (check or validator()).check_response(reply, has_float=has_float, has_null=has_null)]


def passes_p1(request: Any, limits: Mapping[str, Any] | None) -> bool:
    """Whether `request`, sent as one compact JSON body, passes step P1 (size and nesting) of a server
    announcing `limits` (no limits known: it does)."""
    limits = limits or {}
    body = encode(request)
    if len(body) > int(limits.get("max_message_bytes", 1 << 62)):
        return False
    depth_limit = int(limits.get("max_nesting_depth", 1 << 30))
    # Counting brackets (strings included) bounds the depth from above and is cheap; the walk is exact.
    return body.count(b"[") + body.count(b"{") <= depth_limit or nesting_depth(request) <= depth_limit


def check_reply(reply: Any, request: Any = None, *, limits: Mapping[str, Any] | None = None, has_float: bool = True,
                decode_error: str | None = None, check: MessageValidator | None = None,
                has_null: bool = True) -> list[Problem]:
    """Every problem of `reply` as the answer to `request` (any JSON value that was sent; None when the
    request is unknown or was not one JSON body). An empty list means the reply is allowed so far."""
    check = check or validator()
    problems = check_reply_alone(reply, has_float=has_float, decode_error=decode_error, check=check,
                                 has_null=has_null)
    if not isinstance(reply, dict) or not isinstance(request, dict) or not passes_p1(request, limits):
        return problems
    seen = {(p.requirement, p.path) for p in problems}

    def add(problem: Problem) -> None:
        if (problem.requirement, problem.path) not in seen:
            seen.add((problem.requirement, problem.path))
            problems.append(problem)

    command = request.get("command")
    info = check.registry.commands.get(command) if isinstance(command, str) else None
    status = reply.get("status")
    error = reply.get("error") if isinstance(reply.get("error"), dict) else {}
    if status == "error" and info is not None and error.get("code") not in info.errors:
        add(Problem(ERROR_ALLOWED_FOR_COMMAND, f"{command} answered {error.get('code')}, which it may not return",
                    "$.error.code", list(info.errors), error.get("code"), "x-stui-command.errors"))
    if status == "success":
        for member, want in (("id", request.get("id")), ("command", command)):
            if reply.get(member) != want:
                add(Problem(SUCCESS_SCHEMA, f"a success reply must echo the request's {member}", f"$.{member}",
                            want, reply.get(member), f"echo-{member}"))
    elif status == "error":
        want_id, want_command = check.echo_id(request), check.echo_command(request)
        if reply.get("id") != want_id:
            add(Problem(ERROR_ECHO_ID, "an error reply echoes the request's id when it is a valid id, else null",
                        "$.id", want_id, reply.get("id"), "echo-id"))
        if reply.get("command") != want_command:
            add(Problem(ERROR_ECHO_COMMAND, "an error reply echoes the request's command when it is a valid command"
                        " name, else null", "$.command", want_command, reply.get("command"), "echo-command"))
    return problems


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return type(value).__name__
