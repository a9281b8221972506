"""The stateful conformance machine: random sequences over several simulated clients, checked by the model.

A hypothesis `RuleBasedStateMachine` whose rules each build one step (conformance/stateful/sequence.py)
- create, resume, validate, snapshot (without, with the current, and with a stale expected_revision),
close, evaluate, inspect, wrong tokens, unknown ids, exact retries (from another client too), request
ids reused for a different request, target restarts when the run can restart the target, and time
passing (waits past a session's deadline or retention, within the run's expiry budget) - and
run it through a `SequenceExecutor`, which checks the reply against the response schemas and the
model. Steps name sessions symbolically (`$session:N`), so a failing example, once hypothesis has
shrunk it, is printed as JSON Lines that `stui-conformance replay` runs against a fresh target.

Runs are reproducible: the hypothesis seed is the run's `--seed`, no example database is used.

This module must never predict replies itself (the model does) and never hold a real token in a step.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from hypothesis import HealthCheck, Phase, Verbosity, seed, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, precondition, rule, run_state_machine_as_test

from stui_protocol_kit.conformance.context import CaseContext
from stui_protocol_kit.conformance.stateful.differential import Recorder
from stui_protocol_kit.conformance.stateful.model import TIMING_SLACK_S
from stui_protocol_kit.conformance.stateful.sequence import SequenceExecutor, SequenceFailure, Step
from stui_protocol_kit.protocol.facts import PROTOCOL_VERSION, SESSION_SCOPED_COMMANDS
from stui_protocol_kit.protocol.lifecycle import State

CLIENTS = 3  # simulated clients (connections) per example
SESSION_SCOPED = tuple(sorted(SESSION_SCOPED_COMMANDS))
VARIABLES = ("a", "b", "total", "name")


@dataclasses.dataclass
class Budget:
    """How much a stateful case explores: examples x steps, and whether restarts are among the rules."""

    examples: int = 25
    steps: int = 15
    restarts: bool = False
    # Examples hypothesis may run to shrink a failure. Every example is real traffic (a faulty server's
    # failure took 100 s to shrink unbounded); a count, not a time limit, so the printed sequence depends on
    # the seed alone and not on how busy the machine is.
    shrink_examples: int = 150
    max_restarts: int = 1  # per example
    # Time as an action: the machine may wait up to `max_wait_s` at a time (past a session's idle or
    # absolute deadline, or its retention), at most `waits` times per example; 0 disables it.
    max_wait_s: float = 0.0
    waits: int = 2


@dataclasses.dataclass
class FailureBox:
    """The failing sequence to report: the shortest seen (hypothesis tries smaller ones as it shrinks; on
    a tie the later, which hypothesis found smaller), and how many examples ran since the first failure."""

    failure: SequenceFailure | None = None
    examples_since_failure: int = 0

    def keep(self, failure: SequenceFailure) -> None:
        if self.failure is None or len(failure.steps) <= len(self.failure.steps):
            self.failure = failure


class _ShrinkBudgetSpent(BaseException):
    """Ends hypothesis' shrinking early (hypothesis lets a BaseException that is not an Exception through)."""


# -- strategies for the parts of a step ------------------------------------------------------------------

def request_id_variants(counter: int) -> st.SearchStrategy[str]:
    """Ids the schema allows, including unusual ones a server must accept (long, non-ASCII)."""
    base = f"g{counter}"
    return st.sampled_from([base, base, base, (base + "-" * 128)[:128], f"{base}-ü✓", f"{base} with space"])


def _default_id(counter: int) -> str:
    """Ids cycle through shapes the schema allows (1..128 characters, any text): a server must accept
    all of them, and deterministic ids keep shrinking and replay simple."""
    base = f"g{counter}"
    return {2: (base + "-" * 128)[:128], 4: f"{base}-ü✓"}.get(counter % 5, base)


def _literal() -> st.SearchStrategy[str]:
    return st.one_of(
        st.integers(min_value=-999, max_value=999).map(str),
        st.text(alphabet="abcxyz' é", max_size=6).map(lambda s: "'" + s.replace("'", "''") + "'"),
    )


