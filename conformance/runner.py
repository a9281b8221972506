"""The runner: starts or reaches the target, reads its hello, runs the selected cases, collects results.

Scheduling, chosen for the 60 s budget on two cores:
1. Cases that need expiry (they mostly wait for the target's clock) run in threads, overlapping each
   other and the ordinary cases. With the embedded reference server they talk to a second embedded
   server whose idle timeout is 2 s, so the main server can keep sessions alive for the whole run.
2. Ordinary cases run one after another in the main thread, in spec order.
3. Cases that restart the target (`exclusive`) run last, alone, so no other case sees the restart;
   those that also need expiry restart the short-timeout server, one after another once the background
   cases are done there, while the main server's cases go on.

Outcomes (conformance/case.py): UNSUPPORTED when hello does not announce a capability the case needs,
SKIPPED when the run cannot provide a restart, the expiry budget or the limits the case needs, TIMEOUT
when a request got no reply within --timeout, ERROR when the suite itself failed (a case's exception,
its budget overrun while the target answered, a restart that failed, a problem citing a requirement the
case does not declare), FAILED / NON-STRICT by the level of the requirements a case's problems cite.
Verdicts per requirement and for the run: conformance/verdicts.py.

This module must never judge a reply itself (cases and verifiers do) and never print (reports do).
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from queue import Empty, Queue
from typing import Any

import zmq

from stui_protocol_kit.conformance.baseline import Baseline
from stui_protocol_kit.conformance.case import (
    AUTOMATIC_REQUIREMENTS,
    CAPABILITY_NEEDS,
    CORRUPT_REASON,
    NEED_CORRUPT,
    NEED_EXCLUSIVE,
    NEED_EXPIRY,
    NEED_RESTART,
    Case,
    CaseFailed,
    CaseRegistry,
    CaseResult,
    CaseSkipped,
    CaseUnsupported,
    Outcome,
    SuiteError,
    load_cases,
)
from stui_protocol_kit.conformance.config import RunConfig
from stui_protocol_kit.conformance.context import CaseContext, TargetHandle
from stui_protocol_kit.conformance.hypothesis_storage import hypothesis_storage
from stui_protocol_kit.conformance.target import (
    EXPIRY_SETTINGS,
    MAIN_SETTINGS,
    CommandCorrupter,
    CommandRestarter,
    EmbeddedServer,
    TargetUnavailable,
    probe_hello,
)
from stui_protocol_kit.conformance.verdicts import RequirementRow, RunVerdict, requirement_matrix, run_verdict
from stui_protocol_kit.protocol.client import ReplyTimeout
from stui_protocol_kit.protocol.endpoints import EndpointError, check_endpoint
from stui_protocol_kit.protocol.problems import Problem
from stui_protocol_kit.protocol.requirements import Requirement, requirements


@dataclass
class RunReport:
    """The outcome of a run, as the reports render it."""

    results: list[CaseResult]
    hello: dict[str, Any]
    target: str
    config: RunConfig
    started_at: str
    duration_s: float
    partial: bool = False  # the run was interrupted: the results are those of the cases that finished
    index: dict[str, Requirement] = field(default_factory=requirements)
    # Expected non-passes (`--baseline`): they change the run's verdict only (conformance/verdicts.py).
    baseline: Baseline | None = None
    # Every case ID the kit knows, so a baseline entry naming no case is found stale.
    known_cases: frozenset[str] = frozenset()

    def matrix(self) -> dict[str, RequirementRow]:
        return requirement_matrix(self.results, self.index)

    def requirement_matrix(self) -> dict[str, dict[str, Any]]:
        """The matrix as JSON-ready dicts (the JSON report's `requirements`)."""
        return {req_id: row.as_dict() for req_id, row in self.matrix().items()}

    def run_verdict(self) -> RunVerdict:
        return run_verdict(self.results, self.matrix(), self.config.strict, self.baseline, self.known_cases)

    @property
    def passed(self) -> bool:
        return self.run_verdict().verdict.value == "PASS"

    @property
    def exit_code(self) -> int:
        return self.run_verdict().exit_code

    def describe(self) -> list[tuple[str, str]]:
        """What the report is about, as name/value pairs (JUnit suite properties)."""
        return [("target", self.target), ("seed", str(self.config.seed))]

    def counts(self) -> dict[str, int]:
        out = {o.value: 0 for o in Outcome}
        for r in self.results:
            out[r.outcome.value] += 1
        return out


ProgressHook = Callable[[CaseResult], None]

# How long an interrupted run waits for the ZeroMQ context to close (background cases blocked on a socket
# get ETERM at once; one asleep in an expiry wait closes its sockets when it wakes). Never longer: the
# background threads are daemons and the process may exit without them.
INTERRUPT_CLOSE_WAIT_S = 3.0
# The reason of every case an interrupted run did not finish: SKIPPED, so its requirements count as not
# checked and a partial run can never PASS.
NOT_RUN_INTERRUPTED = "not run: the run was interrupted"


class RunInterrupted(KeyboardInterrupt):
    """The run was interrupted (Ctrl-C, or a signal handler that raised KeyboardInterrupt): every embedded
    server is stopped and its data removed; `report` holds the cases that finished, marked partial.
    A KeyboardInterrupt, so a caller that does not look for it is interrupted as before."""

    def __init__(self, report: RunReport) -> None:
        super().__init__("the run was interrupted")
        self.report = report


def reference_settings_for(limits: dict[str, Any]) -> dict[str, Any]:
    """Command-line settings that make the reference server announce `limits` (differential mode compares
    only what the spec fixes, so the comparison server runs with the target's limits)."""
    options = {"max_message_bytes": "max-message-bytes", "max_nesting_depth": "max-nesting-depth",
               "idle_timeout_s": "idle-timeout", "absolute_timeout_s": "absolute-timeout",
               "max_sessions_per_client": "max-sessions-per-client", "retry_window_s": "retry-window",
               "tombstone_retention_s": "tombstone-retention", "max_revisions_kept": "max-revisions"}
    settings = dict(MAIN_SETTINGS)
    for name, option in options.items():
        value = limits.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            settings[option] = value
    return settings


class _Targets:
    """The target(s) of one run: the main one, the one expiry cases use, and how to restart."""

    def __init__(self, config: RunConfig, zmq_context: zmq.Context) -> None:
        self.config = config
        self.zmq_context = zmq_context
        self.servers: list[EmbeddedServer] = []
        self.main: TargetHandle
        self.expiry: TargetHandle
        self.restart_reason = ""

    def start(self) -> None:
        cfg = self.config
        argv = list(cfg.server_argv) if cfg.server_argv else None
        if cfg.target is None and cfg.server_settings is not None:
            only = EmbeddedServer({"log-level": "warning", **cfg.server_settings}, argv, list(cfg.server_extra_args),
                                  name="configured")
            self.servers = [only]
            endpoint = only.start()
            self.main = TargetHandle(endpoint, probe_hello(endpoint, 10, self.zmq_context), only.restart,
                                     corrupt=self._corrupter(only.corrupt_command))
            self.expiry = self.main
            return
        if cfg.target is None:
            main = EmbeddedServer(MAIN_SETTINGS, argv, list(cfg.server_extra_args), name="main")
            expiry = EmbeddedServer(EXPIRY_SETTINGS, argv, list(cfg.server_extra_args), name="expiry")
            self.servers = [main, expiry]
            # Start both at once: process start-up (imports, schema compilation) dominates.
            errors: list[Exception] = []

            def boot(server: EmbeddedServer) -> None:
                try:
                    server.start()
                except Exception as exc:  # reported below, after both tried
                    errors.append(exc)

            threads = [threading.Thread(target=boot, args=(s,)) for s in self.servers]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            if errors:
                self.stop()
                raise errors[0]
            assert main.endpoint and expiry.endpoint
            self.main = TargetHandle(main.endpoint, probe_hello(main.endpoint, 10, self.zmq_context), main.restart,
                                     corrupt=self._corrupter(main.corrupt_command))
            self.expiry = TargetHandle(expiry.endpoint, probe_hello(expiry.endpoint, 10, self.zmq_context),
                                       expiry.restart, corrupt=self._corrupter(expiry.corrupt_command))
            return
        try:
            check_endpoint(cfg.target)
        except EndpointError as exc:  # the CLI checks first; the plugin and callers of the API get the same words
            raise TargetUnavailable(str(exc)) from None
        hello = probe_hello(cfg.target, cfg.timeout_s, self.zmq_context, cfg.curve)
        restart = (CommandRestarter(cfg.target, cfg.restart_command, curve=cfg.curve).restart
                   if cfg.restart_command else None)
        if restart is None:
            self.restart_reason = "needs a restart of the target: pass --restart-command CMD (a shell command that" \
                                  " restarts it; the suite then waits for hello)"
        corrupt = CommandCorrupter(cfg.corrupt_command) if cfg.corrupt_command else None
        self.main = TargetHandle(cfg.target, hello, restart, curve=cfg.curve, corrupt=corrupt)
        self.expiry = self.main

    def hello(self) -> dict[str, Any]:
        """The main target's hello, or {} when the run stopped before reading it."""
        main = getattr(self, "main", None)
        return main.hello if main is not None else {}

    def _corrupter(self, embedded_command: str) -> CommandCorrupter:
        """The embedded server's own hook, unless the run names another (a faulty server's store may differ)."""
        return CommandCorrupter(self.config.corrupt_command or embedded_command)

    def stop(self) -> None:
        for server in self.servers:
            server.cleanup()


class Runner:
    """Runs cases against a target. Use `run()`; `progress` is called once per finished case
    (from worker threads too, serialised by a lock)."""

    def __init__(self, config: RunConfig, registry: CaseRegistry | None = None,
                 progress: ProgressHook | None = None) -> None:
        self.config = config
        self.registry = registry or load_cases()
        self.progress = progress
        self._lock = threading.Lock()
        self._results: dict[str, CaseResult] = {}
        # Set once the run is interrupted: no result is recorded after it and nothing is restarted.
        self._stopping = False
        # endpoint -> the case during which that target stopped answering (and could not be restarted)
        self._down: dict[str, str] = {}

    def selected(self) -> list[Case]:
        return self.registry.select(self.config.select, self.config.exclude)

    def run(self) -> RunReport:
        """Start/reach the target (TargetUnavailable when it cannot), run, stop embedded servers.
        Interrupted (KeyboardInterrupt, also from a signal handler): RunInterrupted with a partial report."""
        started = time.monotonic()
        started_at = datetime.now(UTC).isoformat(timespec="seconds")
        zmq_context = zmq.Context()
        zmq_context.setsockopt(zmq.LINGER, 0)
        targets = _Targets(self.config, zmq_context)
        try:
            targets.start()
            with hypothesis_storage(self.config.hypothesis_dir):
                results = self._run_all(targets, zmq_context)
        except KeyboardInterrupt:
            with self._lock:
                self._stopping = True
                finished = [self._results.get(c.id) or CaseResult(c, Outcome.SKIPPED, reason=NOT_RUN_INTERRUPTED)
                            for c in self.selected()]
            targets.stop()
            _close_context(zmq_context, INTERRUPT_CLOSE_WAIT_S)
            report = RunReport(finished, targets.hello(), self._target_name(targets), self.config, started_at,
                               time.monotonic() - started, partial=True,
                               known_cases=frozenset(c.id for c in self.registry))
            raise RunInterrupted(report) from None
        except BaseException:
            with self._lock:
                self._stopping = True
            targets.stop()
            _close_context(zmq_context, INTERRUPT_CLOSE_WAIT_S)
            raise
        targets.stop()
        zmq_context.term()
        return RunReport(results, targets.main.hello, self._target_name(targets), self.config, started_at,
                         time.monotonic() - started, known_cases=frozenset(c.id for c in self.registry))

    def _target_name(self, targets: _Targets) -> str:
        if self.config.target:
            return self.config.target
        endpoint = getattr(getattr(targets, "main", None), "endpoint", "not started")
        return f"embedded reference server ({endpoint})"

    # -- scheduling ----------------------------------------------------------------------------------

    def _run_all(self, targets: _Targets, zmq_context: zmq.Context) -> list[CaseResult]:
        cases = self.selected()
        results = self._results
        background = [c for c in cases if NEED_EXPIRY in c.needs and not c.needs & {NEED_EXCLUSIVE, NEED_RESTART}]
        exclusive = [c for c in cases if NEED_EXCLUSIVE in c.needs or NEED_RESTART in c.needs]
        ordinary = [c for c in cases if c not in background and c not in exclusive]

        def run_one(item: Case, target: TargetHandle) -> None:
            if self._stopping:
                return
            result = self.run_case(item, target, targets, zmq_context)
            with self._lock:
                if self._stopping:  # finished after an interrupt, against a stopped server: not a result
                    return
                results[item.id] = result
                if self.progress:
                    self.progress(result)

        # Daemon threads, not a ThreadPoolExecutor: the interpreter joins an executor's threads at exit, so
        # an interrupted run would wait for every expiry case to sleep out its wait.
        queue: Queue[Case] = Queue()
        for item in background:
            queue.put(item)

        def worker() -> None:
            while not self._stopping:
                try:
                    item = queue.get_nowait()
                except Empty:
                    return
                run_one(item, targets.expiry)

        workers = [threading.Thread(target=worker, name=f"expiry-{n}", daemon=True)
                   for n in range(min(16, len(background)))]
        for thread in workers:
            thread.start()
        # A case that restarts the target and waits on its clock runs on the short-timeout server. With the two
        # embedded servers it runs in a lane of its own once the background cases that share that server are
        # done, overlapping the main server's cases; with one target, last, with the other exclusive cases.
        separate = targets.expiry is not targets.main
        late = [c for c in exclusive if NEED_EXPIRY in c.needs] if separate else []

        def expiry_lane() -> None:
            for thread in workers:
                thread.join()
            for item in late:
                run_one(item, targets.expiry)

        lane = threading.Thread(target=expiry_lane, name="expiry-restarts", daemon=True)
        lane.start()
        for item in ordinary:
            run_one(item, targets.main)
        if not separate:  # one target: no case may see another's restart
            for thread in workers:
                thread.join()
        for item in exclusive:
            if item not in late:
                run_one(item, targets.expiry if NEED_EXPIRY in item.needs else targets.main)
        lane.join()
        return [results[c.id] for c in cases]

    def precondition(self, item: Case, target: TargetHandle, targets: _Targets) -> CaseResult | None:
        """The result of a case that cannot run here (UNSUPPORTED / SKIPPED), or None."""
        with self._lock:
            down_during = self._down.get(target.endpoint)
        if down_during is not None:
            # Waiting out a timeout per case would make a crashed target look like a hung suite.
            reason = f"not run: the target stopped answering during {down_during}"
            return CaseResult(item, Outcome.SKIPPED, reason=reason)
        missing = sorted((item.needs & CAPABILITY_NEEDS) - target.capabilities)
        if missing:
            return CaseResult(item, Outcome.UNSUPPORTED, reason=f"hello does not announce {', '.join(missing)}")
        if NEED_RESTART in item.needs and target.restart is None:
            return CaseResult(item, Outcome.SKIPPED, reason=targets.restart_reason or "target cannot be restarted")
        if NEED_CORRUPT in item.needs and target.corrupt is None:
            return CaseResult(item, Outcome.SKIPPED, reason=CORRUPT_REASON)
        if NEED_EXPIRY in item.needs:
            idle = float(target.limits.get("idle_timeout_s", 0) or 0)
            if idle > self.config.expiry_budget_s:
                return CaseResult(item, Outcome.SKIPPED, reason=(
                    f"needs the target's idle_timeout_s ({idle:.0f}s) within the expiry budget of "
                    f"{self.config.expiry_budget_s:g}s: pass --expiry-budget {idle:.0f} or run the target with a"
                    " shorter idle timeout"))
        return None

    def run_case(self, item: Case, target: TargetHandle, targets: _Targets, zmq_context: zmq.Context) -> CaseResult:
        """One case, with its outcome; never raises for anything the case or target does."""
        early = self.precondition(item, target, targets)
        if early is not None:
            return early
        ctx = CaseContext(item, target, self.config, zmq_context, target.restart is not None, targets.restart_reason)
        started = time.monotonic()
        result = CaseResult(item, Outcome.PASSED)
        try:
            item.run(ctx)
        except CaseFailed as exc:
            self._failed(result, exc)
        except ReplyTimeout as exc:
            result.outcome, result.reason = Outcome.TIMEOUT, str(exc)
            result.problems = [Problem("TRN-3", f"no reply within {self.config.timeout_s:g}s (--timeout): {exc}",
                                       "$", f"a reply within {self.config.timeout_s:g}s", "no reply", "timeout")]
            self._check_alive(item, target, ctx, zmq_context)
        except CaseSkipped as exc:
            result.outcome, result.reason = Outcome.SKIPPED, str(exc)
        except CaseUnsupported as exc:
            result.outcome, result.reason = Outcome.UNSUPPORTED, str(exc)
        except (SuiteError, TargetUnavailable) as exc:
            result.outcome, result.reason = Outcome.ERROR, str(exc)
        except Exception as exc:  # a bug in a case (a stray assert too) is the suite's ERROR, never the target's
            detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            result.outcome, result.reason = Outcome.ERROR, f"the case itself raised {detail}"
            result.detail = traceback.format_exc(limit=6)
        finally:
            ctx.close()
        result.duration_s = time.monotonic() - started
        result.transcript = ctx.transcript.entries
        result.notes = ctx.notes
        return result

    def _failed(self, result: CaseResult, exc: CaseFailed) -> None:
        """A CaseFailed as an outcome: FAILED if a MUST requirement is broken, NON-STRICT if only SHOULDs;
        ERROR if a problem cites a requirement the case does not declare (a suite bug)."""
        allowed = set(result.case.requirements) | AUTOMATIC_REQUIREMENTS
        stray = sorted({p.requirement for p in exc.problems} - allowed)
        result.problems = list(exc.problems)
        result.violations = list(exc.violations)
        result.sequence = getattr(exc, "jsonl", None)
        if stray:
            result.outcome = Outcome.ERROR
            result.reason = (f"suite bug: case {result.case.id} found a problem citing {', '.join(stray)}, which it"
                             f" does not declare ({'; '.join(p.message for p in exc.problems)[:300]})")
            return
        index = requirements()
        levels = {index[p.requirement].level if p.requirement in index else "MUST" for p in exc.problems}
        result.outcome = Outcome.FAILED if "MUST" in levels else Outcome.NON_STRICT

    def _check_alive(self, item: Case, target: TargetHandle, ctx: CaseContext, zmq_context: zmq.Context) -> None:
        """After a timeout: is the target still there? If not, restart it when the run knows how
        (later cases still get a target), else mark it down so later cases are skipped at once."""
        if self._stopping:
            return
        try:
            probe_hello(target.endpoint, self.config.timeout_s, zmq_context, target.curve)
            return
        except TargetUnavailable:
            pass
        if target.restart is not None and not self._stopping:
            try:
                target.endpoint = target.restart()
                ctx.note("the target stopped answering during this case; it was restarted for the cases after it")
                return
            except TargetUnavailable:
                pass
        with self._lock:
            self._down.setdefault(target.endpoint, item.id)
        ctx.note("the target stopped answering during this case (hello fails too); later cases are not run")


def _close_context(context: zmq.Context, wait_s: float) -> None:
    """term() the context on a daemon thread and wait at most `wait_s`: after an interrupt a background
    case may still hold a socket, and an exit must never block on it."""
    closer = threading.Thread(target=context.term, name="zmq-term", daemon=True)
    closer.start()
    closer.join(wait_s)


def run(config: RunConfig, progress: ProgressHook | None = None, registry: CaseRegistry | None = None) -> RunReport:
    """Convenience: one run with the default registry (all case modules loaded)."""
    return Runner(config, registry, progress).run()
