"""Request sequences as data: steps with symbolic secrets, their JSON Lines form, and their execution.

A step is one request sent by one simulated client (`{"client": 1, "request": {...}}`) or a target
restart (`{"restart": true}`). Requests name sessions symbolically: `$session:N`, `$token:N` (the
N-th session created in the sequence) and `$client:K` (a client_id unique to this execution), so a
sequence carries no secret and replays against a fresh target. The stateful machine, `replay` and
differential mode all run sequences through `SequenceExecutor`, which checks every reply twice: the
context's automatic checks (JSON object, response schemas, allowed codes, echo rules) and the model's
prediction (conformance/stateful/model.py).

This module must never decide anything the model or the context decides, and never write a real
token into a step or a report.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from stui_protocol_kit.conformance.case import CaseFailed
from stui_protocol_kit.conformance.context import CaseContext, CheckedClient
from stui_protocol_kit.conformance.formats import FormatError, check
from stui_protocol_kit.conformance.stateful.model import ProtocolModel
from stui_protocol_kit.protocol.problems import Problem

Json = Any
PLACEHOLDER = re.compile(r"^\$(session|token|client):(\d+)$")
# A syntactically valid session id / token that no target ever issued (too regular to be random).
UNBOUND_SESSION = "unboundSession{:08d}"
UNBOUND_TOKEN = "unboundToken{:08d}" + "x" * 23


@dataclass(frozen=True)
class Step:
    """One step of a sequence: a request from client `client`, a restart, or `wait` seconds passing."""

    client: int = 0
    request: Json = None
    restart: bool = False
    wait: float = 0.0

    def to_json(self) -> dict[str, Any]:
        if self.restart:
            return {"restart": True}
        if self.wait:
            return {"wait": self.wait}
        return {"client": self.client, "request": self.request}

    @staticmethod
    def from_json(line: Any) -> Step:
        """A step from one parsed line, checked against conformance/formats/sequence-step.schema.json."""
        try:
            check("sequence-step", line)
        except FormatError as exc:
            raise ValueError(f'a step is {{"client": N, "request": {{...}}}}, {{"restart": true}} or {{"wait": S}}'
                             f' ({exc})') from None
        if "restart" in line:
            return Step(restart=True)
        if "wait" in line:
            return Step(wait=float(line["wait"]))
        return Step(client=line["client"], request=line["request"])


def to_jsonl(steps: Iterable[Step]) -> str:
    return "".join(json.dumps(step.to_json(), ensure_ascii=False, sort_keys=True) + "\n" for step in steps)


def from_jsonl(text: str) -> list[Step]:
    steps = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            steps.append(Step.from_json(json.loads(line)))
        except ValueError as exc:
            raise ValueError(f"line {number}: {exc}") from None
    return steps


class SequenceFailure(CaseFailed):
    """A reply the spec does not allow, at step `index` of `steps` (which end with the failing step).
    Its problems are the failing reply's, each prefixed with the step; `jsonl` is the replayable sequence."""

    def __init__(self, failure: CaseFailed, steps: list[Step], index: int) -> None:
        self.steps = list(steps)
        self.index = index
        self.jsonl = to_jsonl(self.steps)
        where = f"step {index + 1} of {len(self.steps)}"
        first = failure.problem
        super().__init__(first.expected, first.actual, first.requirement, f"{where}: {first.message}",
                         failure.violations, path=first.path, subject=first.subject, rule=first.rule)
        self.problems = [Problem(p.requirement, f"{where}: {p.message}", p.path, p.expected, p.actual, p.rule,
                                 p.subject) for p in failure.problems]
        self.cause = failure


class SequenceExecutor:
    """Runs steps against the context's target with `clients` simulated clients and a fresh model."""

    def __init__(self, ctx: CaseContext, clients: int, clock: Callable[[], float] = time.monotonic,
                 check: bool = True) -> None:
        self.ctx = ctx
        self.check = check  # False: only follow replies (differential oracle), never judge them
        self.clock = clock
        self.clients: list[CheckedClient] = [ctx.client() for _ in range(max(1, clients))]
        self.model = ProtocolModel(ctx.limits, ctx.capabilities, ctx.validator, traffic=ctx.retry_traffic)
        self.nonce = secrets.token_hex(4)
        self.steps: list[Step] = []
        self.replies: list[Json] = []

    def close(self) -> None:
        for client in self.clients:
            client.close()

    # -- placeholders -------------------------------------------------------------------------------

    def resolve(self, value: Json) -> Json:
        """The request with placeholders replaced by this execution's real values."""
        if isinstance(value, dict):
            return {k: self.resolve(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if isinstance(value, str):
            match = PLACEHOLDER.match(value)
            if match:
                kind, number = match.group(1), int(match.group(2))
                if kind == "client":
                    return f"gen-{self.nonce}-{number}"
                known = 1 <= number <= len(self.model.sessions)
                if kind == "session":
                    return self.model.session(number).session_id if known else UNBOUND_SESSION.format(number)
                return self.model.session(number).token if known else UNBOUND_TOKEN.format(number)
        return value

    # -- running ------------------------------------------------------------------------------------

    def run(self, step: Step) -> Json:
        """Execute one step; raises SequenceFailure (a CaseFailed) when the reply is not allowed."""
        self.steps.append(step)
        index = len(self.steps) - 1
        if step.restart:
            self.ctx.restart()
            for client in self.clients:
                client.reconnect()
            self.model.restart(self.clock())
            self.replies.append(None)
            return None
        if step.wait:
            time.sleep(step.wait)  # time passes on the target's clock: deadlines and retention come due
            self.replies.append(None)
            return None
        while step.client >= len(self.clients):
            self.clients.append(self.ctx.client())
        message = self.resolve(step.request)
        now = self.clock()
        client = self.clients[step.client]
        try:
            exchange = client.send(message) if self.check else client.raw.send(message)
        except CaseFailed as failure:
            raise SequenceFailure(failure, self.steps, index) from None
        reply = exchange.reply
        self.replies.append(reply)
        outcome = self.model.observe(message, reply, now, step.client)
        if outcome.problems and self.check:
            raise SequenceFailure(CaseFailed.of(outcome.problems), self.steps, index)
        return reply

    def run_all(self, steps: Iterable[Step]) -> None:
        for step in steps:
            self.run(step)
