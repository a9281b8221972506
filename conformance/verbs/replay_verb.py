"""`stui-conformance replay FILE`: re-run a JSON Lines request sequence or a recorded transcript against a
server and say whether every reply is as the spec allows.

The file is what a failing stateful case prints: one step per line, `{"client": N, "request": {...}}`
or `{"restart": true}`, with secrets as placeholders (`$session:N`, `$token:N`, `$client:K`) - or a
transcript that `stui-conformance proxy --transcript` recorded (its first line is the transcript header),
whose redacted tokens are mapped to the tokens the server issues during the replay
(conformance/stateful/transcript_replay.py). The steps run against `--target ADDR` (restarts need
`--restart-command`) or, without a target, against an embedded reference server; every reply is checked by
the same context checks and model as in the stateful case. With `--compare`, a transcript's replies are
set beside the recorded ones, and a difference the spec does not allow fails the replay.

Exit status: 0 the sequence runs without a failure, 1 it still fails (or, with --compare, a reply differs
from the recording where the spec allows no choice), 2 usage error or unreachable target.
This module must never print a real token: failures show the placeholders and redacted replies.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from typing import Any

import zmq

from stui_protocol_kit.conformance.case import REGISTRY, CaseFailed, CaseSkipped, load_cases
from stui_protocol_kit.conformance.config import DEFAULTS, RunConfig
from stui_protocol_kit.conformance.context import CaseContext, TargetHandle
from stui_protocol_kit.conformance.stateful.sequence import SequenceExecutor, SequenceFailure, Step, from_jsonl
from stui_protocol_kit.conformance.stateful.transcript_replay import Sequence, TranscriptExecutor, compare, to_sequence
from stui_protocol_kit.conformance.target import CommandRestarter, EmbeddedServer, TargetUnavailable, probe_hello
from stui_protocol_kit.conformance.transcript import looks_like_transcript, parse_transcript
from stui_protocol_kit.conformance.verbs import curve_options
from stui_protocol_kit.protocol.client import ReplyTimeout
from stui_protocol_kit.protocol.curve import CurveKeyError
from stui_protocol_kit.protocol.endpoints import endpoint_arg
from stui_protocol_kit.protocol.problems import show

HELP = "re-run a request sequence (as a failing stateful case prints it) or a proxy transcript against a server"
DESCRIPTION = __doc__.split("\n\n")[1] if __doc__ else HELP
EPILOG = ("exit status: 0 no failure, 1 the sequence still fails (--compare: or differs from the recording where"
          " the spec allows no choice), 2 usage error or unreachable target")
REPLAY_CASE = "stateful.sessions"  # the case whose context (checks, citations) a replay runs under


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("replay", help=HELP, description=DESCRIPTION, epilog=EPILOG,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("file", metavar="FILE", help="JSON Lines sequence or transcript, or - for stdin")
    parser.add_argument("--target", metavar="ADDR", type=endpoint_arg,
                        help="ZeroMQ endpoint of the server, tcp://HOST:PORT or ipc://PATH"
                             " (default: embedded reference)")
    parser.add_argument("--restart-command", metavar="CMD", help="shell command that restarts the target")
    parser.add_argument("--socket", dest="socket_kind", choices=("dealer", "req"), default=DEFAULTS.socket_kind,
                        help="socket type of the simulated clients (default %(default)s)")
    parser.add_argument("--timeout", dest="timeout_s", type=float, default=DEFAULTS.timeout_s, metavar="S",
                        help="per-request timeout in seconds (default %(default)s)")
    parser.add_argument("--compare", action="store_true",
                        help="a transcript: fail when a reply differs from the recorded one where the spec fixes it")
    curve_options.add_client_options(parser)
    parser.set_defaults(handler=run)


def read_text(path: str) -> str:
    return sys.stdin.read() if path == "-" else open(path, encoding="utf-8").read()  # noqa: SIM115


def read_steps(path: str) -> list[Step]:
    return from_jsonl(read_text(path))


@dataclass
class TranscriptOutcome:
    failure: SequenceFailure | None
    replies: list[Any]


def replay(steps: list[Step], target: TargetHandle, config: RunConfig, context: zmq.Context,
           can_restart: bool) -> SequenceFailure | None:
    """Run `steps`; the failure if one occurs, else None."""
    case = REGISTRY.get(REPLAY_CASE)
    reason = "" if can_restart else "the sequence restarts the target: pass --restart-command CMD"
    ctx = CaseContext(case, target, config, context, can_restart, reason)
    executor = SequenceExecutor(ctx, clients=1)
    try:
        for step in steps:
            executor.run(step)
    except SequenceFailure as failure:
        return failure
    finally:
        executor.close()
        ctx.close()
    return None


def replay_transcript(sequence: Sequence, target: TargetHandle, config: RunConfig,
                      context: zmq.Context) -> TranscriptOutcome:
    """Run a transcript's steps with the recorded socket types; the first failure and the replies got."""
    ctx = CaseContext(REGISTRY.get(REPLAY_CASE), target, config, context, False,
                      "a transcript does not restart the target")
    executor = TranscriptExecutor(ctx, sequence.socket_kinds)
    failure = None
    try:
        for step in sequence.steps:
            executor.run(step)
    except SequenceFailure as found:
        failure = found
    finally:
        executor.close()
        ctx.close()
    return TranscriptOutcome(failure, executor.replies)


