"""`stui-conformance validate`: check STUI v1 messages (or test vectors) in files or on stdin.

Input: each FILE is one JSON message, or JSON Lines (one message per line) when its name ends in
`.jsonl`/`.ndjson` or when it is not one JSON text but its first non-blank line is; `-` reads stdin the
same way. Every message body goes through `stui_protocol_kit.protocol.codec.decode_body` first, so non-UTF-8,
non-JSON, duplicate keys, non-objects, too-deep and oversize messages are reported exactly as a server
rejects them (frame level), then through `MessageValidator` with the direction taken from `--as` or
detected per message (a reply carries `status`). With `--vectors`, each FILE (or every `*.json` under
a directory) is a test vector from spec/examples/, and what is checked is that the kit reaches the
vector's expected verdict.

A transcript (what `stui-conformance proxy --transcript` writes: JSON Lines whose first line is its header,
conformance/formats/transcript.schema.json) is checked as a whole: its format, then every message with the
proxy's live checks, requests and replies paired by connection.

Decisions: a file that is not JSON at all is an invalid *message* (exit 1), because that is what a
server would answer it; only what stops the tool from reading its input (a missing or unreadable
file, a directory without `--vectors`, bad arguments) is a usage error (exit 2), and then nothing is
validated. A blank input is a message of zero bytes: not JSON.

This module must never decide validity itself: verdicts come from `stui_protocol_kit.protocol` (codec and
validator), and wording of colour/plain output from `stui_protocol_kit.conformance.output`.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stui_protocol_kit.conformance.formats import FormatError
from stui_protocol_kit.conformance.output import Output
from stui_protocol_kit.conformance.transcript import checked_records, looks_like_transcript, parse_transcript
from stui_protocol_kit.conformance.vectors import read_vector, vector_files, vector_mismatches
from stui_protocol_kit.protocol.codec import (
    DEFAULT_MAX_MESSAGE_BYTES,
    DEFAULT_MAX_NESTING_DEPTH,
    FrameError,
    decode_body,
)
from stui_protocol_kit.protocol.problems import quote
from stui_protocol_kit.protocol.validation import Direction, MessageValidator, Violation, validator

HELP = "check STUI v1 messages or test vectors against the schemas"
DESCRIPTION = """\
Check STUI v1 messages against the protocol's schemas and frame rules.

Each FILE holds one JSON message, or JSON Lines (one message per line: names ending in .jsonl or
.ndjson, or any file that is not one JSON text but whose first non-blank line is). `-` reads stdin.
The direction (request or response) is detected per message (replies carry "status") unless --as is
given. For an invalid request the output also names the error a server must answer.
"""
EPILOG = """\
output:
  plain text when stdout is not a terminal (or with --no-color / NO_COLOR set), rich otherwise:
    FILE[:LINE]: valid|INVALID <direction> <command> [-> <error code a server answers> (<reason>)]
      <JSON path>: <message> [<schema rule>] (<requirement ID, when known>)
  followed by a summary line. With --json: one JSON object per message (JSON Lines), no summary:
    {"file", "line" (1-based, JSON Lines only, else null), "direction" ("request"|"response"|null),
     "command" (string|null), "valid" (bool), "error_code" (requests: what a server answers, else null),
     "reason" (InvalidRequest reason or null),
     "violations": [{"path", "message", "rule", "requirement" (string|null)}]}
  With --vectors each record is instead {"file", "kind", "valid" (the kit reached the expected
  verdict), "mismatches": [text]}.

exit status:
  0  every message is valid (with --vectors: every vector got its expected verdict)
  1  at least one message is invalid, including input that is not UTF-8 or not JSON at all
     (with --vectors: at least one vector did not get its expected verdict, or is malformed)
  2  usage error: bad arguments, a file that cannot be read, a directory without --vectors;
     nothing is validated then
