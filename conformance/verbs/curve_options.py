"""The CurveZMQ options every verb that opens a socket shares, defined once.

A verb that connects to a server takes `--curve-secret-key FILE --curve-server-key FILE`; a verb that
plays the server (client-check, the proxy's front) takes `--curve-secret-key FILE --curve-allow FILE`.
Key files are read by stui_protocol_kit.protocol.curve; this module only declares the options and turns
them into keys or a usage error, and must never open a socket.
"""

from __future__ import annotations

import argparse
from typing import Any

from stui_protocol_kit.protocol.curve import ClientCurve, CurveKeyError, ServerCurve, client_curve_from_args


def add_client_options(p: Any, *, prefix: str = "") -> None:
    """--curve-secret-key and --curve-server-key (with `prefix`, e.g. "upstream-", for a second hop)."""
    p.add_argument(f"--{prefix}curve-secret-key", metavar="FILE", default=None,
                   help="talk CurveZMQ with this side's secret key file (stui-conformance keygen writes one); "
                   f"needs --{prefix}curve-server-key")
    p.add_argument(f"--{prefix}curve-server-key", metavar="FILE", default=None,
                   help="the server's CurveZMQ public key file (its .pub)")


def add_server_options(p: Any) -> None:
    p.add_argument("--curve-secret-key", metavar="FILE", default=None,
                   help="serve over CurveZMQ with this secret key file; needs --curve-allow")
    p.add_argument("--curve-allow", metavar="FILE", action="append", default=[],
                   help="client public keys let in, one per line (repeatable; a .pub file works); "
                   "every other client is refused")


def client_curve(args: argparse.Namespace, *, prefix: str = "") -> ClientCurve | None:
    """The keys the options name, or None; CurveKeyError (a usage error) when they are unusable."""
    attr = prefix.replace("-", "_")
    return client_curve_from_args(getattr(args, f"{attr}curve_secret_key"), getattr(args, f"{attr}curve_server_key"))


def server_curve(args: argparse.Namespace) -> ServerCurve | None:
    if not args.curve_secret_key and not args.curve_allow:
        return None
    if not args.curve_secret_key:
        raise CurveKeyError("--curve-allow needs --curve-secret-key")
    if not args.curve_allow:
        raise CurveKeyError("--curve-secret-key needs --curve-allow FILE (there is no allow-any)")
    return ServerCurve.load(args.curve_secret_key, args.curve_allow)
