"""Scripted STUI clients for the client-check and proxy tests: real ZeroMQ sockets, good and broken on purpose.

`Link` is one client's way of talking (DEALER or REQ) with the retry behaviour of spec/16-clients.md: a
request without a reply within `timeout_s` is sent again with the same id (DEALER: on the same socket; REQ:
on a new socket, the "lazy pirate" pattern), replies to other ids are dropped. Its `broken` set switches off
one rule at a time, so a test can show each check fail:

- "new-id-retry"    a retry gets a new id (CLT-8)
- "no-retry"        no retry: a timeout is reported at once (CLT-8)
- "relaxed-req"     REQ retries on the same socket (ZMQ_REQ_RELAXED, CLT-5)

Run as a script, `good_session` is a whole client that survives every client-check scenario in their
default order (`python cc_clients.py ENDPOINT [--socket req] [--broken NAME]`): exit 0 when the session
went through, 1 when it gave up, 3 when told UnsupportedVersion and it chose to stop.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from collections.abc import Iterable
from typing import Any

import zmq

V = "1.0"
ENDING = {"SessionExpired", "SessionClosed", "SessionNotFound", "InvalidToken"}


class GaveUp(Exception):
    """No reply after every attempt."""


def new_id() -> str:
    return uuid.uuid4().hex


def request(command: str, parameters: dict[str, Any], request_id: str | None = None,
            version: str = V) -> dict[str, Any]:
    return {"id": request_id or new_id(), "version": version, "command": command, "parameters": parameters}


class Link:
    """One client connection with retries. Not thread-safe."""

    def __init__(self, endpoint: str, kind: str = "dealer", *, timeout_s: float = 0.4, attempts: int = 6,
                 context: zmq.Context | None = None, broken: Iterable[str] = ()) -> None:
        self.endpoint, self.kind, self.timeout_s, self.attempts = endpoint, kind, timeout_s, attempts
        self._own = context is None
        self.context = context or zmq.Context()
        self.broken = set(broken)
        self.socket = self._open()
        self.sent: list[dict[str, Any]] = []

    def _open(self) -> zmq.Socket:
        sock = self.context.socket(zmq.DEALER if self.kind == "dealer" else zmq.REQ)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.SNDTIMEO, 2000)
        if self.kind == "req" and "relaxed-req" in self.broken:
            sock.setsockopt(zmq.REQ_RELAXED, 1)
        sock.connect(self.endpoint)
        return sock

    def reconnect(self) -> None:
        self.socket.close(0)
        self.socket = self._open()

    def close(self) -> None:
        self.socket.close(0)
        if self._own:
            self.context.term()

    def send_raw(self, frames: list[bytes]) -> None:
        self.socket.send_multipart(frames)

    def receive(self, timeout_s: float) -> Any | None:
        if not self.socket.poll(int(timeout_s * 1000)):
            return None
        return json.loads(self.socket.recv_multipart()[-1])

    def send(self, message: dict[str, Any]) -> dict[str, Any]:
        """Send and wait, retrying as the rules say (or as `broken` says not to)."""
        for attempt in range(self.attempts):
            if attempt and "new-id-retry" in self.broken:
                message = {**message, "id": new_id()}
            self.sent.append(message)
            self.socket.send(json.dumps(message).encode())
            deadline = time.monotonic() + self.timeout_s
            while (left := deadline - time.monotonic()) > 0:
                reply = self.receive(left)
                if reply is None:
                    break
                if reply.get("id") == message["id"]:
                    return reply  # replies to other ids (late originals) are dropped
            if "no-retry" in self.broken:
                raise GaveUp(f"no reply to {message['command']} within {self.timeout_s}s (no retry)")
            if self.kind == "req" and "relaxed-req" not in self.broken:
                self.reconnect()  # lazy pirate
        raise GaveUp(f"no reply to {message['command']} after {self.attempts} attempts")

    def call(self, command: str, parameters: dict[str, Any] | None = None, **kwargs: Any) -> dict[str, Any]:
        return self.send(request(command, parameters or {}, **kwargs))


def code(reply: dict[str, Any]) -> str | None:
    return (reply.get("error") or {}).get("code") if reply.get("status") == "error" else None


TOKENS_SEEN: list[str] = []


class Session:
    session_id: str
    token: str
    revision: int

    def __init__(self, reply: dict[str, Any]) -> None:
        result = reply["result"]
        self.session_id, self.token, self.revision = result["session_id"], result["token"], result["revision"]
        TOKENS_SEEN.append(self.token)

    def params(self, **more: Any) -> dict[str, Any]:
        return {"session_id": self.session_id, "token": self.token, **more}


def create(link: Link, client_id: str) -> Session:
    for _ in range(5):
        reply = link.call("session.create", {"client_id": client_id})
        if reply["status"] == "success":
            return Session(reply)
        if code(reply) != "LimitExceeded":
            raise GaveUp(f"session.create: {code(reply)}")
        time.sleep(0.05)  # a TUI would tell the user; this one tries again with a new id
    raise GaveUp("session.create: LimitExceeded every time")


def hello(link: Link) -> dict[str, Any]:
    for _ in range(3):
        reply = link.call("hello")
        if reply["status"] == "success":
            return reply["result"]
        if code(reply) != "UnsupportedVersion":
            raise GaveUp(f"hello: {code(reply)}")
        time.sleep(0.05)
    raise GaveUp("hello: UnsupportedVersion every time")


def good_session(endpoint: str, kind: str = "dealer", *, iterations: int = 4, timeout_s: float = 0.4,
                 broken: Iterable[str] = (), client_id: str | None = None) -> list[str]:
    """A whole session as a robust TUI would live it; returns a log of what it met."""
    log: list[str] = []
    client_id = client_id or f"good-{uuid.uuid4().hex[:6]}"
    link = Link(endpoint, kind, timeout_s=timeout_s, broken=broken)
    try:
        hello(link)
        session = create(link, client_id)

        def step(command: str, **parameters: Any) -> dict[str, Any] | None:
            """One request on the session; an ending error opens a new session (returns None)."""
            nonlocal session
            reply = link.call(command, session.params(**parameters))
            error = code(reply)
            if error is None:
                return reply
            log.append(f"{command}: {error}")
            if error in ENDING:
                session = create(link, client_id)
            elif error == "UnsupportedVersion":
                hello(link)
            return None  # RevisionConflict, an unknown code, ...: a failure of that request only

        for i in range(iterations):
            step("evaluate", code=f"x := {i}")
            reply = step("session.snapshot", expected_revision=session.revision,
                         state={"preferences": {"round": i}})
            if reply is not None:
                session.revision = reply["result"]["revision"]
            elif log and log[-1].endswith("RevisionConflict"):
                resumed = step("session.resume")
                if resumed is not None:
                    session.revision = resumed["result"]["revision"]
                    again = step("session.snapshot", expected_revision=session.revision,
                                 state={"preferences": {"round": i}})
                    if again is not None:
                        session.revision = again["result"]["revision"]
            step("session.validate")
            link.reconnect()  # a new connection, as after a network change
            if "no-hello" not in link.broken:  # VER-4 (a SHOULD): hello first on every connection
                hello(link)
            resumed = step("session.resume")
            if resumed is not None:
                session.revision = resumed["result"]["revision"]
                log.append(f"resume source {resumed['result']['source']}")
        # A second session, as a user opening another workspace, then the first one's close.
        first = session
        step("session.close")
        session = create(link, client_id)
        step("evaluate", code="'second'")
        step("evaluate", code="'again'")
        closing = link.call("session.close", session.params())
        log.append(f"close: {closing['status']}")
        del first
    finally:
        link.close()
    return log


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("endpoint")
    parser.add_argument("--socket", default="dealer", choices=("dealer", "req"))
    parser.add_argument("--timeout", type=float, default=0.4)
    parser.add_argument("--broken", action="append", default=[])
    parser.add_argument("--tokens-file", help="write every token received here (for a test to search outputs)")
    args = parser.parse_args(argv)
    try:
        for line in good_session(args.endpoint, args.socket, timeout_s=args.timeout, broken=args.broken):
            print(line, flush=True)
        if args.tokens_file:
            with open(args.tokens_file, "w", encoding="utf-8") as out:
                out.write("\n".join(TOKENS_SEEN) + "\n")
    except GaveUp as exc:
        print(f"gave up: {exc}", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