"""

JSON_LINES_SUFFIXES = (".jsonl", ".ndjson")


class UsageError(Exception):
    """The input cannot be read: exit 2."""


@dataclass
class Limits:
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    max_nesting_depth: int = DEFAULT_MAX_NESTING_DEPTH


@dataclass
class MessageReport:
    """The verdict on one message, as printed and as emitted with --json."""

    file: str
    line: int | None
    direction: Direction | None
    command: str | None
    error_code: str | None = None
    reason: str | None = None
    violations: list[Violation] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return not self.violations

    @property
    def location(self) -> str:
        return f"{self.file}:{self.line}" if self.line is not None else self.file

    def as_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "line": self.line,
            "direction": self.direction,
            "command": self.command,
            "valid": self.valid,
            "error_code": self.error_code,
            "reason": self.reason,
            "violations": [
                {"path": v.path, "message": v.message, "rule": v.rule, "requirement": v.requirement}
                for v in self.violations
            ],
        }


# -- reading ---------------------------------------------------------------------------------------


def read_input(name: str) -> bytes:
    """The bytes of FILE, or of stdin for `-`; UsageError when they cannot be read."""
    if name == "-":
        stream = getattr(sys.stdin, "buffer", None)
        # In-process callers may swap in a text stream without a buffer (e.g. io.StringIO).
        return stream.read() if stream is not None else sys.stdin.read().encode("utf-8")
    path = Path(name)
    if path.is_dir():
        raise UsageError(f"{name}: is a directory (only --vectors reads directories)")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise UsageError(f"{name}: cannot read: {exc.strerror or exc}") from None


def is_json_lines(name: str, data: bytes) -> bool:
    """JSON Lines by name, or by content: not one JSON text, but its first non-blank line is one."""
    if name.lower().endswith(JSON_LINES_SUFFIXES):
        return True
    lines = [raw for raw in data.split(b"\n") if raw.strip()]
    if len(lines) < 2:
        return False
    # errors="replace": a bad byte must not hide the layout; decode_body reports it per line later.
    try:
        json.loads(data.decode("utf-8", errors="replace"))
        return False  # one JSON text spread over lines (pretty-printed)
    except ValueError:
        pass
    try:
        json.loads(lines[0].decode("utf-8", errors="replace"))
    except ValueError:
        return False  # a broken single document: report it as one message, not line by line
    return True


def split_messages(name: str, data: bytes) -> list[tuple[int | None, bytes]]:
    """(1-based line or None, body) for every message in one input; blank JSON Lines are skipped, so JSON
    Lines of blanks only hold no message at all (one message of nothing is an invalid message instead)."""
    if is_json_lines(name, data):
        return [(number, raw) for number, raw in enumerate(data.split(b"\n"), start=1) if raw.strip()]
    return [(None, data)]


# -- checking ---------------------------------------------------------------------------------------


def check_body(
    body: bytes, *, file: str, line: int | None, direction: Direction | None, limits: Limits,
    checker: MessageValidator | None = None,
) -> MessageReport:
    """Frame checks then schema checks for one body, with the server's precedence."""
    checker = checker or validator()
    try:
        decoded = decode_body(body, max_bytes=limits.max_message_bytes, max_depth=limits.max_nesting_depth)
    except FrameError as exc:
        # What a server answers applies to requests only; for a reply the frame problem is just invalid.
        as_request = direction != "response"
        return MessageReport(
            file, line, direction, None,
            error_code=exc.code if as_request else None,
            reason=exc.reason if as_request else None,
            violations=[Violation("$", exc.message, exc.reason or exc.code)],
        )
    message = decoded.message
    found = direction or checker.direction_of(message)
    command = message.get("command") if isinstance(message.get("command"), str) else None
    if found == "response":
        # No `null` literal anywhere in the body (one scan in C): the walk for stray nulls is skipped.
        return MessageReport(file, line, found, command,
                             violations=checker.check_response(message, has_float=decoded.has_float,
                                                               has_null=b"null" in body))
    verdict = checker.check_request(message, has_float=decoded.has_float)
    if verdict.ok:
        return MessageReport(file, line, found, command)
    _, problems = checker.check(message, "request", has_float=decoded.has_float)
    return MessageReport(file, line, found, command, verdict.error_code, verdict.reason, problems)


