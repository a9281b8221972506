"""Endpoints are checked before any socket exists, and no socket the kit opens can block an exit."""

from __future__ import annotations

import threading

import pytest
import zmq

from stui_protocol_kit.protocol.client import ProtocolClient
from stui_protocol_kit.protocol.endpoints import ACCEPTED_FORMS, EndpointError, check_endpoint

GOOD = ["tcp://127.0.0.1:5555", "tcp://localhost:1", "tcp://pharo.example.org:65535", "tcp://[::1]:5555",
        "ipc:///tmp/stui.sock", "ipc://@stui-abstract"]
BAD = ["127.0.0.1:5555", "localhost:5555", "foo:bar", "tcp://foo:bar", "tcp://127.0.0.1", "tcp://:5555",
       "tcp://127.0.0.1:0", "tcp://127.0.0.1:65536", "tcp://::1:5555", "tcp://[::1:5555", "tcp://*:5555",
       "udp://127.0.0.1:5555", "ipc://", "", " tcp://127.0.0.1:5555", "tcp://bad_host:5555"]


@pytest.mark.parametrize("endpoint", GOOD)
def test_accepted_endpoints_come_back_unchanged(endpoint: str) -> None:
    assert check_endpoint(endpoint) == endpoint


@pytest.mark.parametrize("endpoint", BAD)
def test_a_malformed_endpoint_is_refused_with_the_accepted_forms(endpoint: str) -> None:
    with pytest.raises(EndpointError) as caught:
        check_endpoint(endpoint)
    assert ACCEPTED_FORMS in str(caught.value)


def test_a_missing_scheme_suggests_tcp() -> None:
    with pytest.raises(EndpointError, match=r"did you mean tcp://127\.0\.0\.1:5555\?"):
        check_endpoint("127.0.0.1:5555")


@pytest.mark.parametrize("endpoint", ["tcp://*:0", "tcp://*:*", "tcp://127.0.0.1:0", "tcp://0.0.0.0:5555"])
def test_binding_also_accepts_wildcards_and_port_zero(endpoint: str) -> None:
    assert check_endpoint(endpoint, bind=True) == endpoint


def _terminates(context: zmq.Context, wait_s: float = 10.0) -> bool:
    closer = threading.Thread(target=context.term, daemon=True)
    closer.start()
    closer.join(wait_s)
    return not closer.is_alive()


@pytest.mark.parametrize("endpoint", ["127.0.0.1:5555", "tcp://foo:bar"])
def test_a_client_refused_by_zeromq_leaves_no_socket_that_blocks_the_context(endpoint: str) -> None:
    # pyzmq raises on connect; the socket it had made used to stay open, and term() then blocked forever.
    context = zmq.Context()
    with pytest.raises(zmq.ZMQError) as caught:
        ProtocolClient(endpoint, "dealer", 1.0, context)
    # While the error is alive (as in a caller's `finally: context.term()`), its traceback keeps every
    # frame's locals alive, so a socket left open is not collected and term() waits for it.
    assert caught.tb is not None
    assert _terminates(context), "context.term() blocked: a socket was left open"



def test_every_socket_the_kit_opens_sets_linger_before_use() -> None:
    # An open socket with unsent messages and the default infinite LINGER blocks its context's term(): a
    # socket made anywhere in the kit sets LINGER within the few lines after it is made.
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    made = re.compile(r"=\s*[\w.]*\.socket\(zmq\.[A-Z]+\)")
    missing = []
    for top in ("protocol", "conformance", "reference_server"):
        for path in sorted((root / top).rglob("*.py")):
            lines = path.read_text(encoding="utf-8").splitlines()
            for number, line in enumerate(lines):
                if made.search(line) and not any("LINGER" in later for later in lines[number + 1:number + 6]):
                    missing.append(f"{path.relative_to(root)}:{number + 1}")
    assert not missing, f"sockets without LINGER: {missing}"
