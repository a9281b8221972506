"""`stui-reference-server`: parse options, open the store, serve until SIGTERM/SIGINT, exit 0.

Prints exactly one line "listening on ENDPOINT" to stderr once the socket is bound and the store is
open, so a parent process can wait for it (with `--bind tcp://127.0.0.1:0` the line carries the
port actually bound). Log lines go to stderr as well: connections, attach/detach, start/stop and
failures at INFO; one `key=value` line per request at DEBUG (`--log-level debug`).

This module wires parts together - it is where the clock (`time.time`) and the random source
(`secrets.token_urlsafe`) are chosen for the sans-I/O engine - and must never hold protocol logic.
`main` takes the engine and transport classes as parameters, so the deliberately faulty servers of
the tests run this same start-up with one faulty part. An unreadable store or an unbindable address
ends start-up with a one-line reason and exit status 2, never a silent empty start; a store that lost
acknowledged changes (sqlite_store.StoreLost) with exit status 3 unless --accept-store-loss is given.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import resource
import secrets
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

import zmq

from stui_protocol_kit.protocol.command_line import Parser, add_version
from stui_protocol_kit.protocol.curve import CurveKeyError, ServerCurve
from stui_protocol_kit.reference_server.config import ServerConfig
from stui_protocol_kit.reference_server.engine import Engine
from stui_protocol_kit.reference_server.sqlite_store import SqliteStore, StoreLost
from stui_protocol_kit.reference_server.store import StoreError
from stui_protocol_kit.reference_server.transport import FRAME_BOUND_FACTOR, RouterTransport, TransportSettings

EngineFactory = Callable[..., Engine]  # called as Engine(config, store, clock=..., random_source=...)
TransportFactory = Callable[..., RouterTransport]  # called as RouterTransport(engine, bind, settings=...)

DEFAULT_BIND = "tcp://127.0.0.1:5555"
# The store came back emptier or older than it was (truncated, restored, its WAL deleted): distinct
# from 2 so that a supervisor can tell "needs a human" from a configuration error.
EXIT_STORE_LOST = 3
# ServerConfig field -> the option that sets it, so a refused value is reported by its option.
OPTION_OF = {
    "max_message_bytes": "--max-message-bytes", "max_nesting_depth": "--max-nesting-depth",
    "idle_timeout_s": "--idle-timeout", "absolute_timeout_s": "--absolute-timeout",
    "max_sessions_per_client": "--max-sessions-per-client", "retry_window_s": "--retry-window",
    "tombstone_retention_s": "--tombstone-retention", "max_revisions_kept": "--max-revisions",
    "cleanup_interval_s": "--cleanup-interval", "retry_cache_bytes": "--retry-cache-bytes",
    "max_sessions": "--max-sessions",
}
# Descriptors the process needs besides its connections: the store's files, ZeroMQ's internal sockets
# and pipes, Python's own. The start-up check keeps this many free below RLIMIT_NOFILE.
RESERVED_DESCRIPTORS = 64
log = logging.getLogger("stui.reference_server")


def default_data_dir() -> Path:
    """Per-user: $XDG_DATA_HOME/stui-reference-server, else ~/.local/share/stui-reference-server."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "stui-reference-server"


