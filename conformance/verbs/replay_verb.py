"""`stui-conformance replay FILE`: re-run a JSON Lines request sequence and say whether it still fails.

The file is what a failing stateful case prints: one step per line, `{"client": N, "request": {...}}`
or `{"restart": true}`, with secrets as placeholders (`$session:N`, `$token:N`, `$client:K`). The
sequence runs against `--target ADDR` (restarts need `--restart-command`) or, without a target, against
an embedded reference server; every reply is checked by the same context checks and model as in the
stateful case.

Exit status: 0 the sequence runs without a failure, 1 it still fails, 2 usage error or unreachable target.
This module must never print a real token: failures show the placeholders and redacted replies.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import zmq

from stui_protocol_kit.conformance.case import REGISTRY, CaseFailed, CaseSkipped, load_cases
from stui_protocol_kit.conformance.config import DEFAULTS, RunConfig
from stui_protocol_kit.conformance.context import CaseContext, TargetHandle
from stui_protocol_kit.conformance.stateful.sequence import SequenceExecutor, SequenceFailure, Step, from_jsonl
from stui_protocol_kit.conformance.target import CommandRestarter, EmbeddedServer, TargetUnavailable, probe_hello
from stui_protocol_kit.protocol.client import ReplyTimeout

HELP = "re-run a JSON Lines request sequence (as printed by a failing stateful case)"
DESCRIPTION = __doc__.split("\n\n")[1] if __doc__ else HELP
EPILOG = "exit status: 0 no failure, 1 the sequence still fails, 2 usage error or unreachable target"
REPLAY_CASE = "stateful.sessions"  # the case whose context (checks, citations) a replay runs under


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("replay", help=HELP, description=DESCRIPTION, epilog=EPILOG,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("file", metavar="FILE", help="JSON Lines sequence, or - for stdin")
    parser.add_argument("--target", metavar="ADDR", help="ZeroMQ endpoint of the server (default: embedded reference)")
    parser.add_argument("--restart-command", metavar="CMD", help="shell command that restarts the target")
    parser.add_argument("--socket", dest="socket_kind", choices=("dealer", "req"), default=DEFAULTS.socket_kind,
                        help="socket type of the simulated clients (default %(default)s)")
    parser.add_argument("--timeout", dest="timeout_s", type=float, default=DEFAULTS.timeout_s, metavar="S",
                        help="per-request timeout in seconds (default %(default)s)")
    parser.set_defaults(handler=run)


def read_steps(path: str) -> list[Step]:
    text = sys.stdin.read() if path == "-" else open(path, encoding="utf-8").read()  # noqa: SIM115
    return from_jsonl(text)


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


def run(args: argparse.Namespace) -> int:
    try:
        steps = read_steps(args.file)
    except (OSError, ValueError) as exc:
        print(f"replay: {exc}", file=sys.stderr)
        return 2
    load_cases()
    context = zmq.Context()
    server: EmbeddedServer | None = None
    try:
        if args.target:
            restart = CommandRestarter(args.target, args.restart_command).restart if args.restart_command else None
            target = TargetHandle(args.target, probe_hello(args.target, args.timeout_s, context), restart)
        else:
            server = EmbeddedServer(name="replay")
            endpoint = server.start()
            target = TargetHandle(endpoint, probe_hello(endpoint, 10, context), server.restart)
        config = RunConfig(target=args.target, socket_kind=args.socket_kind, timeout_s=args.timeout_s)
        failure = replay(steps, target, config, context, target.restart is not None)
    except TargetUnavailable as exc:
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
