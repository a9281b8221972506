"""Differential mode (`--differential`): replay generated sequences against the reference server too.

Every sequence the stateful machine ran against the target is replayed, step by step, against an
embedded reference server, and the replies are compared after normalisation: session ids, tokens,
object ids and timestamps are replaced by symbols in order of first appearance, and error messages
(free text) are dropped. The first reply that differs in meaning is reported - unless the difference
is one the spec allows, in which case it is only noted, with the rule that allows it.

This module must never judge which side is right beyond that: the model and the schemas already did
for the target. It must never send a secret anywhere but to the target that issued it.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from typing import Any

from stui_protocol_kit.conformance.case import CaseFailed
from stui_protocol_kit.conformance.context import CaseContext, TargetHandle
from stui_protocol_kit.conformance.stateful.sequence import SequenceExecutor, Step, to_jsonl
from stui_protocol_kit.conformance.target import EmbeddedServer, probe_hello
from stui_protocol_kit.protocol.problems import show
from stui_protocol_kit.protocol.requirements import success_requirement
from stui_protocol_kit.protocol.schemas import registry

Json = Any
MAX_SEQUENCES = 40  # bounded: differential mode doubles the traffic of every replayed sequence

# Where the spec leaves a choice, target and reference may differ. Each entry: a glob over the JSON path
# of the differing value (after normalisation), the requirement or rule that allows the choice, and why.
ALLOWED_DIFFERENCES: tuple[tuple[str, str, str], ...] = (
    ("$.result.server*", "HEL-3", "server name and version identify the implementation"),
    ("$.result.capabilities*", "VER-5", "optional features are the implementation's choice"),
    ("$.result.limits*", "LIM-1", "limits are announced by each server"),
    ("$.error.details.violations*", "ENV-1", "violations are a SHOULD; their wording and number may differ"),
    ("$.error.details.supported_commands*", "VER-6", "lists the commands the server serves"),
    ("$.error.details.reason", "EVL-6", "an EvaluationError's reason is free text"),
    ("$.error.details.position", "EVL-6", "an EvaluationError's position is a SHOULD"),
    ("$.result.attached_clients", "CON-7", "counts connections, which the two servers see differently"),
    ("$.result.source", "RES-3", "after a restart, whether a server already holds a session depends on what"
                                 " loaded it (RES-5)"),
    ("$.error.details.incident_id", "ERR-4", "an internal incident id is the server's own"),
)
# Replies of code outside the evaluate subset may differ completely (EVL-7).
OUTSIDE_SUBSET_RULE = "EVL-7"

_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")
_VOLATILE_KEYS = {"session_id": "session", "token": "token", "object_id": "object"}


def enabled(ctx: CaseContext) -> bool:
    return ctx.config.differential


@dataclass
class Recorder:
    """The sequences a machine ran against the target, with the target's replies."""

    sequences: list[tuple[list[Step], list[Json]]] = field(default_factory=list)

    def add(self, steps: list[Step], replies: list[Json]) -> None:
        if len(self.sequences) < MAX_SEQUENCES and steps:
            self.sequences.append((list(steps), list(replies)))


@dataclass(frozen=True)
class Difference:
    step: int
    path: str
    target: Json
    reference: Json
    allowed_by: str | None = None
    why: str = ""


class Normaliser:
    """Replaces ids, tokens, object ids and timestamps by symbols numbered in order of appearance, so
    that two servers' replies to the same sequence compare equal when they mean the same."""

    def __init__(self) -> None:
        self.symbols: dict[tuple[str, str], str] = {}

    def symbol(self, kind: str, value: str) -> str:
        key = (kind, value)
        if key not in self.symbols:
            self.symbols[key] = f"<{kind}:{sum(1 for k in self.symbols if k[0] == kind) + 1}>"
        return self.symbols[key]

    def __call__(self, value: Json, key: str = "") -> Json:
        if isinstance(value, dict):
            out = {}
            for k, v in value.items():
                if k == "message" and isinstance(v, str):
                    continue  # free text (ENV-8)
                if k == "objects" and isinstance(v, dict):
                    out[k] = {self.symbol("object", ok): self(ov) for ok, ov in v.items()}
                    continue
                out[k] = self(v, k)
            return out
        if isinstance(value, list):
            return [self(v, key) for v in value]
        if isinstance(value, str):
            if _TIMESTAMP.match(value):
                return "<timestamp>"
            if key in _VOLATILE_KEYS:
                return self.symbol(_VOLATILE_KEYS[key], value)
        return value


