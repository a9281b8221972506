"""`stui-conformance keygen`: write a CurveZMQ key pair for a STUI server or client.

Writes PREFIX.key (the secret key, mode 0600, never overwritten) and PREFIX.pub (the public key, to hand
to the other side: a server's .pub goes to clients' --curve-server-key, a client's .pub to the server's
--curve-allow), and prints the public key. The key format is stui_protocol_kit.protocol.curve's; this
module only parses arguments and reports.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from stui_protocol_kit.protocol.curve import CurveKeyError, write_keypair

HELP = "write a CurveZMQ key pair (PREFIX.key mode 0600, PREFIX.pub)"
EPILOG = """\
example:
  stui-conformance keygen server        # server.key, server.pub
  stui-conformance keygen alice         # alice.key, alice.pub
  stui-reference-server --bind tcp://0.0.0.0:5555 --curve-secret-key server.key --curve-allow alice.pub
  stui-conformance run --target tcp://host:5555 --curve-secret-key alice.key --curve-server-key server.pub

exit status: 0 written, 2 usage error (the .key file exists, the directory is not writable, no CURVE)
"""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("keygen", help=HELP, description=HELP, epilog=EPILOG,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("prefix", metavar="PREFIX", help="path prefix of the two files written")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    try:
        key_path, pub_path, pair = write_keypair(args.prefix)
    except (CurveKeyError, OSError) as exc:
        print(f"stui-conformance keygen: {exc}", file=sys.stderr)
        return 2
    print(f"secret key: {key_path} (mode 0600: keep it private)")
    print(f"public key: {pub_path}: {pair.public.decode()}")
    return 0