def build_parser() -> argparse.ArgumentParser:
    defaults = ServerConfig()
    p = Parser(prog="stui-reference-server", description="STUI protocol v1 reference server")
    add_version(p)
    p.add_argument("--bind", default=DEFAULT_BIND, help=f"ZeroMQ endpoint to bind (default {DEFAULT_BIND}; "
                   "port 0 picks a free port, printed on the 'listening on' line)")
    p.add_argument("--data-dir", type=Path, default=None,
                   help=f"session store directory (default {default_data_dir()})")
    p.add_argument("--idle-timeout", type=int, default=defaults.idle_timeout_s, metavar="S",
                   help="seconds without a successful request after which a session expires"
                        " (hello: idle_timeout_s; default %(default)s)")
    p.add_argument("--absolute-timeout", type=int, default=defaults.absolute_timeout_s, metavar="S",
                   help="seconds after its creation at which a session expires whatever its activity"
                        " (hello: absolute_timeout_s; default %(default)s)")
    p.add_argument("--max-sessions-per-client", type=int, default=defaults.max_sessions_per_client, metavar="N",
                   help="open sessions one client_id may hold; one more is LimitExceeded (default %(default)s)")
    p.add_argument("--max-sessions", type=int, default=defaults.max_sessions, metavar="N",
                   help="active sessions in all, every client_id together; one more is LimitExceeded"
                        " (hello: max_sessions, LIM-6; default %(default)s)")
    p.add_argument("--max-message-bytes", type=int, default=defaults.max_message_bytes, metavar="N",
                   help="largest request body in bytes; a larger one is refused (default %(default)s)")
    p.add_argument("--max-nesting-depth", type=int, default=defaults.max_nesting_depth, metavar="N",
                   help="deepest JSON nesting (arrays and objects) a request may have (default %(default)s)")
    p.add_argument("--retry-window", type=int, default=defaults.retry_window_s, metavar="S",
                   help="seconds a request id is remembered, so a retry gets the original reply"
                        " (default %(default)s)")
    p.add_argument("--tombstone-retention", type=int, default=defaults.tombstone_retention_s, metavar="S",
                   help="seconds a closed or expired session is still answered SessionClosed/SessionExpired"
                        " rather than SessionNotFound (default %(default)s)")
    p.add_argument("--retry-cache-bytes", type=int, default=defaults.retry_cache_bytes, metavar="N",
                   help="bytes the retry cache may hold; beyond it the largest session's evaluate/inspect replies"
                        " are dropped first (hello: retry_cache_bytes, RTY-12; default %(default)s)")
    p.add_argument("--max-revisions", type=int, default=defaults.max_revisions_kept, metavar="K",
                   help="durable revisions kept per session for fallback (default %(default)s)")
    p.add_argument("--cleanup-interval", type=float, default=defaults.cleanup_interval_s, metavar="S",
                   help="seconds between expiry/purge/activity-flush passes (default %(default)s)")
    transport = TransportSettings()
    p.add_argument("--max-connections", type=int, default=transport.max_connections, metavar="N",
                   help="connections admitted at once; a connection beyond it is refused during its handshake "
                   "(no reply; the peer sees an authentication failure). Checked against the descriptor "
                   f"limit (RLIMIT_NOFILE) at start-up: lowered with a warning when N + {RESERVED_DESCRIPTORS} "
                   f"exceeds it (default {transport.max_connections})")
    p.add_argument("--max-connections-per-address", type=int, default=None, metavar="N",
                   help="connections one peer address may hold open, handshakes included; one more is refused "
                   "during its handshake (default: half of --max-connections)")
    p.add_argument("--handshake-timeout", type=float, default=transport.handshake_timeout_s, metavar="S",
                   help="a connection that has not completed its ZeroMQ handshake after S seconds is closed "
                   f"(default {transport.handshake_timeout_s:g})")
    p.add_argument("--heartbeat-interval", type=float, default=transport.heartbeat_interval_s, metavar="S",
                   help=f"ZMTP PING to every connection every S seconds (default {transport.heartbeat_interval_s:g})")
    p.add_argument("--heartbeat-timeout", type=float, default=transport.heartbeat_timeout_s, metavar="S",
                   help="a connection silent for S seconds (no message, no PONG) is closed "
                   f"(default {transport.heartbeat_timeout_s:g})")
    p.add_argument("--connection-idle-timeout", type=float, default=transport.connection_idle_timeout_s,
                   metavar="S", help="a connection that sends no message for S seconds is closed (a ZeroMQ "
                   f"client reconnects by itself; default {transport.connection_idle_timeout_s:g})")
    p.add_argument("--curve-secret-key", metavar="FILE", default=None,
                   help="serve over CurveZMQ with this secret key file (stui-conformance keygen writes one); "
                   "needs --curve-allow (default: none)")
    p.add_argument("--curve-allow", metavar="FILE", action="append", default=[],
                   help="public keys of the clients let in, one Z85 key per line (repeatable; a .pub file "
                   "works); every other client is refused (default: none, served without CURVE)")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"],
                   type=str.lower, help="least severe log line written to stderr (default %(default)s)")
    p.add_argument("--accept-store-loss", action="store_true",
                   help="start even when the store holds fewer changes than it acknowledged before (it was "
                        "truncated, restored from an older copy, or its -wal file was deleted); without it the "
                        f"server refuses to start with exit status {EXIT_STORE_LOST} (default: refuse)")
    p.add_argument("--strict", action="store_true",
                   help="validate every reply against schemas/; an invalid one is logged and answered InternalError"
                        " (default off)")
    return p