# -- the verb ---------------------------------------------------------------------------------------


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "validate", help=HELP, description=DESCRIPTION, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help="message file, JSON Lines file, or - for stdin")
    parser.add_argument("--as", dest="direction", choices=("request", "response"),
                        help="treat every message as this direction instead of detecting it")
    parser.add_argument("--vectors", action="store_true",
                        help="FILEs (or directories, searched for *.json) are spec/examples test vectors; "
                             "check that each gets its expected verdict")
    parser.add_argument("--json", action="store_true", help="one JSON object per message on stdout (see below)")
    parser.add_argument("--no-color", action="store_true", help="plain output even on a terminal")
    parser.add_argument("--max-message-bytes", type=_positive, default=DEFAULT_MAX_MESSAGE_BYTES, metavar="N",
                        help="frame limit to apply, as a server's hello announces it (default %(default)s)")
    parser.add_argument("--max-nesting-depth", type=_positive, default=DEFAULT_MAX_NESTING_DEPTH, metavar="N",
                        help="nesting limit to apply (default %(default)s)")
    parser.set_defaults(handler=run)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {quote(text)}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def run(args: argparse.Namespace) -> int:
    out = Output(no_color=args.no_color)
    try:
        if args.vectors:
            return _run_vectors(args, out)
        inputs = [(("<stdin>" if name == "-" else name), read_input(name)) for name in args.files]
    except UsageError as exc:
        print(f"stui-conformance validate: error: {exc}", file=sys.stderr)
        return 2
    limits = Limits(args.max_message_bytes, args.max_nesting_depth)
    checker = validator()
    reports = []
    for name, data in inputs:
        if looks_like_transcript(data):
            reports += transcript_reports(name, data)
            continue
        messages = split_messages(name, data)
        if not messages:
            # Nothing checked is not "all valid": an empty capture is a broken pipeline, say so.
            print(f"stui-conformance validate: error: {name}: no messages (JSON Lines that are empty or hold only"
                  " blank lines)", file=sys.stderr)
            return 2
        reports += [check_body(body, file=name, line=line, direction=args.direction, limits=limits, checker=checker)
                    for line, body in messages]
    for report in reports:
        if args.json:
            out.json(report.as_json())
        else:
            _print_report(out, report)
    invalid = sum(not r.valid for r in reports)
    if not args.json:
        out.line((f"{len(reports)} message{'s' if len(reports) != 1 else ''}: "
                  f"{len(reports) - invalid} valid, {invalid} invalid", "fail" if invalid else "ok"))
    out.flush()
    return 1 if invalid else 0


def transcript_reports(name: str, data: bytes) -> list[MessageReport]:
    """A transcript (conformance/transcript.py): its format, then every message with the proxy's live checks
    - the client rules on requests, the reply checks on replies paired with their requests, pairing, and
    requests left unanswered - one report per message, in order."""
    try:
        transcript = parse_transcript(data.decode("utf-8", errors="replace"), name)
    except FormatError as exc:
        return [MessageReport(name, None, None, None, violations=[Violation("$", str(exc), "transcript-format")])]
    reports: dict[int, MessageReport] = {}
    for index, findings in checked_records(transcript):
        record = transcript.records[index]
        message = record.get("message")
        command = message.get("command") if isinstance(message, dict) else None
        report = reports.setdefault(index, MessageReport(name, transcript.lines[index], record.get("direction"),
                                                         command if isinstance(command, str) else None))
        report.violations += [Violation(f.problem.path, f"{f.problem.message} [{f.connection}]", f.problem.rule,
                                        f.problem.requirement) for f in findings]
    return [reports[i] for i in sorted(reports)]


def _print_report(out: Output, report: MessageReport) -> None:
    what = " ".join(part for part in (report.direction, report.command) if part)
    if report.valid:
        out.line(f"{report.location}: ", ("valid", "ok"), f" {what}" if what else "")
        return
    answer = ""
    if report.error_code:
        answer = f" -> {report.error_code}" + (f" ({report.reason})" if report.reason else "")
    out.line(f"{report.location}: ", ("INVALID", "fail"), f" {what}" if what else "", (answer, "warn"))
    for v in report.violations:
        requirement = f" ({v.requirement})" if v.requirement else ""
        out.line((v.path, "heading"), f": {v.message} ", (f"[{v.rule}]", "dim"), requirement, indent=2)


def _run_vectors(args: argparse.Namespace, out: Output) -> int:
    checker = validator()
    failed = 0
    try:
        files = vector_files(args.files)
    except FileNotFoundError as exc:
        raise UsageError(str(exc)) from None
    for path in files:
        try:
            doc = read_vector(path)
        except OSError as exc:
            raise UsageError(f"{path}: cannot read: {exc.strerror or exc}") from None
        except FormatError as exc:
            doc, mismatches = None, [str(exc)]
        else:
            mismatches = vector_mismatches(doc, checker)
        failed += bool(mismatches)
        kind = doc.get("kind") if isinstance(doc, dict) else None
        if args.json:
            out.json({"file": str(path), "kind": kind, "valid": not mismatches, "mismatches": mismatches})
            continue
        if mismatches:
            out.line(f"{path}: ", ("MISMATCH", "fail"))
            for text in mismatches:
                out.line(text, indent=2)
        else:
            expected = doc.get("verdict") if isinstance(doc, dict) else None
            out.line(f"{path}: ", ("ok", "ok"), f" {kind} {expected} as expected")
    if not args.json:
        out.line((f"{len(files)} vectors: {len(files) - failed} as expected, {failed} mismatched",
                  "fail" if failed else "ok"))
    out.flush()
    return 1 if failed else 0
