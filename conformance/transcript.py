"""Transcripts: what passed between STUI clients and a server, as JSON Lines, with tokens redacted.

One format (conformance/formats/transcript.schema.json, one schema per line), one writer and one reader:
- `TranscriptWriter` writes the header, then one record per message (timestamps, direction, connection,
  socket type, framing, size, and the body as JSON - or, when it was not one JSON text, its frames in base64)
  and per event (connect, disconnect, ...). Every message is redacted here, in the one place that writes:
  members typed as tokens become their placeholder (`protocol.redaction`), tokens the recorder saw issued
  become their placeholder wherever else they stand (the caller's `scrub`), and a body that is not JSON has
  every run of 43 or more base64url characters masked (a token the recorder never saw issued could hide
  there; masking keeps the size, the UTF-8 validity and the nesting, so the body still fails as it did).
- `read_transcript` checks every line against the schema (a `FormatError` names the line) and gives the
  header and the records; `validate` and `replay` read transcripts through it.
- `checked_records` runs a transcript through `protocol.traffic_checks.TrafficChecker` - the proxy's live
  checks - so a recorded session gets the verdicts its live traffic got.

This module must never write a token and never decide what is valid (the checks do).
"""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from stui_protocol_kit.conformance.formats import FormatError, check
from stui_protocol_kit.conformance.report.json_report import kit_version
from stui_protocol_kit.protocol.codec import encode, rfc3339
from stui_protocol_kit.protocol.facts import PROTOCOL_VERSION
from stui_protocol_kit.protocol.redaction import redact
from stui_protocol_kit.protocol.requirements import spec_edition
from stui_protocol_kit.protocol.traffic_checks import Finding, TrafficChecker

FORMAT_VERSION = 1
_TOKEN_LIKE = re.compile(rb"[A-Za-z0-9_-]{43,}")


def mask_token_like(body: bytes) -> bytes:
    """Every run of 43 or more base64url characters (the shape of a token) replaced by as many `#`."""
    return _TOKEN_LIKE.sub(lambda m: b"#" * len(m.group(0)), body)