def run(args: argparse.Namespace) -> int:
    try:
        text = read_text(args.file)
        sequence: Sequence | None = None
        if looks_like_transcript(text.encode("utf-8")):
            sequence = to_sequence(parse_transcript(text, args.file))
            steps = sequence.steps
        else:
            steps = from_jsonl(text)
    except (OSError, ValueError) as exc:
        print(f"replay: {exc}", file=sys.stderr)
        return 2
    if sequence is not None:
        return _run_transcript(args, sequence)
    load_cases()
    context = zmq.Context()
    server: EmbeddedServer | None = None
    try:
        if args.target:
            curve = curve_options.client_curve(args)
            restart = (CommandRestarter(args.target, args.restart_command, curve=curve).restart
                       if args.restart_command else None)
            target = TargetHandle(args.target, probe_hello(args.target, args.timeout_s, context, curve), restart,
                                  curve=curve)
        else:
            server = EmbeddedServer(name="replay")
            endpoint = server.start()
            target = TargetHandle(endpoint, probe_hello(endpoint, 10, context), server.restart)
        config = RunConfig(target=args.target, socket_kind=args.socket_kind, timeout_s=args.timeout_s)
        failure = replay(steps, target, config, context, target.restart is not None)
    except (TargetUnavailable, CurveKeyError) as exc:
        print(f"replay: {exc}", file=sys.stderr)
        return 2
    except CaseSkipped as exc:
        print(f"replay: {exc}", file=sys.stderr)
        return 2
    except ReplyTimeout as exc:
        print(f"still fails: {exc}")
        return 1
    except CaseFailed as exc:
        print(f"still fails: {exc.message}")
        return 1
    finally:
        if server is not None:
            server.cleanup()
        context.term()
    if failure is None:
        print(f"no failure: {len(steps)} steps ran as the spec allows")
        return 0
    print(f"still fails at step {failure.index + 1} of {len(steps)}: {failure.cause.message} [{failure.requirement}]")
    return 1


def _run_transcript(args: argparse.Namespace, sequence: Sequence) -> int:
    load_cases()
    context = zmq.Context()
    server: EmbeddedServer | None = None
    clients = len(sequence.socket_kinds)
    print(f"transcript: {len(sequence.steps)} requests on {clients} connection(s), {sequence.sessions} session(s)"
          " mapped to the sessions the server issues")
    for note in sequence.notes:
        print(f"note: {note}")
    try:
        if args.target:
            curve = curve_options.client_curve(args)
            target = TargetHandle(args.target, probe_hello(args.target, args.timeout_s, context, curve), None,
                                  curve=curve)
        else:
            server = EmbeddedServer(name="replay")
            endpoint = server.start()
            target = TargetHandle(endpoint, probe_hello(endpoint, 10, context), server.restart)
        config = RunConfig(target=args.target, timeout_s=args.timeout_s)
        outcome = replay_transcript(sequence, target, config, context)
    except (TargetUnavailable, CurveKeyError) as exc:
        print(f"replay: {exc}", file=sys.stderr)
        return 2
    except ReplyTimeout as exc:
        print(f"fails: {exc}")
        return 1
    except CaseFailed as exc:
        print(f"fails: {exc.message}")
        return 1
    finally:
        if server is not None:
            server.cleanup()
        context.term()
    if outcome.failure is not None:
        failure = outcome.failure
        print(f"fails at step {failure.index + 1} of {len(sequence.steps)}: {failure.cause.message}"
              f" [{failure.requirement}]")
        return 1
    status = 0
    allowed: dict[tuple[str, str, str], int] = {}
    for difference in compare(sequence, outcome.replies):
        if difference.allowed_by is not None:
            key = (difference.path, difference.allowed_by, difference.why)
            allowed[key] = allowed.get(key, 0) + 1
            continue
        where = f"step {difference.step + 1} ({_command(sequence.steps[difference.step])}) at {difference.path}"
        print(f"differs from the recording where the spec allows no choice: {where}: now {show(difference.target)},"
              f" recorded {show(difference.reference)}")
        status = 1 if args.compare else status
    for (path, rule, why), count in allowed.items():
        print(f"differs from the recording as {rule} allows ({why}): {path}, {count} reply(ies)")
    print(f"no failure: {len(sequence.steps)} steps ran as the spec allows")
    return status


def _command(step: Step) -> str:
    return str(step.request.get("command")) if isinstance(step.request, dict) else "?"