def code_strategy(bound: list[str]) -> st.SearchStrategy[str]:
    """Code in the evaluate subset: assignments and arithmetic over literals and bound variables; now
    and then a read of an unbound variable or a type error (EvaluationError)."""
    # Bound names first: reading variables (own and other sessions') is where state bugs show.
    operand = st.one_of(*([st.sampled_from(bound)] if bound else []), st.integers(min_value=0, max_value=999).map(str))
    arithmetic = st.tuples(operand, st.lists(st.tuples(st.sampled_from(["+", "-", "*"]), operand), max_size=3)).map(
        lambda t: t[0] + "".join(f" {op} {x}" for op, x in t[1]))
    strings = st.lists(st.text(alphabet="abc' ", max_size=4).map(lambda s: "'" + s.replace("'", "''") + "'"),
                       min_size=1, max_size=3).map(" , ".join)
    expression = st.one_of(arithmetic, strings, _literal(), st.just("undefinedVariable + 1"), st.just("1 + 'x'"))
    statement = st.one_of(
        expression, st.tuples(st.sampled_from(VARIABLES), expression).map(lambda t: f"{t[0]} := {t[1]}"))
    return st.lists(statement, min_size=1, max_size=3).map(". ".join)


client_documents = st.dictionaries(
    st.sampled_from(["pane", "zoom", "history", "theme"]),
    st.one_of(st.integers(-5, 5), st.booleans(), st.text(max_size=4), st.floats(0, 2, allow_nan=False).map(
        lambda f: round(f, 2)), st.lists(st.integers(0, 9), max_size=3)),
    max_size=3,
)