def differences(target: Json, reference: Json, path: str = "$") -> list[tuple[str, Json, Json]]:
    """Every JSON path at which two (normalised) values differ."""
    if isinstance(target, dict) and isinstance(reference, dict):
        out = []
        for key in sorted(set(target) | set(reference)):
            out += differences(target.get(key, "<absent>"), reference.get(key, "<absent>"), f"{path}.{key}")
        return out
    if isinstance(target, list) and isinstance(reference, list) and len(target) == len(reference):
        out = []
        for i, (a, b) in enumerate(zip(target, reference, strict=True)):
            out += differences(a, b, f"{path}[{i}]")
        return out
    return [] if target == reference else [(path, target, reference)]


def allowed(path: str) -> tuple[str, str] | None:
    for pattern, rule, why in ALLOWED_DIFFERENCES:
        if fnmatch.fnmatchcase(path, pattern):
            return rule, why
    return None


def compare_sequence(steps: list[Step], target_replies: list[Json], reference_replies: list[Json]) -> list[Difference]:
    """Differences step by step; the first one not allowed ends the comparison (later replies follow
    from it and would only repeat it)."""
    left, right = Normaliser(), Normaliser()
    found: list[Difference] = []
    for index, (step, a, b) in enumerate(zip(steps, target_replies, reference_replies, strict=False)):
        if step.restart or step.wait:
            continue
        outside = _outside_subset(step.request)
        for path, x, y in differences(left(a), right(b)):
            rule = allowed(path)
            if rule is None and outside:
                rule = (OUTSIDE_SUBSET_RULE, "code outside the evaluate subset")
            found.append(Difference(index, path, x, y, *(rule or (None, ""))))
            if rule is None:
                return found
    return found


def _outside_subset(request: Json) -> bool:
    from stui_protocol_kit.conformance.stateful.model import OutsideSubset, SubsetError, evaluate_subset

    params = request.get("parameters") if isinstance(request, dict) else None
    code = (params or {}).get("code") or (params or {}).get("expression")
    if not isinstance(code, str):
        return False
    try:
        evaluate_subset(code, {})
    except OutsideSubset:
        return True
    except SubsetError:
        return False
    return False


class ReferenceOracle:
    """An embedded reference server and a context to talk to it, for one comparison run."""

    def __init__(self, ctx: CaseContext) -> None:
        from stui_protocol_kit.conformance.runner import reference_settings_for

        # The comparison server announces the target's limits: only what the spec fixes may differ.
        self.server = EmbeddedServer(reference_settings_for(ctx.limits), name="differential")
        endpoint = self.server.start()
        hello = probe_hello(endpoint, 10, ctx.zmq_context)
        handle = TargetHandle(endpoint, hello, self.server.restart)
        self.ctx = CaseContext(ctx.case, handle, ctx.config, ctx.zmq_context, can_restart=True)

    def replay(self, steps: list[Step]) -> list[Json]:
        """The reference's replies to `steps` (the model follows them only to resolve placeholders)."""
        executor = SequenceExecutor(self.ctx, clients=1 + max((s.client for s in steps if not s.restart), default=0),
                                    check=False)
        try:
            for step in steps:
                executor.run(step)
        finally:
            executor.close()
        return executor.replies

    def close(self) -> None:
        self.ctx.close()
        self.server.cleanup()


def _requirement_of(step: Step, path: str) -> str:
    """What a difference the spec does not allow breaks: which error answers a request is fixed by the
    precedence order (ERR-1); what a success holds, by the command's success requirement."""
    command = step.request.get("command") if isinstance(step.request, dict) else None
    if path.startswith(("$.error", "$.status")) or command not in registry().commands:
        return "ERR-1"
    return success_requirement(command)


def compare(ctx: CaseContext, recorder: Recorder) -> None:
    """Replay every recorded sequence on the reference server; fail on the first difference in meaning
    that the spec does not allow, note the allowed ones."""
    if not recorder.sequences:
        return
    oracle = ReferenceOracle(ctx)
    noted: set[str] = set()
    try:
        for steps, replies in recorder.sequences:
            reference = oracle.replay(steps)
            for diff in compare_sequence(steps, replies, reference):
                if diff.allowed_by is not None:
                    key = f"{diff.path} ({diff.allowed_by})"
                    if key not in noted:
                        noted.add(key)
                        ctx.note(f"differential: {diff.path} differs from the reference, allowed by {diff.allowed_by}:"
                                 f" {diff.why}")
                    continue
                failure = CaseFailed(
                    diff.reference, diff.target, _requirement_of(steps[diff.step], diff.path), path=diff.path,
                    rule="differential",
                    message=(f"differential: step {diff.step + 1} differs from the reference server at {diff.path}:"
                             f" target {show(diff.target)}, reference {show(diff.reference)}; no rule of the spec"
                             " allows this choice"),
                )
                failure.jsonl = to_jsonl(steps[:diff.step + 1])  # type: ignore[attr-defined]
                raise failure
    finally:
        oracle.close()