def main(argv: list[str] | None = None, *, engine_factory: EngineFactory = Engine,
         transport_factory: TransportFactory = RouterTransport) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, args.log_level.upper()), stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    try:
        config = ServerConfig(
            max_message_bytes=args.max_message_bytes, max_nesting_depth=args.max_nesting_depth,
            idle_timeout_s=args.idle_timeout, absolute_timeout_s=args.absolute_timeout,
            max_sessions_per_client=args.max_sessions_per_client, retry_window_s=args.retry_window,
            tombstone_retention_s=args.tombstone_retention, max_revisions_kept=args.max_revisions,
            cleanup_interval_s=args.cleanup_interval, strict=args.strict,
            retry_cache_bytes=args.retry_cache_bytes,
            max_sessions=args.max_sessions,
        )
    except ValueError as exc:
        text = str(exc)
        field = text.split(" ", 1)[0]
        if field in OPTION_OF:
            text = f"{OPTION_OF[field]} ({field}){text[len(field):]}"
        print(f"stui-reference-server: invalid setting: {text}", file=sys.stderr)
        return 2
    try:
        settings = _transport_settings(args)
    except (ValueError, CurveKeyError) as exc:
        print(f"stui-reference-server: invalid setting: {exc}", file=sys.stderr)
        return 2
    data_dir = args.data_dir or default_data_dir()
    try:
        # Group commit: snapshots are made durable by a writer thread, off the serving thread.
        store = SqliteStore(data_dir, max_revisions_kept=config.max_revisions_kept, group_commit=True,
                            accept_store_loss=args.accept_store_loss)
    except StoreLost as exc:
        print(f"stui-reference-server: cannot start: {exc}", file=sys.stderr)
        return EXIT_STORE_LOST
    except StoreError as exc:
        print(f"stui-reference-server: cannot start: {exc}", file=sys.stderr)
        return 2
    if store.accepted_loss is not None:
        recorded, found = store.accepted_loss
        logging.getLogger("stui.reference_server").warning(
            "store loss accepted (--accept-store-loss): the store holds %d committed changes, %d were recorded; "
            "acknowledged sessions and revisions may be missing", found, recorded)
    engine = engine_factory(config, store, clock=time.time, random_source=secrets.token_urlsafe)
    try:
        transport = transport_factory(engine, args.bind, settings=settings)
    except zmq.ZMQError as exc:
        store.close()
        print(f"stui-reference-server: cannot bind {args.bind}: {exc}", file=sys.stderr)
        return 2

    def stop(signum: int, _frame: object) -> None:
        name = signal.Signals(signum).name
        logging.getLogger("stui.reference_server").info("signal %s: finishing in-flight work", name)
        transport.request_stop()

    if settings.curve is None and not is_local_endpoint(transport.endpoint):
        log.warning("!!! %s is reachable from other machines and CURVE is off: session tokens travel in "
                    "clear text. Bind a loopback address, or pass --curve-secret-key and --curve-allow "
                    "(spec 06, SEC-11) !!!", transport.endpoint)
    log.info("transport: max %d connections (%d per address), frames up to %d bytes (%d x max_message_bytes), "
             "handshake timeout %gs, heartbeat %gs/%gs, idle connections closed after %gs, CURVE %s",
             settings.max_connections,
             settings.max_connections_per_address or settings.max_connections,
             FRAME_BOUND_FACTOR * config.max_message_bytes, FRAME_BOUND_FACTOR, settings.handshake_timeout_s,
             settings.heartbeat_interval_s, settings.heartbeat_timeout_s, settings.connection_idle_timeout_s,
             f"on ({len(settings.curve.allowed_clients)} client keys)" if settings.curve else "off")
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"listening on {transport.endpoint}", file=sys.stderr, flush=True)
    try:
        transport.serve()
    finally:
        transport.close()
        engine.close()
    logging.getLogger("stui.reference_server").info("stopped")
    return 0


