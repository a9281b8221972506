"""Replaying a transcript against another server: a recorded session becomes a request sequence.

A transcript (conformance/transcript.py) holds real requests with tokens redacted, so it cannot be sent as
it is. `to_sequence` turns it into the steps of conformance/stateful/sequence.py, whose placeholders the
executor resolves against the server it runs on:
- each `session.create` reply of the recording, in order, is session N: its `session_id` becomes
  `$session:N` and its token's placeholder (`<redacted:1a2b3c4d>`, the same for every use of one token)
  becomes `$token:N` wherever later requests carry them;
- each `client_id` becomes `$client:K` (a client id unique to the replay, so replays never collide);
- each `object_id` an `inspect` reply issued becomes `$object:M`, resolved to the M-th object id the new
  server issues (`TranscriptExecutor`);
- each recorded connection becomes one simulated client of the same socket type (a REQ client's "lazy
  pirate" reconnects stay separate connections).
What cannot be mapped is said in `notes`: a body that was not JSON (it is left out), a session created
before the recording began (its requests go out with the placeholder and fail), and timing: steps run one
after another, each waiting for its reply, so expiry and pipelining are not reproduced.

The replay checks every reply as the stateful case does (context checks and the model); `compare` sets the
new server's replies beside the recorded ones with the differential's normaliser (ids, tokens, timestamps
and free text ignored), naming each difference the spec does not allow.

This module must never send a token it did not get from the server it replays against.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from stui_protocol_kit.conformance.context import CaseContext
from stui_protocol_kit.conformance.stateful.differential import Difference, compare_sequence
from stui_protocol_kit.conformance.stateful.sequence import SequenceExecutor, Step
from stui_protocol_kit.conformance.transcript import Transcript
from stui_protocol_kit.protocol.client_rules import is_placeholder
from stui_protocol_kit.protocol.facts import Command

OBJECT = re.compile(r"^\$object:(\d+)$")
UNBOUND_OBJECT = "unbound-object-{:04d}"


@dataclass
class Sequence:
    steps: list[Step]
    recorded_replies: list[Any]  # the recording's reply to each step (None: none was recorded)
    socket_kinds: list[str]  # per simulated client: "dealer" or "req"
    notes: list[str] = field(default_factory=list)
    sessions: int = 0


def to_sequence(transcript: Transcript) -> Sequence:
    clients: dict[str, int] = {}
    kinds: list[str] = []
    sessions: dict[str, int] = {}
    tokens: dict[str, int] = {}
    client_ids: dict[str, int] = {}
    objects: dict[str, int] = {}
    steps: list[Step] = []
    replies: list[Any] = []
    waiting: dict[str, list[tuple[int, Any]]] = {}  # connection -> [(step index, request id)]
    skipped = unknown_sessions = 0

    def symbolic(value: Any, key: str = "") -> Any:
        nonlocal unknown_sessions
        if isinstance(value, dict):
            return {k: symbolic(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [symbolic(v) for v in value]
        if not isinstance(value, str):
            return value
        if key == "client_id":
            return f"$client:{client_ids.setdefault(value, len(client_ids) + 1)}"
        if key == "session_id":
            if value in sessions:
                return f"$session:{sessions[value]}"
            unknown_sessions += 1
        if is_placeholder(value) and value in tokens:
            return f"$token:{tokens[value]}"
        if key == "object_id" and value in objects:
            return f"$object:{objects[value]}"
        return value

    for record in transcript.messages():
        connection = record["connection"]
        if record["direction"] == "request":
            if "message" not in record:
                skipped += 1
                continue
            if connection not in clients:
                clients[connection] = len(clients)
                kinds.append("req" if record.get("socket") == "REQ" or record["framing"] == "req" else "dealer")
            message = record["message"]
            steps.append(Step(client=clients[connection], request=symbolic(message)))
            replies.append(None)
            request_id = message.get("id") if isinstance(message, dict) else None
            waiting.setdefault(connection, []).append((len(steps) - 1, request_id))
            continue
        reply = record.get("message")
        pending = waiting.get(connection) or []
        reply_id = reply.get("id") if isinstance(reply, dict) else None
        match = next((p for p in pending if p[1] == reply_id and reply_id is not None), pending[0] if pending else None)
        if match is None:
            continue
        pending.remove(match)
        index = match[0]
        replies[index] = reply
        if not isinstance(reply, dict) or reply.get("status") != "success":
            continue
        result = reply.get("result") if isinstance(reply.get("result"), dict) else {}
        command = reply.get("command")
        if command == Command.SESSION_CREATE and isinstance(result.get("session_id"), str):
            number = len(sessions) + 1
            sessions[result["session_id"]] = number
            if isinstance(result.get("token"), str):
                tokens[result["token"]] = number
        elif command == Command.INSPECT and isinstance(result.get("object_id"), str):
            objects.setdefault(result["object_id"], len(objects) + 1)
    sequence = Sequence(steps, replies, kinds, sessions=len(sessions))
    if skipped:
        sequence.notes.append(f"{skipped} request(s) whose body was not one JSON text are left out")
    if unknown_sessions:
        sequence.notes.append(f"{unknown_sessions} request(s) name a session created before the recording began:"
                              " its token is redacted, so they cannot succeed on another server")
    sequence.notes.append("steps run one after another, each waiting for its reply: timing (expiry, pipelining)"
                          " is not reproduced")
    return sequence


class TranscriptExecutor(SequenceExecutor):
    """A SequenceExecutor whose clients have the recorded socket types and which resolves `$object:M`."""

    def __init__(self, ctx: CaseContext, socket_kinds: list[str], check: bool = True) -> None:
        super().__init__(ctx, clients=1, check=check)
        for client in self.clients:
            client.close()
        self.clients = [ctx.client(kind) for kind in (socket_kinds or ["dealer"])]  # type: ignore[arg-type]
        self.objects: list[str] = []

    def resolve(self, value: Any) -> Any:
        if isinstance(value, str):
            match = OBJECT.match(value)
            if match:
                number = int(match.group(1))
                return self.objects[number - 1] if number <= len(self.objects) else UNBOUND_OBJECT.format(number)
        return super().resolve(value)

    def run(self, step: Step) -> Any:
        reply = super().run(step)
        if isinstance(reply, dict) and reply.get("command") == Command.INSPECT and reply.get("status") == "success":
            object_id = (reply.get("result") or {}).get("object_id")
            if isinstance(object_id, str) and object_id not in self.objects:
                self.objects.append(object_id)
        return reply


def compare(sequence: Sequence, replies: list[Any]) -> list[Difference]:
    """The new server's replies against the recorded ones (steps without a recorded reply are skipped);
    `Difference.step` is the step's index in `sequence.steps`."""
    kept = [i for i, old in enumerate(sequence.recorded_replies[:len(replies)]) if old is not None]
    found = compare_sequence([sequence.steps[i] for i in kept], [replies[i] for i in kept],
                             [sequence.recorded_replies[i] for i in kept])
    return [Difference(kept[d.step], d.path, d.target, d.reference, d.allowed_by, d.why) for d in found]