class TranscriptWriter:
    """Appends records to a JSON Lines file. `scrub` replaces tokens seen issued (ClientRules.scrub)."""

    def __init__(self, path: str | Path, *, recorder: str, listen: str | None = None, upstream: str | None = None,
                 limits: dict[str, Any] | None = None, scrub: Callable[[Any], Any] = lambda v: v,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.scrub = scrub
        self.clock = clock
        self.started = clock()
        self.records = 0
        self._stream: TextIO = open(path, "w", encoding="utf-8")  # noqa: SIM115 - closed by close()
        header: dict[str, Any] = {
            "transcript": "stui", "format_version": FORMAT_VERSION,
            "kit": {"name": "stui-protocol-kit", "version": kit_version()},
            "spec": {"edition": spec_edition(), "protocol_version": PROTOCOL_VERSION},
            "started_at": rfc3339(time.time()), "recorder": recorder,
        }
        for name, value in (("listen", listen), ("upstream", upstream), ("limits", limits)):
            if value is not None:
                header[name] = value
        self._write(header)

    def _write(self, record: dict[str, Any]) -> None:
        self._stream.write(json.dumps(record, ensure_ascii=False, separators=(",", ":"), default=str) + "\n")
        self.records += 1

    def _times(self, at: float | None) -> dict[str, Any]:
        """`at`: seconds since the transcript started, as the caller measured them (None: now)."""
        t = self.clock() - self.started if at is None else at
        return {"t": round(max(0.0, t), 6), "at": rfc3339(time.time())}

    def message(self, direction: str, connection: str, frames: Sequence[bytes], *, req_framed: bool,
                socket: str | None = None, decoded: Any = None, decodable: bool = False,
                at: float | None = None) -> None:
        """One message: its body frames (routing id and delimiter removed); `decoded` is its JSON value when
        `decodable` (one frame holding one JSON text)."""
        record: dict[str, Any] = {**self._times(at), "direction": direction, "connection": connection}
        if socket:
            record["socket"] = socket
        record["framing"] = "req" if req_framed else "dealer"
        record["bytes"] = sum(len(f) for f in frames)
        if decodable:
            record["message"] = self.scrub(redact(decoded))
        else:
            record["frames_base64"] = [base64.b64encode(mask_token_like(self._scrub_bytes(bytes(f)))).decode("ascii")
                                       for f in frames]
        self._write(record)

    def _scrub_bytes(self, body: bytes) -> bytes:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return body  # masked by shape below; known tokens are base64url runs too
        return str(self.scrub(text)).encode("utf-8")

    def event(self, name: str, *, connection: str | None = None, detail: str | None = None,
              at: float | None = None) -> None:
        record: dict[str, Any] = {**self._times(at), "event": name}
        if connection is not None:
            record["connection"] = connection
        if detail is not None:
            record["detail"] = str(self.scrub(detail))
        self._write(record)

    def flush(self) -> None:
        self._stream.flush()

    def close(self) -> None:
        if not self._stream.closed:
            self._stream.close()


@dataclass
class Transcript:
    header: dict[str, Any]
    records: list[dict[str, Any]]  # messages and events, in order
    lines: list[int] = field(default_factory=list)  # the line of each record in the file (1-based)

    def messages(self) -> Iterator[dict[str, Any]]:
        return (r for r in self.records if "direction" in r)


def looks_like_transcript(data: bytes) -> bool:
    """Whether the first non-blank line is a transcript header (how `validate` and `replay` tell)."""
    for raw in data.split(b"\n"):
        if raw.strip():
            try:
                first = json.loads(raw)
            except ValueError:
                return False
            return isinstance(first, dict) and first.get("transcript") == "stui"
    return False


def parse_transcript(text: str, name: str = "transcript") -> Transcript:
    """Every line checked against the transcript schema; FormatError names the first bad line."""
    header: dict[str, Any] | None = None
    records: list[dict[str, Any]] = []
    lines: list[int] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise FormatError(f"{name}:{number}: not JSON: {exc}") from None
        try:
            check("transcript", record)
        except FormatError as exc:
            raise FormatError(f"{name}:{number}: {exc}") from None
        is_header = "transcript" in record
        if (header is None) != is_header:
            raise FormatError(f"{name}:{number}: " + ("the first line must be the transcript header" if header is None
                                                      else "a second header"))
        if is_header:
            header = record
        else:
            records.append(record)
            lines.append(number)
    if header is None:
        raise FormatError(f"{name}: empty: a transcript starts with its header line")
    return Transcript(header, records, lines)


def read_transcript(path: str | Path) -> Transcript:
    return parse_transcript(Path(path).read_text(encoding="utf-8"), str(path))


def body_frames(record: dict[str, Any]) -> list[bytes]:
    """A message record's body frames as they passed (the JSON re-encoded compactly)."""
    if "message" in record:
        return [encode(record["message"])]
    return [base64.b64decode(f) for f in record["frames_base64"]]


def checked_records(transcript: Transcript, timeout_s: float = 10.0) -> Iterator[tuple[int, list[Finding]]]:
    """(index of a message record, the problems the proxy's checks find in it) for every message, in order;
    a request that got no reply within `timeout_s` is reported (TRN-3) under its own index once the
    transcript shows that much time passed."""
    checker = TrafficChecker(transcript.header.get("limits"), timeout_s=timeout_s, redacted=True)
    requests: dict[tuple[str, str | None], int] = {}
    for index, record in enumerate(transcript.records):
        for finding in checker.overdue(record["t"]):
            yield requests.get((finding.connection, finding.request_id), index), [finding]
        if "direction" not in record:
            continue
        frames = body_frames(record)
        if record["direction"] == "request":
            checked, findings = checker.request(record["connection"], frames, at=record["t"],
                                                req_framed=record["framing"] == "req", socket_type=record.get("socket"))
            requests[(record["connection"], checker.rules.scrub(checked.request_id))] = index
        else:
            findings = checker.reply(record["connection"], frames, at=record["t"]).findings
        yield index, findings
