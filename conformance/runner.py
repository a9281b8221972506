"""The runner: starts or reaches the target, reads its hello, runs the selected cases, collects results.

Scheduling, chosen for the 60 s budget on two cores:
1. Cases that need expiry (they mostly wait for the target's clock) run in threads, overlapping each
   other and the ordinary cases. With the embedded reference server they talk to a second embedded
   server whose idle timeout is 2 s, so the main server can keep sessions alive for the whole run.
2. Ordinary cases run one after another in the main thread.
3. Cases that restart the target (`exclusive`) run last, alone, so no other case sees the restart.

Outcomes: UNSUPPORTED when hello does not announce a capability the case needs, SKIPPED when the run
cannot provide a restart or the expiry budget, TIMEOUT when the target did not answer in time,
FAILED / PASSED from the case. The run fails (exit 1) when a MUST case is FAILED or TIMEOUT.

This module must never judge a reply itself (cases and verifiers do) and never print (reports do).
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import zmq
from stui_protocol_kit.conformance.case import (
    CAPABILITY_NEEDS,
    NEED_EXCLUSIVE,
    NEED_EXPIRY,
    NEED_RESTART,
    Case,
    CaseFailed,
    CaseRegistry,
    CaseResult,
    CaseSkipped,
    CaseUnsupported,
    Failure,
    Outcome,
    load_cases,
)
from stui_protocol_kit.conformance.context import CaseContext, RunOptions, TargetHandle
from stui_protocol_kit.conformance.target import (
    EXPIRY_SETTINGS,
    MAIN_SETTINGS,
    CommandRestarter,
    EmbeddedServer,
    TargetUnavailable,
    probe_hello,
)
from stui_protocol_kit.protocol.client import ReplyTimeout, SocketKind
from stui_protocol_kit.protocol.requirements import Requirement, requirements


@dataclass
class RunConfig:
    """Everything a run is told. `target=None` means: start the embedded server (`server_argv`,
    default the reference server)."""

    target: str | None = None
    restart_command: str | None = None
    socket_kind: SocketKind = "dealer"
    timeout_s: float = 5.0
    seed: int = 0
    examples: int = 50
    select: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    expiry_budget_s: float = 10.0
    server_argv: list[str] | None = None
    server_extra_args: list[str] = field(default_factory=list)
    extras: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunReport:
    """The outcome of a run, as the reports render it."""

    results: list[CaseResult]
    hello: dict[str, Any]
    target: str
    config: RunConfig
    started_at: str
    duration_s: float

    @property
    def passed(self) -> bool:
        return not any(r.blocking for r in self.results)

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1

    def counts(self) -> dict[str, int]:
        out = {o.value: 0 for o in Outcome}
        for r in self.results:
            out[r.outcome.value] += 1
        return out

    def requirement_matrix(self, index: dict[str, Requirement] | None = None) -> dict[str, dict[str, Any]]:
        """Per requirement: level, text, the cases citing it with their outcomes, and a verdict
        (FAILED if any case failed/timed out, PASSED if any passed, else the cases' common outcome,
        or UNTESTED when no selected case cites it)."""
        index = index if index is not None else requirements()
        matrix: dict[str, dict[str, Any]] = {}
        for req in index.values():
            matrix[req.id] = {"level": req.level, "text": req.text, "section": req.section, "cases": {},
                              "verdict": "UNTESTED"}
        for r in self.results:
            for req_id in r.case.requirements:
                entry = matrix.setdefault(req_id, {"level": "?", "text": "", "section": "", "cases": {},
                                                   "verdict": "UNTESTED"})
                entry["cases"][r.case.id] = r.outcome.value
        for entry in matrix.values():
            outcomes = set(entry["cases"].values())
            if not outcomes:
                continue
            if outcomes & {"FAILED", "TIMEOUT"}:
                entry["verdict"] = "FAILED"
            elif "PASSED" in outcomes:
                entry["verdict"] = "PASSED"
            else:
                entry["verdict"] = sorted(outcomes)[0]
        return matrix


ProgressHook = Callable[[CaseResult], None]


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
        if cfg.target is None:
            main = EmbeddedServer(MAIN_SETTINGS, cfg.server_argv, cfg.server_extra_args, name="main")
            expiry = EmbeddedServer(EXPIRY_SETTINGS, cfg.server_argv, cfg.server_extra_args, name="expiry")
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
            self.main = TargetHandle(main.endpoint, probe_hello(main.endpoint, 10, self.zmq_context), main.restart)
            self.expiry = TargetHandle(expiry.endpoint, probe_hello(expiry.endpoint, 10, self.zmq_context),
                                       expiry.restart)
            return
        hello = probe_hello(cfg.target, cfg.timeout_s, self.zmq_context)
        restart = CommandRestarter(cfg.target, cfg.restart_command).restart if cfg.restart_command else None
        if restart is None:
            self.restart_reason = "no --restart-command given for this target"
        self.main = TargetHandle(cfg.target, hello, restart)
        self.expiry = self.main

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
        # endpoint -> the case during which that target stopped answering (and could not be restarted)
        self._down: dict[str, str] = {}

    def selected(self) -> list[Case]:
        return self.registry.select(self.config.select, self.config.exclude)

    def run(self) -> RunReport:
        """Start/reach the target (TargetUnavailable when it cannot), run, stop embedded servers."""
        started = time.monotonic()
        started_at = datetime.now(UTC).isoformat(timespec="seconds")
        zmq_context = zmq.Context()
        targets = _Targets(self.config, zmq_context)
        try:
            targets.start()
            results = self._run_all(targets, zmq_context)
            hello = targets.main.hello
            endpoint = self.config.target or f"embedded reference server ({targets.main.endpoint})"
        finally:
            targets.stop()
            zmq_context.term()
        return RunReport(results, hello, endpoint, self.config, started_at, time.monotonic() - started)

    # -- scheduling ----------------------------------------------------------------------------------

    def _run_all(self, targets: _Targets, zmq_context: zmq.Context) -> list[CaseResult]:
        cases = self.selected()
        results: dict[str, CaseResult] = {}
        background = [c for c in cases if NEED_EXPIRY in c.needs and NEED_EXCLUSIVE not in c.needs]
        exclusive = [c for c in cases if NEED_EXCLUSIVE in c.needs or NEED_RESTART in c.needs]
        ordinary = [c for c in cases if c not in background and c not in exclusive]

        def run_one(item: Case, target: TargetHandle) -> None:
            result = self.run_case(item, target, targets, zmq_context)
            with self._lock:
                results[item.id] = result
                if self.progress:
                    self.progress(result)

        pool = ThreadPoolExecutor(max_workers=max(1, min(16, len(background))), thread_name_prefix="expiry")
        futures = [pool.submit(run_one, c, targets.expiry) for c in background]
        try:
            for item in ordinary:
                run_one(item, targets.main)
        finally:
            for future in futures:
                future.result()
            pool.shutdown()
        for item in exclusive:
            run_one(item, targets.main)
        return [results[c.id] for c in cases]

    def run_case(self, item: Case, target: TargetHandle, targets: _Targets, zmq_context: zmq.Context) -> CaseResult:
        """One case, with its outcome; never raises for anything the case or target does."""
        with self._lock:
            down_during = self._down.get(target.endpoint)
        if down_during is not None:
            # Waiting out a timeout per case would make a crashed target look like a hung suite.
            reason = f"not run: the target stopped answering during {down_during}"
            return CaseResult(item, Outcome.SKIPPED, reason=reason)
        missing = sorted((item.needs & CAPABILITY_NEEDS) - target.capabilities)
        if missing:
            return CaseResult(item, Outcome.UNSUPPORTED, reason=f"hello does not announce {', '.join(missing)}")
        can_restart = target.restart is not None
        if NEED_RESTART in item.needs and not can_restart:
            return CaseResult(item, Outcome.SKIPPED, reason=targets.restart_reason or "target cannot be restarted")
        if NEED_EXPIRY in item.needs:
            idle = float(target.limits.get("idle_timeout_s", 0) or 0)
            if idle > self.config.expiry_budget_s:
                return CaseResult(item, Outcome.SKIPPED, reason=(
                    f"idle_timeout_s is {idle:g}s, over the expiry budget of {self.config.expiry_budget_s:g}s"))
        options = RunOptions(self.config.socket_kind, self.config.timeout_s, self.config.seed, self.config.examples,
                             self.config.expiry_budget_s, dict(self.config.extras))
        ctx = CaseContext(item, target, options, zmq_context, can_restart, targets.restart_reason)
        started = time.monotonic()
        result = CaseResult(item, Outcome.PASSED)
        try:
            item.run(ctx)
        except CaseFailed as exc:
            result.outcome = Outcome.FAILED
            result.failure = Failure(exc.expected, exc.actual, exc.requirement, ctx.requirement_text(exc.requirement),
                                     exc.message, exc.violations)
        except ReplyTimeout as exc:
            result.outcome = Outcome.TIMEOUT
            result.reason = str(exc)
            result.failure = Failure(f"a reply within {self.config.timeout_s:g}s", "no reply", "TRN-3",
                                     ctx.requirement_text("TRN-3"), str(exc))
            self._check_alive(item, target, ctx, zmq_context)
        except CaseSkipped as exc:
            result.outcome, result.reason = Outcome.SKIPPED, str(exc)
        except CaseUnsupported as exc:
            result.outcome, result.reason = Outcome.UNSUPPORTED, str(exc)
        except TargetUnavailable as exc:
            result.outcome = Outcome.FAILED
            result.failure = Failure("the target to come back after a restart", str(exc), None, "", str(exc))
        except Exception as exc:  # a bug in a case must not stop the run; it is reported as a failure
            result.outcome = Outcome.FAILED
            detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            result.failure = Failure("the case to complete", detail, None, "",
                                     f"case raised {detail}\n{traceback.format_exc(limit=4)}")
        finally:
            ctx.close()
        result.duration_s = time.monotonic() - started
        result.transcript = ctx.transcript.entries
        result.notes = ctx.notes
        return result


    def _check_alive(self, item: Case, target: TargetHandle, ctx: CaseContext, zmq_context: zmq.Context) -> None:
        """After a timeout: is the target still there? If not, restart it when the run knows how
        (later cases still get a target), else mark it down so later cases are skipped at once."""
        try:
            probe_hello(target.endpoint, self.config.timeout_s, zmq_context)
            return
        except TargetUnavailable:
            pass
        if target.restart is not None:
            try:
                target.endpoint = target.restart()
                ctx.note("the target stopped answering during this case; it was restarted for the cases after it")
                return
            except TargetUnavailable:
                pass
        with self._lock:
            self._down.setdefault(target.endpoint, item.id)
        ctx.note("the target stopped answering during this case (hello fails too); later cases are not run")


def run(config: RunConfig, progress: ProgressHook | None = None, registry: CaseRegistry | None = None) -> RunReport:
    """Convenience: one run with the default registry (all case modules loaded)."""
    return Runner(config, registry, progress).run()