def _transport_settings(args: argparse.Namespace) -> TransportSettings:
    if args.curve_allow and not args.curve_secret_key:
        raise ValueError("--curve-allow needs --curve-secret-key")
    curve = None
    if args.curve_secret_key:
        if not args.curve_allow:
            raise ValueError("--curve-secret-key needs --curve-allow FILE (the client public keys let in; "
                             "there is no allow-any)")
        curve = ServerCurve.load(args.curve_secret_key, args.curve_allow)
    cap = descriptor_checked_cap(args.max_connections)
    per_address = args.max_connections_per_address
    if per_address is not None and per_address < 1:
        raise ValueError(f"--max-connections-per-address must be at least 1, got {per_address}")
    per_address = min(cap, per_address or max(1, cap // 2))
    return TransportSettings(
        max_connections=cap, max_connections_per_address=per_address,
        handshake_timeout_s=args.handshake_timeout, heartbeat_interval_s=args.heartbeat_interval,
        heartbeat_timeout_s=args.heartbeat_timeout, connection_idle_timeout_s=args.connection_idle_timeout,
        curve=curve,
    )


def descriptor_checked_cap(max_connections: int) -> int:
    """The connection cap the descriptor limit allows: raises the soft RLIMIT_NOFILE towards the hard one
    when needed, and lowers the cap (with a warning) when even that is not enough."""
    if max_connections < 1:
        raise ValueError(f"--max-connections must be at least 1, got {max_connections}")
    needed = max_connections + RESERVED_DESCRIPTORS
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        if target > soft:
            try:
                resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
                soft = target
            except (ValueError, OSError):
                pass
    if soft != resource.RLIM_INFINITY and soft < needed:
        lowered = soft - RESERVED_DESCRIPTORS
        if lowered < 1:
            raise ValueError(f"the descriptor limit (RLIMIT_NOFILE {soft}) leaves no room for connections; "
                             f"raise it (ulimit -n) to at least {needed}")
        log.warning("!!! --max-connections %d lowered to %d: the descriptor limit (RLIMIT_NOFILE soft %d, hard "
                    "%s) must exceed it by %d; raise it (ulimit -n %d) to keep %d !!!", max_connections,
                    lowered, soft, "unlimited" if hard == resource.RLIM_INFINITY else hard,
                    RESERVED_DESCRIPTORS, needed, max_connections)
        return lowered
    return max_connections


def is_local_endpoint(endpoint: str) -> bool:
    """Whether a bound endpoint is reachable from this machine only (loopback tcp, ipc, inproc)."""
    scheme, _, rest = endpoint.partition("://")
    if scheme in ("ipc", "inproc"):
        return True
    host = rest.rsplit(":", 1)[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # an interface name or a host name: assume it is reachable


if __name__ == "__main__":
    sys.exit(main())