def make_machine(ctx: CaseContext, budget: Budget, box: FailureBox,
                 recorder: Recorder | None = None) -> type[RuleBasedStateMachine]:
    """A machine class bound to this run's context (hypothesis instantiates it once per example)."""

    class SessionMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            if box.failure is not None:
                box.examples_since_failure += 1
                if box.examples_since_failure > budget.shrink_examples:
                    raise _ShrinkBudgetSpent
            super().__init__()
            self.executor = SequenceExecutor(ctx, CLIENTS)
            self.counter = 0
            self.restarts = 0
            self.waited = 0

        # -- helpers ---------------------------------------------------------------------------------

        @property
        def model(self) -> Any:
            return self.executor.model

        def send(self, client: int, command: str, parameters: dict[str, Any], request_id: str | None = None) -> None:
            self.counter += 1
            rid = request_id if request_id is not None else _default_id(self.counter)
            message = {"id": rid, "version": PROTOCOL_VERSION, "command": command, "parameters": parameters}
            self.step(Step(client, message))

        def step(self, step: Step) -> None:
            try:
                self.executor.run(step)
            except SequenceFailure as failure:
                box.keep(failure)
                raise

        def scoped(self, number: int, **extra: Any) -> dict[str, Any]:
            return {"session_id": f"$session:{number}", "token": f"$token:{number}", **extra}

        def has_sessions(self) -> bool:
            return bool(self.model.sessions)

        def pick(self, data: st.DataObject) -> int:
            return data.draw(st.integers(1, len(self.model.sessions)), label="session")

        def sent(self) -> list[Step]:
            return [s for s in self.executor.steps if not s.restart and isinstance(s.request, dict)]

        # -- rules -----------------------------------------------------------------------------------

        @initialize(client=st.integers(0, CLIENTS - 1), who=st.integers(1, 2))
        def first_session(self, client: int, who: int) -> None:
            self.send(client, "session.create", {"client_id": f"$client:{who}"})

        @rule(client=st.integers(0, CLIENTS - 1), who=st.integers(1, 2), data=st.data())
        def create(self, client: int, who: int, data: st.DataObject) -> None:
            self.counter += 1
            rid = data.draw(request_id_variants(self.counter), label="id")
            self.send(client, "session.create", {"client_id": f"$client:{who}"}, rid)

        @precondition(has_sessions)
        @rule(client=st.integers(0, CLIENTS - 1), data=st.data())
        def resume(self, client: int, data: st.DataObject) -> None:
            self.send(client, "session.resume", self.scoped(self.pick(data)))

        @precondition(has_sessions)
        @rule(client=st.integers(0, CLIENTS - 1), data=st.data())
        def validate(self, client: int, data: st.DataObject) -> None:
            self.counter += 1
            rid = data.draw(request_id_variants(self.counter), label="id")
            self.send(client, "session.validate", self.scoped(self.pick(data)), rid)

        @precondition(has_sessions)
        @rule(client=st.integers(0, CLIENTS - 1), data=st.data(),
              expected=st.sampled_from(["none", "current", "stale", "ahead"]),
              inspector=st.none() | client_documents, preferences=st.none() | client_documents)
        def snapshot(self, client: int, data: st.DataObject, expected: str, inspector: Any, preferences: Any) -> None:
            number = self.pick(data)
            revision = self.model.session(number).revision
            params = self.scoped(number)
            if expected == "current":
                params["expected_revision"] = revision
            elif expected == "stale":
                params["expected_revision"] = max(0, revision - 1) if revision else revision + 1
            elif expected == "ahead":
                params["expected_revision"] = revision + 1
            state = {k: v for k, v in (("inspector", inspector), ("preferences", preferences)) if v is not None}
            if state or data.draw(st.booleans(), label="empty state"):
                params["state"] = state
            self.send(client, "session.snapshot", params)

        @precondition(has_sessions)
        @rule(client=st.integers(0, CLIENTS - 1), data=st.data(), really=st.integers(0, 3))
        def close(self, client: int, data: st.DataObject, really: int) -> None:
            # Closing ends what a sequence can explore on a session, so only one draw in four closes;
            # the others validate (which is also the cheapest way to see the close took effect).
            command = "session.close" if really == 0 else "session.validate"
            self.send(client, command, self.scoped(self.pick(data)))

        @precondition(lambda self: self.has_sessions() and "evaluate" in ctx.capabilities)
        @rule(client=st.integers(0, CLIENTS - 1), data=st.data())
        def evaluate(self, client: int, data: st.DataObject) -> None:
            number = self.pick(data)
            # Variables of *any* session are candidates: reading another session's name must fail (CON-4).
            bound = sorted({n for s in self.model.sessions for n in s.variables})
            code = data.draw(code_strategy(bound), label="code")
            self.send(client, "evaluate", self.scoped(number, code=code))

        @precondition(lambda self: self.has_sessions() and "inspect" in ctx.capabilities)
        @rule(client=st.integers(0, CLIENTS - 1), data=st.data())
        def inspect(self, client: int, data: st.DataObject) -> None:
            number = self.pick(data)
            known = sorted({oid for s in self.model.sessions for oid in s.objects})
            kinds = ["expression", "object", "unknown"] if known else ["expression", "unknown"]
            choice = data.draw(st.sampled_from(kinds), label="inspect by")
            if choice == "expression":
                bound = sorted(self.model.session(number).variables)
                params = self.scoped(number, expression=data.draw(st.one_of(_literal(), *(
                    [st.sampled_from(bound).map(lambda n: f"{n}")] if bound else []))))
            elif choice == "object":
                params = self.scoped(number, object_id=data.draw(st.sampled_from(known)))
            else:
                params = self.scoped(number, object_id="no-such-object")
            self.send(client, "inspect", params)

        @precondition(has_sessions)
        @rule(client=st.integers(0, CLIENTS - 1), data=st.data(), command=st.sampled_from(SESSION_SCOPED),
              how=st.sampled_from(["other session", "changed", "prefix"]))
        def wrong_token(self, client: int, data: st.DataObject, command: str, how: str) -> None:
            number = self.pick(data)
            token = self.model.session(number).token
            if how == "other session" and len(self.model.sessions) > 1:
                other = number % len(self.model.sessions) + 1
                wrong = f"$token:{other}"
            elif how == "prefix":
                wrong = "A" * 43  # a wrong token of the right shape; the real one is never written down
            else:
                wrong = ("B" if token[0] != "B" else "C") * 43
            params: dict[str, Any] = {"session_id": f"$session:{number}", "token": wrong}
            params.update(_minimal_parameters(command))
            self.send(client, command, params)

        @rule(client=st.integers(0, CLIENTS - 1), command=st.sampled_from(SESSION_SCOPED))
        def unknown_session(self, client: int, command: str) -> None:
            params: dict[str, Any] = {"session_id": "$session:99", "token": "$token:99"}
            params.update(_minimal_parameters(command))
            self.send(client, command, params)

        @precondition(lambda self: bool(self.sent()))
        @rule(client=st.integers(0, CLIENTS - 1), data=st.data())
        def retry(self, client: int, data: st.DataObject) -> None:
            """The same request again (same id, command, parameters), possibly on another connection."""
            previous = data.draw(st.sampled_from(self.sent()), label="retried step")
            self.step(Step(client, previous.request))

        @precondition(lambda self: any(s.request.get("command") in SESSION_SCOPED for s in self.sent()))
        @rule(client=st.integers(0, CLIENTS - 1), data=st.data())
        def reuse_id(self, client: int, data: st.DataObject) -> None:
            """An id already used in a session, for a different request: InvalidRequest (id_reused)."""
            candidates = [s for s in self.sent() if s.request.get("command") in SESSION_SCOPED]
            previous = data.draw(st.sampled_from(candidates), label="reused step")
            params = previous.request["parameters"]
            scope = {"session_id": params["session_id"], "token": params["token"]}
            command = "session.validate" if previous.request["command"] != "session.validate" else "session.resume"
            self.send(client, command, scope, previous.request["id"])

        @precondition(lambda self: budget.restarts and self.has_sessions() and self.restarts < budget.max_restarts)
        @rule()
        def restart(self) -> None:
            self.restarts += 1
            self.step(Step(restart=True))

        def teardown(self) -> None:
            if recorder is not None:
                recorder.add(self.executor.steps, self.executor.replies)
            self.executor.close()

    if budget.max_wait_s <= 0:
        return SessionMachine

    class TimedSessionMachine(SessionMachine):
        """With time as an action: a rule of its own class, so that machines without it draw exactly the
        examples they drew before (a fixed seed keeps finding what it found)."""

        @precondition(lambda self: self.has_sessions() and self.waited < budget.waits)
        @rule(data=st.data(), until=st.sampled_from(["deadline", "retention", "a moment"]))
        def time_passes(self, data: st.DataObject, until: str) -> None:
            """Wait until the model says a session must have expired (its latest allowed deadline, after a
            restart counted from the restart) or must have been purged - never beyond `max_wait_s`; the
            next requests then meet the lifecycle's transitions in time, which the model predicts."""
            self.waited += 1
            s = self.model.session(self.pick(data))
            now = self.executor.clock()
            margin = TIMING_SLACK_S + 0.3
            if until == "deadline" and s.state is State.ACTIVE:
                wait = self.model.latest_deadline(s) + margin - now
            elif until == "retention":
                end = self.model.latest_deadline(s) if s.state is not State.CLOSED else s.lifecycle.purge_at() \
                    - s.lifecycle.timeouts.tombstone_retention_s
                wait = end + s.lifecycle.timeouts.tombstone_retention_s + margin - now
            else:
                wait = 0.3
            if not 0 < wait <= budget.max_wait_s:
                wait = 0.3
            self.step(Step(wait=round(wait, 2)))

    return TimedSessionMachine


def _minimal_parameters(command: str) -> dict[str, Any]:
    """What a session-scoped command needs besides session_id and token to be schema-valid."""
    return {"evaluate": {"code": "1"}, "inspect": {"expression": "1"}}.get(command, {})


def run_machine(ctx: CaseContext, budget: Budget, recorder: Recorder | None = None) -> None:
    """Run the machine within `budget`; a failure is raised as the shrunk SequenceFailure."""
    box = FailureBox()
    machine = make_machine(ctx, budget, box, recorder)
    machine = seed(ctx.config.seed)(machine)
    config = settings(
        max_examples=max(1, budget.examples), stateful_step_count=max(1, budget.steps), deadline=None,
        database=None, verbosity=Verbosity.quiet, suppress_health_check=list(HealthCheck),
        phases=(Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink),
        report_multiple_bugs=False,
    )
    try:
        run_state_machine_as_test(machine, settings=config)
    except _ShrinkBudgetSpent:
        assert box.failure is not None
        raise box.failure from None
    except SequenceFailure:
        raise
    except Exception:
        # A failure outside the executor (e.g. a timeout) still comes with the sequence that led to it.
        if box.failure is not None:
            raise box.failure from None
        raise
