"""ZeroMQ endpoints as a user types them: checked before any socket exists.

pyzmq rejects `127.0.0.1:5555` or `tcp://foo:bar` only when a socket connects or binds, and a socket
left open by that failure makes the context's `term()` block forever: a typo became a hung CI job.
Every tool of the kit (run, replay, the pytest plugin, proxy, client-check) therefore checks each
endpoint here first and stops with one message that shows the accepted forms.

Accepted (spec/01-transport.md names TCP; IPC is what ZeroMQ offers locally):
- `tcp://HOST:PORT` - HOST a name, an IPv4 address or a bracketed IPv6 address; PORT 1-65535
  (binding also accepts `*` for every interface and port 0 or `*` for a free port);
- `ipc://PATH` - a non-empty filesystem path (or `@NAME`, Linux's abstract namespace).

This module is pure: it never opens a socket and never resolves a name (a name that does not resolve is
the caller's "unreachable target", not a malformed endpoint).
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import re

ACCEPTED_FORMS = "tcp://HOST:PORT (e.g. tcp://127.0.0.1:5555) or ipc://PATH"

# RFC 1123 host names: labels of letters, digits and inner hyphens, dot-separated.
_HOSTNAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                       r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$")


class EndpointError(ValueError):
    """An endpoint no ZeroMQ socket of the kit would accept; the message shows the accepted forms."""


def check_endpoint(text: str, *, bind: bool = False) -> str:
    """`text` unchanged when it is an endpoint to connect to (or, with `bind`, to bind); else EndpointError."""
    if not isinstance(text, str) or not text.strip():
        raise _error(text, "it is empty")
    if text != text.strip():
        raise _error(text, "it has spaces around it")
    scheme, sep, rest = text.partition("://")
    if not sep:
        split = _split_port(text)
        hint = f" (did you mean tcp://{text}?)" if split is not None and split[1].isdigit() else ""
        raise _error(text, f"it has no scheme{hint}")
    if scheme == "ipc":
        if not rest:
            raise _error(text, "the ipc:// path is empty")
        return text
    if scheme != "tcp":
        raise _error(text, f"the scheme {scheme}:// is not one the kit speaks")
    split = _split_port(rest)
    if split is None:
        raise _error(text, "it has no :PORT")
    host, port = split
    _check_host(text, host, bind)
    _check_port(text, port, bind)
    return text


def _split_port(rest: str) -> tuple[str, str] | None:
    host, sep, port = rest.rpartition(":")
    return (host, port) if sep and host else None


def _check_host(text: str, host: str, bind: bool) -> None:
    if bind and host == "*":
        return
    if host.startswith("[") != host.endswith("]"):
        raise _error(text, f"the brackets of {host} do not match")
    if host.startswith("["):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise _error(text, f"{host} is not an IPv6 address") from None
        return
    if ":" in host:
        raise _error(text, f"the IPv6 address {host} needs brackets: tcp://[{host}]:PORT")
    if not _HOSTNAME.match(host):
        raise _error(text, f"{json.dumps(host)} is not a host name or address")


def _check_port(text: str, port: str, bind: bool) -> None:
    if bind and port == "*":
        return
    if not port.isdigit() or not port.isascii():
        raise _error(text, f"the port {json.dumps(port)} is not a number")
    low = 0 if bind else 1
    if not low <= int(port) <= 65535:
        raise _error(text, f"the port {port} is outside {low}-65535")


def _error(text: object, why: str) -> EndpointError:
    return EndpointError(f"invalid endpoint {json.dumps(text)}: {why}; accepted forms: {ACCEPTED_FORMS}")


def endpoint_arg(text: str) -> str:
    """argparse `type=` for an endpoint to connect to: argparse prints the message and exits 2."""
    try:
        return check_endpoint(text)
    except EndpointError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def bind_endpoint_arg(text: str) -> str:
    """argparse `type=` for an endpoint to bind (accepts `*` hosts and port 0 / `*`)."""
    try:
        return check_endpoint(text, bind=True)
    except EndpointError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
